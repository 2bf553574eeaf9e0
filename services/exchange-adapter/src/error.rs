//! The adapter's errors: every refusal leaves as a [`ServiceError`] (an RFC
//! 9457 problem over REST, a `tonic::Status` over gRPC) with a stable code.

use fiscus_common::error::{ErrorKind, ServiceError};
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemDoc {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `api.wrong_org`.
    pub code: String,
}

pub(crate) fn err(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::new(kind, code, message)
}
