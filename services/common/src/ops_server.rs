//! The ops HTTP endpoints every service serves: Prometheus `/metrics`,
//! liveness `/healthz` and readiness `/readyz`.

use actix_web::{App, HttpResponse, HttpServer, dev::ServerHandle, web};
use prometheus::{Encoder, Registry, TextEncoder};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

/// Named readiness checks that a service flips as its parts come up or fail,
/// e.g. `"raft"` or `"divergence"`. Ready means every check is ok.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<RwLock<BTreeMap<&'static str, Result<(), String>>>>,
}

impl Readiness {
    /// Registers or updates one check.
    pub fn set(&self, check: &'static str, state: Result<(), String>) {
        // A poisoned lock still holds valid data: a map of check results.
        let mut checks = self.checks.write().unwrap_or_else(|e| e.into_inner());
        checks.insert(check, state);
    }

    /// The failing checks with their reasons; empty when ready.
    pub fn failing(&self) -> BTreeMap<&'static str, String> {
        let checks = self.checks.read().unwrap_or_else(|e| e.into_inner());
        checks
            .iter()
            .filter_map(|(k, v)| v.as_ref().err().map(|e| (*k, e.clone())))
            .collect()
    }
}

struct OpsState {
    registry: Registry,
    readiness: Readiness,
}

async fn metrics(state: web::Data<OpsState>) -> HttpResponse {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&state.registry.gather(), &mut buf) {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(buf),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

async fn readyz(state: web::Data<OpsState>) -> HttpResponse {
    let failing = state.readiness.failing();
    if failing.is_empty() {
        HttpResponse::Ok().body("ready")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("application/problem+json")
            .json(serde_json::json!({
                "type": "urn:fiscus:error:not_ready",
                "title": "Service Unavailable",
                "status": 503,
                "detail": "one or more readiness checks fail",
                "code": "not_ready",
                "failing": failing,
            }))
    }
}

/// A running ops server.
#[derive(Debug)]
pub struct OpsServer {
    pub addr: SocketAddr,
    handle: ServerHandle,
}

impl OpsServer {
    /// Binds `addr` (port 0 picks a free port) and serves in the background on
    /// the current tokio runtime, with one worker: these endpoints are cheap.
    pub fn start(
        addr: SocketAddr,
        registry: Registry,
        readiness: Readiness,
    ) -> std::io::Result<Self> {
        Self::start_with(addr, registry, readiness, |_| {})
    }

    /// Like [`OpsServer::start`], with a service's own extra routes.
    pub fn start_with<F>(
        addr: SocketAddr,
        registry: Registry,
        readiness: Readiness,
        routes: F,
    ) -> std::io::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        // Every service's /metrics shows the spans its process could not export.
        crate::telemetry::register_metrics(&registry).map_err(std::io::Error::other)?;
        let state = web::Data::new(OpsState {
            registry,
            readiness,
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/metrics", web::get().to(metrics))
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .configure(routes.clone())
        })
        .workers(1)
        .disable_signals()
        .bind(addr)?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| std::io::Error::other("ops server bound no address"))?;
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self { addr, handle })
    }

    /// Stops accepting and finishes in-flight requests.
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn metrics_health_and_readiness_are_served_over_http() {
        let registry = Registry::new();
        let committed =
            prometheus::IntCounter::new("fiscus_blocks_committed_total", "Blocks committed")
                .unwrap();
        registry.register(Box::new(committed.clone())).unwrap();
        committed.inc_by(3);
        let readiness = Readiness::default();
        readiness.set("store", Ok(()));
        readiness.set(
            "divergence",
            Err("member 130100 disagrees at height 7".into()),
        );

        let server =
            OpsServer::start("127.0.0.1:0".parse().unwrap(), registry, readiness.clone()).unwrap();

        let metrics = get(server.addr, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(
            metrics.contains("fiscus_blocks_committed_total 3"),
            "{metrics}"
        );

        assert!(
            get(server.addr, "/healthz")
                .await
                .starts_with("HTTP/1.1 200")
        );

        let not_ready = get(server.addr, "/readyz").await;
        assert!(not_ready.starts_with("HTTP/1.1 503"), "{not_ready}");
        assert!(
            not_ready.contains("member 130100 disagrees at height 7"),
            "{not_ready}"
        );

        readiness.set("divergence", Ok(()));
        assert!(
            get(server.addr, "/readyz")
                .await
                .starts_with("HTTP/1.1 200")
        );
        server.stop().await;
    }
}
