use fiscus_common::{ErrorKind, ServiceError};

/// Everything the identity-ca can refuse or fail at. Each refusal issues nothing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("CSR is malformed or its signature does not verify: {0}")]
    BadCsr(String),
    #[error("key type is not Ed25519")]
    KeyType,
    #[error("unknown member code {0:?}")]
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
            Error::BadCsr(_) => (K::InvalidArgument, "ca.bad_csr"),
            Error::KeyType => (K::InvalidArgument, "ca.key_type"),
            Error::UnknownMember(_) => (K::InvalidArgument, "ca.unknown_member"),
            Error::RoleNotAllowed { .. } => (K::PermissionDenied, "ca.role_not_allowed"),
            Error::UnknownSecret => (K::PermissionDenied, "ca.unknown_secret"),
            Error::SecretReused => (K::PermissionDenied, "ca.secret_reused"),
            Error::KeyOfAnotherMember(_) => (K::PermissionDenied, "ca.key_of_another_member"),
            Error::SecretMismatch { .. } => (K::PermissionDenied, "ca.secret_mismatch"),
            Error::NameNotAllowed { .. } => (K::PermissionDenied, "ca.name_not_allowed"),
            Error::Unauthenticated => (K::Unauthenticated, "ca.unauthenticated"),
            Error::PermissionDenied { .. } => (K::PermissionDenied, "ca.permission_denied"),
            Error::CallerInvalid => (K::Unauthenticated, "ca.caller_invalid"),
            Error::TooLarge(_) => (K::ResourceExhausted, "ca.too_large"),
            Error::InvalidArgument(_) => (K::InvalidArgument, "ca.invalid_argument"),
            Error::NotFound(_) => (K::NotFound, "ca.not_found"),
            Error::AlreadyInitialized(_) => (K::AlreadyExists, "ca.already_initialized"),
            Error::NotInitialized { .. } => (K::FailedPrecondition, "ca.not_initialized"),
            Error::Store(fiscus_common::store::StoreError::Conflict { .. }) => {
                (K::Conflict, "ca.conflict")
            }
            Error::Refused { .. } => (K::FailedPrecondition, "ca.refused"),
            Error::Rcgen(_) | Error::Store(_) | Error::Io { .. } | Error::Internal(_) => {
                (K::Internal, "ca.internal")
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
