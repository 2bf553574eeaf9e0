//! RED metrics (rate, errors, duration) for every HTTP and gRPC server, one
//! histogram each; the `_count` series is the request rate, the code label
//! the errors:
//!
//! - `fiscus_http_server_request_duration_seconds{route,method,code}`: an
//!   actix-web middleware ([`record_http`], with [`HttpMetrics`] in the app
//!   data). `route` is the matched route template (`/v1/txs/{tx_id}`), never
//!   the raw path; a path no route matches is `unmatched`.
//! - `fiscus_grpc_server_request_duration_seconds{grpc_service,grpc_method,grpc_code}`:
//!   a tower layer for tonic servers ([`GrpcMetricsLayer`]). A call is
//!   observed once, when it ends: at the trailers that carry its status (a
//!   stream's end), or at once for a trailers-only answer; a call the client
//!   abandons counts as `Cancelled`. `grpc_code` is `OK` or tonic's name of the
//!   code (`Unavailable`, `PermissionDenied`, …).
//!
//! Every label value comes from a bounded set: route templates, a fixed list
//! of methods, status codes, and service/method names only when a service
//! answered (a path no service knows answers `Unimplemented` and is labelled
//! `unknown`), so no client can grow the series without bound.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use http_body::{Body, Frame};
use prometheus::{HistogramOpts, HistogramVec, Registry};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// Buckets for request durations: 1 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The HTTP histogram of one server; put it in the app data
/// (`App::app_data(web::Data::new(metrics))`) and wrap the app with
/// `actix_web::middleware::from_fn(record_http)`.
#[derive(Debug, Clone)]
pub struct HttpMetrics(HistogramVec);

impl HttpMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let h = HistogramVec::new(
            HistogramOpts::new(
                "fiscus_http_server_request_duration_seconds",
                "HTTP requests served, by route template, method and status code",
            )
            .buckets(BUCKETS.to_vec()),
            &["route", "method", "code"],
        )?;
        registry.register(Box::new(h.clone()))?;
        Ok(Self(h))
    }
}

/// The method as a label: the standard ones, else `other`.
fn method_label(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The actix-web middleware: observes every request into the app's
/// [`HttpMetrics`] (does nothing if there are none).
pub async fn record_http(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let metrics = req.app_data::<web::Data<HttpMetrics>>().cloned();
    let method = method_label(req.method());
    // The request's span, a child of the client's `traceparent` (a missing or
    // malformed one starts a new trace).
    let span = tracing::info_span!(
        "http.server",
        otel.kind = "server",
        http.request.method = method,
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        fiscus.error_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    crate::telemetry::set_parent_from_values(
        &span,
        header("traceparent").as_deref(),
        header("tracestate").as_deref(),
    );
    let res = tracing::Instrument::instrument(next.call(req), span.clone()).await;
    let (route, status) = match &res {
        Ok(r) => (r.request().match_pattern(), r.status()),
        Err(e) => (None, e.as_response_error().status_code()),
    };
    span.record("http.route", route.as_deref().unwrap_or("unmatched"));
    span.record("http.response.status_code", status.as_u16());
    // A refusal names its stable code (the collector keeps such traces); a
    // server error marks the span as failed (OpenTelemetry's HTTP conventions:
    // 4xx is the client's doing).
    let code = match &res {
        Ok(r) => r
            .response()
            .error()
            .and_then(|e| e.as_error::<crate::error::ServiceError>()),
        Err(e) => e.as_error::<crate::error::ServiceError>(),
    }
    .map(|e| e.code);
    if let Some(code) = code {
        span.record("fiscus.error_code", code);
    }
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    if let Some(m) = metrics {
        m.0.with_label_values(&[
            route.as_deref().unwrap_or("unmatched"),
            method,
            status.as_str(),
        ])
        .observe(start.elapsed().as_secs_f64());
    }
    res
}

/// The gRPC histogram, as a tower layer for `tonic::transport::Server::builder().layer(…)`.
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer(HistogramVec);

impl GrpcMetricsLayer {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let h = HistogramVec::new(
            HistogramOpts::new(
                "fiscus_grpc_server_request_duration_seconds",
                "gRPC calls served, by service, method and status code, observed when each ends",
            )
            .buckets(BUCKETS.to_vec()),
            &["grpc_service", "grpc_method", "grpc_code"],
        )?;
        registry.register(Box::new(h.clone()))?;
        Ok(Self(h))
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            hist: self.0.clone(),
        }
    }
}

