use crate::sign::VerifyError;

/// Everything that can be wrong with bytes that arrive from the network.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} is {len} bytes, over the limit of {limit}")]
    TooLarge {
        what: &'static str,
        len: usize,
        limit: usize,
    },
    #[error("{what} has {count} entries, over the limit of {limit}")]
    TooMany {
        what: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("{what} is malformed protobuf")]
    Decode {
        what: &'static str,
        #[source]
        source: prost::DecodeError,
    },
    #[error("{field} must be {expected} bytes, got {got}")]
    BadLength {
        field: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("signature check failed")]
    Signature(#[from] VerifyError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
