//! The one conversion of service errors into `tonic::Status` and into RFC 9457
//! problem responses, with stable machine-readable codes.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::Serialize;
use std::fmt;

/// The class of an error, which fixes its gRPC and HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    Conflict,
    ResourceExhausted,
    /// A request body over its limit (HTTP 413).
    PayloadTooLarge,
    FailedPrecondition,
    Unavailable,
    Internal,
}

impl ErrorKind {
    fn grpc(self) -> tonic::Code {
        use tonic::Code;
        match self {
            Self::InvalidArgument => Code::InvalidArgument,
            Self::Unauthenticated => Code::Unauthenticated,
            Self::PermissionDenied => Code::PermissionDenied,
            Self::NotFound => Code::NotFound,
            Self::AlreadyExists => Code::AlreadyExists,
            Self::Conflict => Code::Aborted,
            Self::ResourceExhausted | Self::PayloadTooLarge => Code::ResourceExhausted,
            Self::FailedPrecondition => Code::FailedPrecondition,
            Self::Unavailable => Code::Unavailable,
            Self::Internal => Code::Internal,
        }
    }

    fn http(self) -> StatusCode {
        match self {
            Self::InvalidArgument => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::AlreadyExists | Self::Conflict => StatusCode::CONFLICT,
            Self::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::FailedPrecondition => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error as clients see it: a kind, a stable code such as
/// `"tx.duplicate"`, and a human-readable message.
///
/// Each service's `error.rs` converts its own enum into this, once; the two
/// conversions below are the only way errors leave a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
}

impl ServiceError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ServiceError {}

/// gRPC metadata key that carries the stable code.
pub const GRPC_CODE_METADATA: &str = "fiscus-error-code";

impl From<ServiceError> for tonic::Status {
    fn from(e: ServiceError) -> Self {
        let mut status = tonic::Status::new(e.kind.grpc(), e.message);
        if let Ok(v) = e.code.parse() {
            status.metadata_mut().insert(GRPC_CODE_METADATA, v);
        }
        status
    }
}

/// RFC 9457 problem details.
#[derive(Debug, Serialize)]
pub struct Problem<'a> {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'a str,
    pub status: u16,
    pub detail: &'a str,
    /// The stable machine-readable code, an RFC 9457 extension member.
    pub code: &'static str,
}

impl ResponseError for ServiceError {
    fn status_code(&self) -> StatusCode {
        self.kind.http()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let problem = Problem {
            type_uri: format!("urn:fiscus:error:{}", self.code),
            title: status.canonical_reason().unwrap_or("error"),
            status: status.as_u16(),
            detail: &self.message,
            code: self.code,
        };
        let mut response = HttpResponse::build(status);
        response.content_type("application/problem+json");
        if status == StatusCode::TOO_MANY_REQUESTS {
            // Rate buckets refill within a second (RFC 9110 §10.2.3).
            response.insert_header(("Retry-After", "1"));
        }
        response.json(problem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn duplicate() -> ServiceError {
        ServiceError::new(
            ErrorKind::AlreadyExists,
            "tx.duplicate",
            "tx 00ab was already ordered",
        )
    }

    #[test]
    fn a_service_error_becomes_a_grpc_status_with_its_code_in_metadata() {
        let status = tonic::Status::from(duplicate());
        assert_eq!(status.code(), tonic::Code::AlreadyExists);
        assert_eq!(status.message(), "tx 00ab was already ordered");
        assert_eq!(
            status.metadata().get(GRPC_CODE_METADATA).unwrap(),
            "tx.duplicate"
        );
    }

    #[test]
    fn a_service_error_becomes_an_rfc_9457_problem() {
        let resp = duplicate().error_response();
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
        let body = resp.into_body().try_into_bytes().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["type"], "urn:fiscus:error:tx.duplicate");
        assert_eq!(json["status"], 409);
        assert_eq!(json["code"], "tx.duplicate");
        assert_eq!(json["detail"], "tx 00ab was already ordered");
        assert!(resp_has_no_retry_after(&duplicate()));
    }

    fn resp_has_no_retry_after(e: &ServiceError) -> bool {
        e.error_response().headers().get("retry-after").is_none()
    }

    #[test]
    fn a_rate_limited_answer_says_when_to_retry() {
        let limited = ServiceError::new(
            ErrorKind::ResourceExhausted,
            "api.rate_limited",
            "slow down",
        );
        let resp = limited.error_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers().get("retry-after").unwrap(), "1");
    }
}