/// The service [`GrpcMetricsLayer`] wraps around a tonic router.
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    hist: HistogramVec,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Observed<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        // "/fiscus.exchange.v1.Exchange/Submit"
        let (service, method) = req
            .uri()
            .path()
            .trim_start_matches('/')
            .split_once('/')
            .map(|(s, m)| (s.to_owned(), m.to_owned()))
            .unwrap_or_default();
        // The call's span, a child of the caller's trace context (a missing or
        // malformed `traceparent` starts a new trace).
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = %format!("{service}/{method}"),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            fiscus.error_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        crate::telemetry::set_parent_from_values(
            &span,
            header("traceparent").as_deref(),
            header("tracestate").as_deref(),
        );
        let mut call = Call {
            hist: Some(self.hist.clone()),
            service,
            method,
            start: Instant::now(),
            span: span.clone(),
        };
        let fut = span.in_scope(|| self.inner.call(req));
        Box::pin(tracing::Instrument::instrument(
            async move {
                let res = fut.await?;
                let (parts, body) = res.into_parts();
                // A trailers-only answer (most errors) carries the status in the headers.
                if let Some(code) = grpc_status(&parts.headers) {
                    call.finish(code, error_code(&parts.headers));
                }
                Ok(http::Response::from_parts(
                    parts,
                    Observed {
                        inner: Box::pin(body),
                        call,
                    },
                ))
            },
            span,
        ))
    }
}

/// The `grpc-status` in `headers`, if there is one.
fn grpc_status(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let v = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(tonic::Code::from_i32(v))
}

/// The stable Fiscus code a refusal carries (`fiscus-error-code`), if any.
fn error_code(headers: &http::HeaderMap) -> Option<&str> {
    headers.get(crate::error::GRPC_CODE_METADATA)?.to_str().ok()
}

/// Whether a server's span for a call ending with `code` is failed, by
/// OpenTelemetry's RPC conventions (the client's mistakes are not).
fn server_failed(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unknown | DeadlineExceeded | Unimplemented | Internal | Unavailable | DataLoss
    )
}

/// One call, observed once.
#[derive(Debug)]
struct Call {
    /// `None` once observed.
    hist: Option<HistogramVec>,
    service: String,
    method: String,
    start: Instant,
    /// The call's span, open until the call ends (a stream's last frame).
    span: tracing::Span,
}

impl Call {
    fn finish(&mut self, code: tonic::Code, error_code: Option<&str>) {
        let Some(hist) = self.hist.take() else {
            return;
        };
        self.span.record("rpc.grpc.status_code", code as i32);
        if let Some(c) = error_code {
            self.span.record("fiscus.error_code", c);
        }
        if server_failed(code) {
            self.span.record("otel.status_code", "ERROR");
        }
        let (service, method) = if code == tonic::Code::Unimplemented {
            // Possibly a path no service has: never a label.
            ("unknown", "unknown")
        } else {
            (self.service.as_str(), self.method.as_str())
        };
        let code = match code {
            tonic::Code::Ok => "OK".to_owned(),
            other => format!("{other:?}"),
        };
        hist.with_label_values(&[service, method, code.as_str()])
            .observe(self.start.elapsed().as_secs_f64());
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The response body was dropped before its trailers: the client left.
        self.finish(tonic::Code::Cancelled, None);
    }
}

/// A response body that observes its call at the trailers (or the end).
#[derive(Debug)]
pub struct Observed<B> {
    inner: Pin<Box<B>>,
    call: Call,
}

impl<B: Body> Body for Observed<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = self.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(code) = grpc_status(trailers)
                {
                    let error = error_code(trailers).map(str::to_owned);
                    self.call.finish(code, error.as_deref());
                }
            }
            Poll::Ready(Some(Err(_))) => self.call.finish(tonic::Code::Internal, None),
            // Ended without a status: gRPC says that is an error.
            Poll::Ready(None) => self.call.finish(tonic::Code::Unknown, None),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
