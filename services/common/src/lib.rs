//! Cross-cutting infrastructure shared by every Fiscus service.
//!
//! Only plumbing lives here: configuration, telemetry, the ops HTTP endpoints,
//! error conversion, the storage and event-bus traits with their backends, and
//! what several services read the same way: the genesis file, the signer
//! certificates (`certs`) and gRPC endpoints (`tls::Endpoint`).
//! Domain logic lives in the service that owns it.
#![forbid(unsafe_code)]

pub mod actor_runtime;
pub mod bus;
pub mod certs;
pub mod codes;
pub mod config;
pub mod cpu;
pub mod error;
pub mod genesis;
pub mod listen;
pub mod ops_server;
pub mod red;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tls;

pub use error::{ErrorKind, ServiceError};

/// Like [`shutdown_signal`], but SIGINT and SIGTERM are caught from the
/// moment this returns, not from the future's first poll: a signal sent
/// right after a program's first line of output, before a spawned task ran,
/// would otherwise kill the process outright.
pub fn install_shutdown_signal()
-> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutdown signal received");
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (Kubernetes stopping the pod), for graceful shutdown.
pub async fn shutdown_signal() {
    match install_shutdown_signal() {
        Ok(signal) => signal.await,
        // Without a SIGTERM handler, fall back to Ctrl-C alone.
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutdown signal received");
        }
    }
}
