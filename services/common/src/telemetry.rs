//! Tracing setup, with OpenTelemetry export over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C trace-context propagation
//! through string headers (gRPC metadata, NATS headers).
//!
//! A wrong or unreachable endpoint never blocks or slows a service: spans
//! wait in a bounded queue, a failed export drops its batch, and every
//! dropped span is counted in `fiscus_otlp_spans_dropped_total`, with one
//! warning when export starts failing (and one line when it recovers), not a
//! log line per span or batch. JSON logs (`FISCUS_LOG_FORMAT=json` or a
//! service's `json_logs`) carry the `trace_id` and `span_id` of the span an
//! event happens in.

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
    #[error("a global tracing subscriber is already installed")]
    AlreadyInitialized(#[source] tracing_subscriber::util::TryInitError),
}

/// The environment variable that chooses the log format: `json` (one JSON
/// object per line, with the trace and span ids) or `text`. It overrides a
/// service's `json_logs`.
pub const LOG_FORMAT_ENV: &str = "FISCUS_LOG_FORMAT";

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
    init_with_attributes(service, json_logs, &[])
}

/// Like [`init`], adding resource attributes that name this process among
/// the consortium's, e.g. `("fiscus.orderer", "2")` or `("fiscus.member",
/// "130000")`, when its config knows them. `OTEL_RESOURCE_ATTRIBUTES` adds
/// more (the member chart and the operator set `fiscus.member` there); these
/// win over it.
pub fn init_with_attributes(
    service: &'static str,
    json_logs: bool,
    attributes: &[(&'static str, String)],
) -> Result<TelemetryGuard, TelemetryError> {
    let (options, bad_ratio) = options_from_env();
    install(Setup {
        service,
        json_logs,
        default_filter: "info",
        options,
        bad_ratio,
        attributes: attributes.to_vec(),
    })
}

/// Like [`init`], with `default_filter` when `RUST_LOG` is unset (e.g. `warn`
/// for `fiscus devnet`, which runs many services in one process). The filter
/// applies to the logs only; spans are kept at INFO and above.
pub fn init_with_default(
    service: &'static str,
    json_logs: bool,
    default_filter: &str,
) -> Result<TelemetryGuard, TelemetryError> {
    let (options, bad_ratio) = options_from_env();
    install(Setup {
        service,
        json_logs,
        default_filter,
        options,
        bad_ratio,
        attributes: Vec::new(),
    })
}

/// The export and sampling the standard OpenTelemetry variables ask for, and
/// the sampling value when it was not a ratio.
fn options_from_env() -> (TraceOptions, Option<String>) {
    let (sampling_ratio, bad_ratio) = sampling_ratio();
    let otlp_endpoint = std::env::var(OTLP_ENDPOINT_ENV)
        .ok()
        .filter(|e| !e.trim().is_empty());
    (
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
    install(Setup {
        service,
        json_logs,
        default_filter,
        options,
        bad_ratio: None,
        attributes: Vec::new(),
    })
}

/// Everything [`install`] needs.
struct Setup<'a> {
    service: &'static str,
    json_logs: bool,
    default_filter: &'a str,
    options: TraceOptions,
    bad_ratio: Option<String>,
    attributes: Vec<(&'static str, String)>,
}

/// The log format: [`LOG_FORMAT_ENV`] when set to `json` or `text`, else
/// `json_logs`; and the variable's value when it was neither.
fn json_format(json_logs: bool) -> (bool, Option<String>) {
    match std::env::var(LOG_FORMAT_ENV) {
        Err(_) => (json_logs, None),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "json" => (true, None),
            "text" => (false, None),
            "" => (json_logs, None),
            _ => (json_logs, Some(v)),
        },
    }
}

/// The log filter: `RUST_LOG`, else `default_filter`. The OpenTelemetry
/// SDK's own diagnostics (a line per failed export) are off unless `RUST_LOG`
/// names them: [`CountingExporter`] says it once, and counts.
fn log_filter(default_filter: &str) -> EnvFilter {
    let from_env = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    let mut filter = from_env
        .as_deref()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(default_filter));
    if !from_env.is_some_and(|v| v.contains("opentelemetry")) {
        for target in ["opentelemetry", "opentelemetry_sdk", "opentelemetry_otlp"] {
            if let Ok(d) = format!("{target}=off").parse() {
                filter = filter.add_directive(d);
            }
        }
    }
    filter
}

fn install(setup: Setup<'_>) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let (json_logs, bad_format) = json_format(setup.json_logs);
    let filter = log_filter(setup.default_filter);
    let (provider, exporting, build_error) =
        tracer_provider(setup.service, &setup.options, &setup.attributes);
    dispatch(
        json_logs,
        filter,
        provider.tracer(service_name(setup.service)),
    )
    .try_init()
    .map_err(TelemetryError::AlreadyInitialized)?;
    if let Some(v) = setup.bad_ratio {
        tracing::warn!(
            value = %v,
            "{SAMPLER_RATIO_ENV} is not a ratio between 0 and 1; sampling every trace"
        );
    }
    if let Some(v) = bad_format {
        tracing::warn!(value = %v, "{LOG_FORMAT_ENV} is neither json nor text; ignored");
    }
    if let Some(e) = build_error {
        tracing::warn!(
            endpoint = setup.options.otlp_endpoint.as_deref().unwrap_or_default(),
            error = %e,
            "{OTLP_ENDPOINT_ENV} is not a usable OTLP/gRPC endpoint; spans are not exported \
             (counted in {SPANS_DROPPED})"
        );
    }
    Ok(TelemetryGuard {
        provider: Some(provider),
        exporting,
    })
}

/// The dispatcher: logs through `filter`, spans at INFO and above to
/// `tracer`. Every layer has its own filter, so the subscriber's level hint
/// is the highest of theirs: a callsite no layer wants (the `trace!` and
/// `trace_span!` in h2, hyper and tonic, on every frame) is disabled where
/// it stands instead of building a span that every layer then ignores. (The
/// JSON formatter's handle on the dispatcher is set here rather than by a
/// layer: an unfiltered layer would enable every callsite at every level,
/// and a filtered one would make every wanted callsite ask on each hit.)
fn dispatch(
    json_logs: bool,
    filter: EnvFilter,
    tracer: opentelemetry_sdk::trace::Tracer,
) -> tracing::Dispatch {
    let (subscriber, cell) = subscriber(json_logs, filter, tracer);
    let dispatch = tracing::Dispatch::new(subscriber);
    let _ = cell.0.set(dispatch.downgrade());
    dispatch
}

/// [`dispatch`]'s subscriber, and the cell its JSON formatter reads the
/// dispatcher from.
fn subscriber(
    json_logs: bool,
    filter: EnvFilter,
    tracer: opentelemetry_sdk::trace::Tracer,
) -> (
    impl tracing::Subscriber + Send + Sync + 'static,
    DispatchCell,
) {
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = Vec::new();
    // Colours only on a terminal: a log file (the process devnet's, a
    // container runtime's) gets plain text.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let cell = DispatchCell::default();
    if json_logs {
        layers.push(
            fmt.fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                .event_format(JsonWithTrace::new(cell.clone()))
                .with_filter(filter)
                .boxed(),
        );
    } else {
        layers.push(fmt.with_filter(filter).boxed());
    }
    layers.push(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
            .boxed(),
    );
    (tracing_subscriber::registry().with(layers), cell)
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

/// The tracer provider; whether it exports; and why the exporter could not
/// be built (a malformed endpoint: then every sampled span is counted as
/// dropped, and the service runs on).
fn tracer_provider(
    service: &str,
    options: &TraceOptions,
    attributes: &[(&'static str, String)],
) -> (SdkTracerProvider, bool, Option<String>) {
    let ratio = options.sampling_ratio.clamp(0.0, 1.0);
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name(service))
        .with_attribute(opentelemetry::KeyValue::new(
            "service.instance.id",
            instance_id(),
        ))
        .with_attributes(
            attributes
                .iter()
                .map(|(k, v)| opentelemetry::KeyValue::new(*k, v.clone())),
        )
        .build();
    let sampler = opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
        opentelemetry_sdk::trace::Sampler::TraceIdRatioBased(ratio),
    ));
    let builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(sampler);
    let Some(endpoint) = &options.otlp_endpoint else {
        return (builder.build(), false, None);
    };
    // Headers and timeouts come from the standard OTEL_EXPORTER_OTLP_* variables.
    use opentelemetry_otlp::WithExportConfig as _;
    match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .build()
    {
        Ok(exporter) => (
            builder
                .with_span_processor(BoundedProcessor::new(CountingExporter::new(
                    exporter,
                    endpoint.clone(),
                )))
                .build(),
            true,
            None,
        ),
        Err(e) => (
            builder.with_span_processor(DroppingProcessor).build(),
            false,
            Some(e.to_string()),
        ),
    }
}

/// The name of the counter of spans that never reached the OTLP endpoint.
pub const SPANS_DROPPED: &str = "fiscus_otlp_spans_dropped_total";

/// Spans dropped because the OTLP endpoint is wrong, unreachable or too slow
/// (the export queue was full), counted for the whole process.
pub fn spans_dropped() -> &'static prometheus::IntCounter {
    static DROPPED: std::sync::LazyLock<prometheus::IntCounter> = std::sync::LazyLock::new(|| {
        prometheus::IntCounter::new(
            SPANS_DROPPED,
            "Sampled spans dropped before reaching the OTLP endpoint (export failed, \
             the endpoint is malformed, or the export queue was full)",
        )
        // The name and help are constants: this cannot fail.
        .unwrap_or_else(|e| unreachable!("{SPANS_DROPPED}: {e}"))
    });
    &DROPPED
}

