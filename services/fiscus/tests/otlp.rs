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
//!   the ledger's commit has its phases as children (`ledger_store.validate`,
//!   `ledger_store.execute`, `ledger_store.attest`, `ledger_store.write`);
//! - a malformed `traceparent` starts a new trace.
//!
//! And with an endpoint nothing listens on: the devnet works as usual, the
//! spans it could not export are counted in `fiscus_otlp_spans_dropped_total`,
//! the failure is logged once, and JSON logs (`FISCUS_LOG_FORMAT=json`) carry
//! the trace id of the request they belong to.

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
    span_id: Vec<u8>,
    parent: Vec<u8>,
    member: Option<String>,
    route: Option<String>,
    error_code: Option<String>,
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
                        span_id: s.span_id.clone(),
                        parent: s.parent_span_id.clone(),
                        member: attr(&s.attributes, "fiscus.member"),
                        route: attr(&s.attributes, "http.route"),
                        error_code: attr(&s.attributes, "fiscus.error_code"),
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
        "orderer_node.admit",
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
        // The ledger's commit shows its phases as children.
        let ledger_spans: Vec<&Received> = spans
            .iter()
            .filter(|s| {
                s.name.starts_with("ledger_store.commit_block")
                    && s.member.as_deref() == Some(m)
                    && s.trace_id == commit.trace_id
            })
            .collect();
        for phase in [
            "ledger_store.validate",
            "ledger_store.execute",
            "ledger_store.attest",
            "ledger_store.write",
        ] {
            let found = spans.iter().any(|s| {
                s.name == phase
                    && ledger_spans
                        .iter()
                        .any(|l| l.trace_id == s.trace_id && l.span_id == s.parent)
            });
            if !found {
                missing.push(format!("{m}: {phase} under the ledger's commit span"));
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
    let refused_code = tokio::task::spawn_blocking(move || {
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
        // A refusal names its code on the request's span.
        let r = call(
            mof,
            "POST",
            "/v1/operations",
            Some(key),
            Some(&appropriate("otlp-refused", 0)),
            &[],
        );
        assert_eq!(r.0 / 100, 4, "{:?}", r.2);
        r.2["code"].as_str().unwrap().to_owned()
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
        let refusal = spans.iter().any(|s| {
            s.name == "http.server" && s.error_code.as_deref() == Some(refused_code.as_str())
        });
        if gaps.is_empty() && chain_read && refusal {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "within 60 s the receiver still lacks: {gaps:#?} (the /v1/chain read: {chain_read}, \
             the refusal {refused_code}: {refusal})"
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

/// The value of an unlabelled counter or gauge in a Prometheus text page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The first metrics URL the devnet wrote to prometheus-targets.json.
fn a_metrics_target(dir: &std::path::Path) -> String {
    let targets: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("prometheus-targets.json")).unwrap(),
    )
    .unwrap();
    targets[0]["targets"][0].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_otlp_endpoint_is_counted_and_said_once_and_logs_carry_trace_ids() {
    // A port nothing listens on: every export is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    let endpoint = format!("http://127.0.0.1:{port}");
    let trace_hex = "0af7651916cd43dd8448eb211c80319c";
    tokio::task::spawn_blocking(move || {
        let (devnet, _) = Devnet::start_collecting_env(
            &dir,
            &[],
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                ("OTEL_BSP_SCHEDULE_DELAY", "200"),
                ("FISCUS_LOG_FORMAT", "json"),
                ("RUST_LOG", "info"),
            ],
        );
        let net = Net::read(&dir);
        let (mof, key, _) = net.api("000000");
        for i in 0..3 {
            let r = call(
                mof,
                "POST",
                "/v1/operations?wait=commit",
                Some(key),
                Some(&appropriate(&format!("unreachable-{i}"), 100)),
                &[],
            );
            assert_eq!(r.0, 200, "{:?}", r.2);
        }
        // A refused import, in the caller's trace: its log line names it.
        let csv = "external_id,op,org_code,program_id,amount_fen,to_org_code,document\n\
                   X1,allocate,000000,t-edu,0,130000,d\n";
        let traceparent = format!("00-{trace_hex}-b7ad6b7169203331-01");
        let r = call(
            mof,
            "POST",
            "/v1/imports?format=csv",
            Some(key),
            Some(csv),
            &[("traceparent", traceparent.as_str())],
        );
        assert_eq!(r.0, 422, "{:?}", r.2);

        // The dropped spans are counted, on the services' /metrics.
        let target = a_metrics_target(&dir);
        let deadline = Instant::now() + Duration::from_secs(60);
        let dropped = loop {
            let page = call(&target, "GET", "/metrics", None, None, &[]);
            let text = page.2.as_str().unwrap_or_default();
            let n = sample(text, "fiscus_otlp_spans_dropped_total").unwrap_or(0.0);
            if n > 0.0 {
                break n;
            }
            assert!(
                Instant::now() < deadline,
                "no dropped span counted within 60 s at {target}: {text:.2000}"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        drop(devnet);

        let log = std::fs::read_to_string(dir.with_extension("stderr.log")).unwrap();
        // The devnet's own progress lines ("devnet: …") are not logs.
        let lines: Vec<serde_json::Value> = log
            .lines()
            .filter(|l| !l.starts_with("devnet: "))
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
            })
            .collect();
        let message =
            |l: &serde_json::Value| l["fields"]["message"].as_str().unwrap_or("").to_owned();
        let warnings: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| message(l).contains("OTLP export failed"))
            .collect();
        assert_eq!(
            warnings.len(),
            1,
            "one warning for the outage: {warnings:#?}"
        );
        assert_eq!(warnings[0]["level"], "WARN");
        assert!(
            !log.contains("BatchSpanProcessor"),
            "the SDK's own per-batch errors are not logged"
        );
        let refused = lines
            .iter()
            .find(|l| message(l) == "import refused")
            .unwrap_or_else(|| panic!("no 'import refused' line among {} lines", lines.len()));
        assert_eq!(refused["trace_id"], trace_hex, "{refused}");
        let span_id = refused["span_id"].as_str().unwrap();
        assert!(
            span_id.len() == 16 && span_id != "b7ad6b7169203331",
            "the request's own span: {refused}"
        );
        assert!(dropped >= 1.0);
    })
    .await
    .unwrap();
}
