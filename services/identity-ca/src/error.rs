use fiscus_common::codes;
use fiscus_common::{ErrorKind, ServiceError};

/// Everything the identity-ca can refuse or fail at. Each refusal issues nothing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("CSR is malformed or its signature does not verify: {0}")]
    BadCsr(String),
    #[error("{0}")]
    KeyType(String),
    #[error(
        "{0:?} is not a member of the consortium (as its configuration says now): a finance bureau joins by a governance vote first"
    )]
    UnknownMember(String),
    #[error("role {role} may not be granted to member {member}")]
    RoleNotAllowed { member: String, role: &'static str },
    #[error("enrollment secret is unknown")]
    UnknownSecret,
    #[error("enrollment secret was already used")]
    SecretReused,
    #[error("this public key is already certified for member {0}; generate a new key")]
    KeyOfAnotherMember(String),
    #[error("member {member} may not have {name:?} in a certificate: {why}")]
    NameNotAllowed {
        member: String,
        name: String,
        why: &'static str,
    },
    #[error("enrollment secret is for {member}/{role}, not for this request")]
    SecretMismatch { member: String, role: &'static str },
    #[error("request needs a client certificate")]
    Unauthenticated,
    #[error("caller {member}/{role} may not do this: {why}")]
    PermissionDenied {
        member: String,
        role: &'static str,
        why: &'static str,
    },
    #[error("caller certificate is revoked or expired")]
    CallerInvalid,
    #[error("{0} is over the request limit")]
    TooLarge(&'static str),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("certificate {0} not found")]
    NotFound(String),
    #[error("a CA already exists in {0}; pass --force to replace it")]
    AlreadyInitialized(String),
    #[error("CA files are missing or unreadable in {path}: {message}")]
    NotInitialized { path: String, message: String },
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("registry: {0}")]
    Store(#[from] fiscus_common::store::StoreError),
    #[error("I/O on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA refused: {message} ({code})")]
    Refused { code: String, message: String },
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

impl From<&Error> for ServiceError {
    fn from(e: &Error) -> Self {
        use ErrorKind as K;
        let (kind, code) = match e {
            Error::BadCsr(_) => (K::InvalidArgument, codes::ca::BAD_CSR),
            Error::KeyType(_) => (K::InvalidArgument, codes::ca::KEY_TYPE),
            Error::UnknownMember(_) => (K::InvalidArgument, codes::ca::UNKNOWN_MEMBER),
            Error::RoleNotAllowed { .. } => (K::PermissionDenied, codes::ca::ROLE_NOT_ALLOWED),
            Error::UnknownSecret => (K::PermissionDenied, codes::ca::UNKNOWN_SECRET),
            Error::SecretReused => (K::PermissionDenied, codes::ca::SECRET_REUSED),
            Error::KeyOfAnotherMember(_) => (K::PermissionDenied, codes::ca::KEY_OF_ANOTHER_MEMBER),
            Error::SecretMismatch { .. } => (K::PermissionDenied, codes::ca::SECRET_MISMATCH),
            Error::NameNotAllowed { .. } => (K::PermissionDenied, codes::ca::NAME_NOT_ALLOWED),
            Error::Unauthenticated => (K::Unauthenticated, codes::ca::UNAUTHENTICATED),
            Error::PermissionDenied { .. } => (K::PermissionDenied, codes::ca::PERMISSION_DENIED),
            Error::CallerInvalid => (K::Unauthenticated, codes::ca::CALLER_INVALID),
            Error::TooLarge(_) => (K::ResourceExhausted, codes::ca::TOO_LARGE),
            Error::InvalidArgument(_) => (K::InvalidArgument, codes::ca::INVALID_ARGUMENT),
            Error::NotFound(_) => (K::NotFound, codes::ca::NOT_FOUND),
            Error::AlreadyInitialized(_) => (K::AlreadyExists, codes::ca::ALREADY_INITIALIZED),
            Error::NotInitialized { .. } => (K::FailedPrecondition, codes::ca::NOT_INITIALIZED),
            Error::Store(fiscus_common::store::StoreError::Conflict { .. }) => {
                (K::Conflict, codes::ca::CONFLICT)
            }
            Error::Refused { .. } => (K::FailedPrecondition, codes::ca::REFUSED),
            Error::Rcgen(_) | Error::Store(_) | Error::Io { .. } | Error::Internal(_) => {
                (K::Internal, codes::ca::INTERNAL)
            }
        };
        ServiceError::new(kind, code, e.to_string())
    }
}

impl Error {
    /// A refusal received from a remote CA, with its stable code.
    pub fn from_status(s: &tonic::Status) -> Self {
        let code = s
            .metadata()
            .get(fiscus_common::error::GRPC_CODE_METADATA)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown")
            .to_owned();
        Self::Refused {
            code,
            message: s.message().to_owned(),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        ServiceError::from(&e).into()
    }
}