/// Registers [`spans_dropped`] in `registry` (the ops server does, for
/// every service).
pub fn register_metrics(registry: &prometheus::Registry) -> Result<(), prometheus::Error> {
    match registry.register(Box::new(spans_dropped().clone())) {
        Ok(()) | Err(prometheus::Error::AlreadyReg) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The most spans waiting for export (queued or in an export under way);
/// more are dropped, and counted. The SDK's own queue is twice as large, so
/// it never drops one that this bound let through.
const MAX_QUEUED_SPANS: usize = 2048;

/// The SDK's batch processor behind a bound of its own, so that every span
/// it drops is counted: a span that finds [`MAX_QUEUED_SPANS`] waiting is
/// dropped here; the others are released by [`CountingExporter`] when their
/// batch's export ends, exported or failed.
#[derive(Debug)]
struct BoundedProcessor {
    inner: opentelemetry_sdk::trace::BatchSpanProcessor,
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl BoundedProcessor {
    fn new(exporter: CountingExporter) -> Self {
        let queued = exporter.queued.clone();
        let config = opentelemetry_sdk::trace::BatchConfigBuilder::default()
            .with_max_queue_size(2 * MAX_QUEUED_SPANS)
            .build();
        Self {
            inner: opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter)
                .with_batch_config(config)
                .build(),
            queued,
        }
    }
}

impl opentelemetry_sdk::trace::SpanProcessor for BoundedProcessor {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: opentelemetry_sdk::trace::SpanData) {
        use std::sync::atomic::Ordering;
        if !span.span_context.is_sampled() {
            return;
        }
        let admitted = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_QUEUED_SPANS).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            self.inner.on_end(span);
        } else {
            spans_dropped().inc();
        }
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// Where the sampled spans go when the endpoint could not be used at all:
/// nowhere, counted.
#[derive(Debug)]
struct DroppingProcessor;

impl opentelemetry_sdk::trace::SpanProcessor for DroppingProcessor {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}

    fn on_end(&self, span: opentelemetry_sdk::trace::SpanData) {
        if span.span_context.is_sampled() {
            spans_dropped().inc();
        }
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(
        &self,
        _: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

/// The OTLP exporter, counting what it could not deliver and saying so once
/// per outage: a warning when an export first fails, a line when one
/// succeeds again.
#[derive(Debug)]
struct CountingExporter {
    inner: opentelemetry_otlp::SpanExporter,
    endpoint: String,
    failing: std::sync::atomic::AtomicBool,
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CountingExporter {
    fn new(inner: opentelemetry_otlp::SpanExporter, endpoint: String) -> Self {
        Self {
            inner,
            endpoint,
            failing: std::sync::atomic::AtomicBool::new(false),
            queued: Default::default(),
        }
    }
}

impl opentelemetry_sdk::trace::SpanExporter for CountingExporter {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        use std::sync::atomic::Ordering;
        let n = batch.len();
        let result = self.inner.export(batch).await;
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(n))
            });
        match &result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::AcqRel) {
                    tracing::info!(endpoint = %self.endpoint, "OTLP export works again");
                }
            }
            Err(e) => {
                spans_dropped().inc_by(n as u64);
                if !self.failing.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        error = %e,
                        "OTLP export failed; spans are dropped and counted in {SPANS_DROPPED} \
                         until it works again (no further warning)"
                    );
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// The dispatcher the subscriber was registered as, for the JSON formatter
/// to read a span's OpenTelemetry context from (an event is formatted inside
/// the dispatcher, where the current default is not reachable).
#[derive(Debug, Clone, Default)]
struct DispatchCell(std::sync::Arc<std::sync::OnceLock<tracing::dispatcher::WeakDispatch>>);

