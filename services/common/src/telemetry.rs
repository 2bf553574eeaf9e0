//! Tracing setup, with OpenTelemetry export over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C trace-context propagation
//! through string headers (gRPC metadata, NATS headers).

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::BTreeMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer, Registry, layer::SubscriberExt, util::SubscriberInitExt,
};

/// The environment variable that switches OTLP export on.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTLP exporter could not be built")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInitialized(#[source] tracing_subscriber::util::TryInitError),
}

/// The environment variable with the sampling ratio, OpenTelemetry's
/// standard one: the share of new traces recorded, `0.0`–`1.0` (default
/// `1.0`). Sampling is parent-based: a span follows its parent's decision,
/// so a decision made at submit holds downstream.
pub const SAMPLER_RATIO_ENV: &str = "OTEL_TRACES_SAMPLER_ARG";

/// Keeps the tracer provider alive; dropping it flushes pending spans.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    exporting: bool,
}

impl TelemetryGuard {
    /// Whether spans are being exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.exporting
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            // Best effort: the process is ending and there is nobody to tell.
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber: `RUST_LOG`-filtered logs (default `info`)
/// on stderr, and OpenTelemetry spans (INFO and above), exported over OTLP
/// when [`OTLP_ENDPOINT_ENV`] is set. Spans exist whether or not they are
/// exported, so that trace context reaches gRPC metadata and NATS headers
/// without a collector. OTLP export uses tonic, so call this inside a tokio
/// runtime when it is on.
pub fn init(service: &'static str, json_logs: bool) -> Result<TelemetryGuard, TelemetryError> {
    init_with_default(service, json_logs, "info")
}

/// Like [`init`], with `default_filter` when `RUST_LOG` is unset (e.g. `warn`
/// for `fiscus devnet`, which runs many services in one process). The filter
/// applies to the logs only; spans are kept at INFO and above.
pub fn init_with_default(
    service: &'static str,
    json_logs: bool,
    default_filter: &str,
) -> Result<TelemetryGuard, TelemetryError> {
    let (sampling_ratio, bad_ratio) = sampling_ratio();
    let otlp_endpoint = std::env::var(OTLP_ENDPOINT_ENV)
        .ok()
        .filter(|e| !e.is_empty());
    install(
        service,
        json_logs,
        default_filter,
        TraceOptions {
            otlp_endpoint,
            sampling_ratio,
        },
        bad_ratio,
    )
}

/// Where spans go and how many are sampled, when a caller decides rather
/// than the environment (`fiscus bench e2e --trace-export`).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceOptions {
    /// The OTLP/gRPC endpoint, e.g. `http://127.0.0.1:4317`; `None`: no export.
    pub otlp_endpoint: Option<String>,
    /// The parent-based sampling ratio, `0.0`–`1.0`.
    pub sampling_ratio: f64,
}

/// Like [`init_with_default`], with the export and sampling given.
pub fn init_with_options(
    service: &'static str,
    json_logs: bool,
    default_filter: &str,
    options: TraceOptions,
) -> Result<TelemetryGuard, TelemetryError> {
    install(service, json_logs, default_filter, options, None)
}

fn install(
    service: &'static str,
    json_logs: bool,
    default_filter: &str,
    options: TraceOptions,
    bad_ratio: Option<String>,
) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = Vec::new();
    // Colours only on a terminal: a log file (the process devnet's, a
    // container runtime's) gets plain text.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json_logs {
        layers.push(fmt.json().with_filter(filter).boxed());
    } else {
        layers.push(fmt.with_filter(filter).boxed());
    }
    let exporting = options.otlp_endpoint.is_some();
    let provider = tracer_provider(service, &options)?;
    layers.push(
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service_name(service)))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
            .boxed(),
    );
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(TelemetryError::AlreadyInitialized)?;
    if let Some(v) = bad_ratio {
        tracing::warn!(
            value = %v,
            "{SAMPLER_RATIO_ENV} is not a ratio between 0 and 1; sampling every trace"
        );
    }
    Ok(TelemetryGuard {
        provider: Some(provider),
        exporting,
    })
}

/// `fiscus-<service>`, the `service.name` of every span a process exports.
pub fn service_name(service: &str) -> String {
    if service.starts_with("fiscus") {
        service.to_owned()
    } else {
        format!("fiscus-{service}")
    }
}

/// The sampling ratio from [`SAMPLER_RATIO_ENV`] (1.0 when unset), and the
/// value it had when that was not a ratio.
fn sampling_ratio() -> (f64, Option<String>) {
    match std::env::var(SAMPLER_RATIO_ENV) {
        Err(_) => (1.0, None),
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => (r, None),
            _ => (1.0, Some(v)),
        },
    }
}

