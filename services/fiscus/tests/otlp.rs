//! Spans reach a real OTLP/gRPC trace receiver: a tonic server built from the
//! OpenTelemetry collector's service definitions, in this test. A devnet runs
//! with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at it; one transaction commits;
//! every member's gossip-gateway exports its `gateway.committed` span for the
//! block, with the process's resource.
//!
//! What this does not show yet (issue 16): the transaction's own trace across
//! the adapter, the orderer and the members.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod devnet_support;

use devnet_support::{Devnet, Net, appropriate, call};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default, Clone)]
struct Receiver(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        r: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(r.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    let v = attrs
        .iter()
        .find(|a| a.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match v {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => i.to_string(),
        other => format!("{other:?}"),
    })
}

/// One received span: resource service name and instance, name, trace id, attributes.
struct Received {
    service: Option<String>,
    instance: Option<String>,
    name: String,
    trace_id: Vec<u8>,
    member: Option<String>,
    block: Option<String>,
}

fn received(r: &Receiver) -> Vec<Received> {
    let mut out = Vec::new();
    for req in r.0.lock().unwrap().iter() {
        for rs in &req.resource_spans {
            let res = rs
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    out.push(Received {
                        service: attr(res, "service.name"),
                        instance: attr(res, "service.instance.id"),
                        name: s.name.clone(),
                        trace_id: s.trace_id.clone(),
                        member: attr(&s.attributes, "fiscus.member"),
                        block: attr(&s.attributes, "fiscus.block"),
                    });
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_s_commit_span_reaches_a_real_otlp_receiver() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = futures::stream::unfold(listener, |l| async move {
        Some((l.accept().await.map(|(s, _)| s), l))
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(incoming),
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    let endpoint = format!("http://{addr}");
    let (devnet, dir) = tokio::task::spawn_blocking(move || {
        let (d, _) = Devnet::start_collecting_env(
            &dir,
            &[],
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                // Export every 200 ms instead of every 5 s.
                ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ],
        );
        (d, dir)
    })
    .await
    .unwrap();

    let block = tokio::task::spawn_blocking(move || {
        let net = Net::read(&dir);
        let (mof, key, _) = net.api("000000");
        let r = call(
            mof,
            "POST",
            "/v1/operations?wait=commit",
            Some(key),
            Some(&appropriate("otlp", 100)),
            &[],
        );
        assert_eq!(r.0, 200, "{:?}", r.2);
        r.2["block_number"]
            .as_u64()
            .expect("the block it committed in")
    })
    .await
    .unwrap();

    let members: BTreeSet<&str> = ["000000", "130000", "130100", "130102", "991300"].into();
    let deadline = Instant::now() + Duration::from_secs(60);
    let spans = loop {
        let spans: Vec<Received> = received(&receiver)
            .into_iter()
            .filter(|s| s.name == "gateway.committed" && s.block == Some(block.to_string()))
            .collect();
        let seen: BTreeSet<&str> = spans.iter().filter_map(|s| s.member.as_deref()).collect();
        if seen == members {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "within 60 s the receiver got gateway.committed for block {block} from {seen:?} only"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let mut traces: BTreeMap<&str, BTreeSet<Vec<u8>>> = BTreeMap::new();
    for s in &spans {
        // One process: every service's spans carry the devnet's resource.
        assert_eq!(s.service.as_deref(), Some("fiscus-devnet"));
        assert!(
            s.instance
                .as_deref()
                .is_some_and(|i| i.ends_with(&format!("-{}", devnet.0.id())))
        );
        assert_eq!(s.trace_id.len(), 16);
        traces
            .entry(s.member.as_deref().unwrap())
            .or_default()
            .insert(s.trace_id.clone());
    }
    assert!(
        traces.values().all(|t| t.len() == 1),
        "one span per member and block: {traces:?}"
    );
    drop(devnet);
}
