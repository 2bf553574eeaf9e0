use fiscus_common::codes;
use fiscus_common::{ErrorKind, ServiceError};

/// What the orderer can fail at.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage: {0}")]
    Storage(String),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("this node is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("configuration: {0}")]
    Config(String),
    #[error("TLS: {0}")]
    Tls(#[from] fiscus_common::tls::TlsError),
    #[error("I/O on {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the node has stopped")]
    Stopped,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<&Error> for ServiceError {
    fn from(e: &Error) -> Self {
        let (kind, code) = match e {
            Error::NotLeader { .. } => (ErrorKind::Unavailable, codes::orderer::NO_LEADER),
            Error::Stopped => (ErrorKind::Unavailable, codes::orderer::STOPPED),
            Error::Config(_) => (ErrorKind::FailedPrecondition, codes::orderer::CONFIG),
            Error::Storage(_) | Error::Raft(_) | Error::Tls(_) | Error::Io { .. } => {
                (ErrorKind::Internal, codes::orderer::INTERNAL)
            }
        };
        ServiceError::new(kind, code, e.to_string())
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        ServiceError::from(&e).into()
    }
}
