//! Why the gateway could not start. Errors on its gRPC service leave through
//! `fiscus_common::ServiceError` with a code from `fiscus_common::codes`.

/// Errors starting the gateway.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] fiscus_common::tls::TlsError),
    #[error(transparent)]
    Certs(#[from] fiscus_common::certs::LoadError),
    #[error(transparent)]
    Bus(#[from] fiscus_common::bus::BusError),
    #[error(transparent)]
    Genesis(#[from] fiscus_common::genesis::GenesisError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the ledger-store at {addr}: {message}")]
    Ledger { addr: String, message: String },
    /// This process's certificate cannot serve as a gateway's.
    #[error("this process's certificate has role {0:?}; the gateway needs a node certificate")]
    WrongRole(fiscus_proto::pb::types::Role),
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}