/// This process among the replicas of its service: the host (a pod's name
/// on Kubernetes) and the pid.
fn instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{host}-{}", std::process::id())
}

fn tracer_provider(
    service: &str,
    options: &TraceOptions,
) -> Result<SdkTracerProvider, TelemetryError> {
    let ratio = options.sampling_ratio.clamp(0.0, 1.0);
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name(service))
        .with_attribute(opentelemetry::KeyValue::new(
            "service.instance.id",
            instance_id(),
        ))
        .build();
    let sampler = opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
        opentelemetry_sdk::trace::Sampler::TraceIdRatioBased(ratio),
    ));
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(sampler);
    if let Some(endpoint) = &options.otlp_endpoint {
        // Headers and timeouts come from the standard OTEL_EXPORTER_OTLP_* variables.
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .map_err(TelemetryError::Exporter)?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// String headers that carry trace context; ordered, so they encode the same way every time.
pub type Headers = BTreeMap<String, String>;

struct HeaderInjector<'a>(&'a mut Headers);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct HeaderExtractor<'a>(&'a Headers);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Writes the current span's W3C `traceparent` (and `tracestate`) into `headers`.
pub fn inject_current_context(headers: &mut Headers) {
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// Makes `span` a child of the trace context found in `headers`, if any.
pub fn set_parent_from(span: &tracing::Span, headers: &Headers) {
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    // Fails only when the span is disabled; then there is nothing to link.
    let _ = span.set_parent(cx);
}

/// The OpenTelemetry span context of `span` (invalid when spans are off).
pub fn span_context(span: &tracing::Span) -> opentelemetry::trace::SpanContext {
    use opentelemetry::trace::TraceContextExt;
    span.context().span().span_context().clone()
}

/// `span`'s trace id and span id when it is sampled (recorded somewhere):
/// what a block carries so that its spans can link back to the submission.
pub fn sampled_ids(span: &tracing::Span) -> Option<(Vec<u8>, Vec<u8>)> {
    let sc = span_context(span);
    (sc.is_valid() && sc.is_sampled()).then(|| {
        (
            sc.trace_id().to_bytes().to_vec(),
            sc.span_id().to_bytes().to_vec(),
        )
    })
}

/// `span`'s trace context as the W3C headers (`traceparent`, `tracestate`).
pub fn headers_of(span: &tracing::Span) -> Headers {
    let mut headers = Headers::new();
    TraceContextPropagator::new()
        .inject_context(&span.context(), &mut HeaderInjector(&mut headers));
    headers
}

/// Writes `span`'s trace context into gRPC request metadata.
pub fn inject_metadata(span: &tracing::Span, metadata: &mut tonic::metadata::MetadataMap) {
    for (k, v) in headers_of(span) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(k.as_bytes()),
            tonic::metadata::MetadataValue::try_from(v.as_str()),
        ) {
            metadata.insert(k, v);
        }
    }
}

/// Makes `span` a child of the W3C trace context in these header values; a
/// missing or malformed `traceparent` leaves it a new trace's root.
pub fn set_parent_from_values(
    span: &tracing::Span,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) {
    let mut headers = Headers::new();
    if let Some(tp) = traceparent {
        headers.insert("traceparent".into(), tp.to_owned());
        if let Some(ts) = tracestate {
            headers.insert("tracestate".into(), ts.to_owned());
        }
    }
    set_parent_from(span, &headers);
}

/// Adds links from `span` to each `(trace id, span id)`: a block's spans to
/// the submissions whose transactions it carries. Malformed ids are skipped.
pub fn add_links(span: &tracing::Span, links: &[(Vec<u8>, Vec<u8>)]) {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    for (trace, id) in links {
        let (Ok(trace), Ok(id)) = (
            <[u8; 16]>::try_from(trace.as_slice()),
            <[u8; 8]>::try_from(id.as_slice()),
        ) else {
            continue;
        };
        let cx = SpanContext::new(
            TraceId::from_bytes(trace),
            SpanId::from_bytes(id),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        if cx.is_valid() {
            span.add_link(cx);
        }
    }
}

/// The W3C trace id carried in `headers`, if a valid `traceparent` is present.
pub fn trace_id_of(headers: &Headers) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_survives_a_round_trip_through_headers() {
        let mut headers = Headers::new();
        headers.insert(
            "traceparent".into(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        );
        assert_eq!(
            trace_id_of(&headers).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }

    #[test]
    fn headers_without_trace_context_carry_no_trace_id() {
        let mut headers = Headers::new();
        headers.insert("traceparent".into(), "garbage".into());
        assert_eq!(trace_id_of(&headers), None);
    }
}