/// tracing-subscriber's JSON event format with the OpenTelemetry `trace_id`
/// and `span_id` of the span the event happened in (none outside a span),
/// so that a log line leads to its trace.
#[derive(Debug)]
pub struct JsonWithTrace {
    inner: tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Json>,
    dispatch: DispatchCell,
}

impl JsonWithTrace {
    fn new(dispatch: DispatchCell) -> Self {
        Self {
            inner: tracing_subscriber::fmt::format().json(),
            dispatch,
        }
    }

    /// The current span's trace and span ids, as lowercase hex.
    fn ids<S>(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<
            '_,
            S,
            tracing_subscriber::fmt::format::JsonFields,
        >,
    ) -> Option<(String, String)>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        use opentelemetry::trace::TraceContextExt;
        let id = ctx.lookup_current()?.id();
        let dispatch = self.dispatch.0.get()?.upgrade()?;
        let cx = tracing_opentelemetry::get_otel_context(&id, &dispatch)?;
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid()
            .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
    }
}

impl<S> tracing_subscriber::fmt::FormatEvent<S, tracing_subscriber::fmt::format::JsonFields>
    for JsonWithTrace
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<
            '_,
            S,
            tracing_subscriber::fmt::format::JsonFields,
        >,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        // The ids first, while no span's extensions are borrowed.
        let ids = self.ids(ctx);
        let mut line = String::new();
        self.inner.format_event(
            ctx,
            tracing_subscriber::fmt::format::Writer::new(&mut line),
            event,
        )?;
        match (ids, line.strip_prefix('{')) {
            (Some((trace, span)), Some(rest)) => {
                write!(
                    writer,
                    "{{\"trace_id\":\"{trace}\",\"span_id\":\"{span}\",{rest}"
                )
            }
            _ => writer.write_str(&line),
        }
    }
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

