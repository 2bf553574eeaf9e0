//! Why the contract-executor could not start. A contract's refusal of a
//! transaction is not an error of the service: it is a [`crate::Rejection`]
//! (`rejection.rs`), which becomes the transaction's receipt.

use fiscus_proto::pb::types::Role;

/// Errors starting the process.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] fiscus_common::tls::TlsError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("this process's certificate has role {0:?}; the executor needs a node certificate")]
    WrongRole(Role),
}
