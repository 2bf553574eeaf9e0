//! One submission's trace reaches a real OTLP/gRPC trace receiver (a tonic
//! server built from the OpenTelemetry collector's service definitions, in
//! this test) from every service of a devnet run with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at it:
//!
//! - the REST call continues the caller's `traceparent`: `http.server` and
//!   `adapter.broadcast` at the adapter, the orderer's `Broadcast` call, all in
//!   the caller's trace;
//! - the orderer's `orderer_node.cut_block` links to it;
//! - at each of the five members, `gateway.commit_blocks` links to it, and the
//!   ledger-store's `ledger_store.commit_block` (through the call's metadata) and the
//!   gateway's `gateway.committed` (the block's events) are in that span's trace;
//! - a malformed `traceparent` starts a new trace.

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

/// One received span: resource service name and instance, name, ids, attributes, links.
#[derive(Debug)]
struct Received {
    service: Option<String>,
    instance: Option<String>,
    name: String,
    trace_id: Vec<u8>,
    parent: Vec<u8>,
    member: Option<String>,
    route: Option<String>,
    links: Vec<Vec<u8>>,
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
                        parent: s.parent_span_id.clone(),
                        member: attr(&s.attributes, "fiscus.member"),
                        route: attr(&s.attributes, "http.route"),
                        links: s.links.iter().map(|l| l.trace_id.clone()).collect(),
                    });
                }
            }
        }
    }
    out
}

const MEMBERS: [&str; 5] = ["000000", "130000", "130100", "130102", "991300"];

/// What the receiver must hold for the transaction submitted in `trace`.
fn missing(spans: &[Received], trace: &[u8]) -> Vec<String> {
    let mut missing = Vec::new();
    let in_trace = |name: &str| spans.iter().any(|s| s.name == name && s.trace_id == trace);
    for name in [
        "http.server",
        "adapter.broadcast",
        "fiscus.orderer.v1.Orderer/Broadcast",
    ] {
        if !in_trace(name) {
            missing.push(format!("{name} in the submit's trace"));
        }
    }
    if !spans
        .iter()
        .any(|s| s.name == "orderer_node.cut_block" && s.links.iter().any(|l| l == trace))
    {
        missing.push("orderer_node.cut_block linked to the submit".into());
    }
    for m in MEMBERS {
        let Some(commit) = spans.iter().find(|s| {
            s.name == "gateway.commit_blocks"
                && s.member.as_deref() == Some(m)
                && s.links.iter().any(|l| l == trace)
        }) else {
            missing.push(format!("{m}: gateway.commit_blocks linked to the submit"));
            continue;
        };
        for child in ["gateway.committed", "ledger_store.commit_block"] {
            let found = spans.iter().any(|s| {
                (s.name == child
                    || (child == "ledger_store.commit_block"
                        && s.name == "ledger_store.commit_blocks"))
                    && s.member.as_deref() == Some(m)
                    && s.trace_id == commit.trace_id
            });
            if !found {
                missing.push(format!("{m}: {child} in the gateway's commit trace"));
            }
        }
    }
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_submission_s_trace_reaches_a_real_otlp_receiver_from_every_service() {
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

    // The caller's trace: the adapter continues it.
    let trace_hex = "4bf92f3577b34da6a3ce929d0e0e4736";
    let trace = hex::decode(trace_hex).unwrap();
    tokio::task::spawn_blocking(move || {
        let net = Net::read(&dir);
        let (mof, key, _) = net.api("000000");
        let traceparent = format!("00-{trace_hex}-00f067aa0ba902b7-01");
        let r = call(
            mof,
            "POST",
            "/v1/operations?wait=commit",
            Some(key),
            Some(&appropriate("otlp", 100)),
            &[("traceparent", traceparent.as_str())],
        );
        assert_eq!(r.0, 200, "{:?}", r.2);
        // A malformed traceparent starts a new trace.
        let r = call(
            mof,
            "GET",
            "/v1/chain",
            Some(key),
            None,
            &[("traceparent", "00-garbage")],
        );
        assert_eq!(r.0, 200, "{:?}", r.2);
    })
    .await
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let spans = loop {
        let spans = received(&receiver);
        let gaps = missing(&spans, &trace);
        let chain_read = spans
            .iter()
            .any(|s| s.name == "http.server" && s.route.as_deref() == Some("/v1/chain"));
        if gaps.is_empty() && chain_read {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "within 60 s the receiver still lacks: {gaps:#?} (the /v1/chain read: {chain_read})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // One process: every span carries the devnet's resource.
    for s in &spans {
        assert_eq!(s.service.as_deref(), Some("fiscus-devnet"), "{s:?}");
        assert!(
            s.instance
                .as_deref()
                .is_some_and(|i| i.ends_with(&format!("-{}", devnet.0.id()))),
            "{s:?}"
        );
    }
    // The submit's span continues the caller's: its parent is the caller's span.
    let submit = spans
        .iter()
        .find(|s| s.name == "http.server" && s.trace_id == trace)
        .unwrap();
    assert_eq!(hex::encode(&submit.parent), "00f067aa0ba902b7");
    // The malformed header: a new trace, a root span.
    let read = spans
        .iter()
        .find(|s| s.name == "http.server" && s.route.as_deref() == Some("/v1/chain"))
        .unwrap();
    assert_ne!(read.trace_id, trace);
    assert!(
        read.trace_id.iter().any(|b| *b != 0) && read.parent.is_empty(),
        "{read:?}"
    );
    drop(devnet);
}
