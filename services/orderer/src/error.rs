use fiscus_common::codes;
use fiscus_common::{ErrorKind, ServiceError};

/// What the orderer can fail at.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage: {0}")]
    Db(#[from] redb::Error),
    /// A stored record that does not read back as what was written.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    #[error("encoding a Raft record: {0}")]
    Protobuf(#[from] protobuf::ProtobufError),
    #[error("encoding the peer list: {0}")]
    Json(#[from] serde_json::Error),
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Fetching the blocks a Raft snapshot covers from a peer failed.
    #[error("block catch-up: {0}")]
    CatchUp(String),
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
            Error::Db(_)
            | Error::Corrupt(_)
            | Error::Protobuf(_)
            | Error::Json(_)
            | Error::Metrics(_)
            | Error::CatchUp(_)
            | Error::Raft(_)
            | Error::Tls(_)
            | Error::Io { .. } => (ErrorKind::Internal, codes::orderer::INTERNAL),
        };
        ServiceError::new(kind, code, e.to_string())
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        ServiceError::from(&e).into()
    }
}