/// The span context a block's trace link names (remote, sampled); `None`
/// for malformed or invalid ids.
fn remote_context(trace_id: &[u8], span_id: &[u8]) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let trace = <[u8; 16]>::try_from(trace_id).ok()?;
    let id = <[u8; 8]>::try_from(span_id).ok()?;
    let cx = SpanContext::new(
        TraceId::from_bytes(trace),
        SpanId::from_bytes(id),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    cx.is_valid().then_some(cx)
}

/// Adds links from `span` to each `(trace id, span id)`: a block's spans to
/// the submissions whose transactions it carries. Malformed ids are skipped.
pub fn add_links(span: &tracing::Span, links: &[(Vec<u8>, Vec<u8>)]) {
    for (trace, id) in links {
        if let Some(cx) = remote_context(trace, id) {
            span.add_link(cx);
        }
    }
}

/// Makes `span` a child of the span `span_id` in trace `trace_id` (a remote
/// parent, as a block's trace link names it: sampled). Malformed ids leave
/// `span` a new trace's root.
pub fn set_remote_parent(span: &tracing::Span, trace_id: &[u8], span_id: &[u8]) {
    use opentelemetry::trace::TraceContextExt;
    if let Some(sc) = remote_context(trace_id, span_id) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(sc));
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
    fn a_malformed_endpoint_is_reported_and_its_spans_counted_as_dropped() {
        use opentelemetry::trace::{Tracer as _, TracerProvider as _};
        let (provider, exporting, error) = tracer_provider(
            "test",
            &TraceOptions {
                otlp_endpoint: Some("::not a url::".into()),
                sampling_ratio: 1.0,
            },
            &[],
        );
        assert!(!exporting);
        assert!(error.is_some_and(|e| e.contains("endpoint")));
        let before = spans_dropped().get();
        provider.tracer("test").in_span("dropped", |_| {});
        // Other tests in this process may drop spans too: at least this one.
        assert!(spans_dropped().get() > before);
    }

    #[test]
    fn the_level_hint_is_the_highest_a_layer_wants() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::filter::LevelFilter;
        let options = TraceOptions {
            otlp_endpoint: None,
            sampling_ratio: 1.0,
        };
        let (provider, _, _) = tracer_provider("test", &options, &[]);
        let hint = |filter: &str, json: bool| {
            let (s, _) = subscriber(json, EnvFilter::new(filter), provider.tracer("test"));
            tracing::Subscriber::max_level_hint(&s)
        };
        // The logs want WARN, the spans INFO: no callsite below INFO is
        // enabled (the hint was None, i.e. TRACE, with an unfiltered layer).
        assert_eq!(hint("warn", false), Some(LevelFilter::INFO));
        assert_eq!(hint("warn", true), Some(LevelFilter::INFO));
        assert_eq!(hint("debug", false), Some(LevelFilter::DEBUG));
        assert_eq!(hint("h2=trace", true), Some(LevelFilter::TRACE));
    }

    #[test]
    fn headers_without_trace_context_carry_no_trace_id() {
        let mut headers = Headers::new();
        headers.insert("traceparent".into(), "garbage".into());
        assert_eq!(trace_id_of(&headers), None);
    }
}
