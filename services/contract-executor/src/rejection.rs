//! Why a transaction was refused: a receipt status plus a stable code.

use fiscus_common::codes;
use fiscus_proto::pb::types::TxStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: TxStatus,
    /// Stable machine-readable code, e.g. `contract.insufficient_funds`.
    pub code: &'static str,
    pub reason: String,
}

impl Rejection {
    pub fn new(status: TxStatus, code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            status,
            code,
            reason: reason.into(),
        }
    }

    pub fn insufficient(have: i64, need: i64) -> Self {
        Self::new(
            TxStatus::InsufficientFunds,
            codes::contract::INSUFFICIENT_FUNDS,
            format!("balance {have} fen is below {need} fen"),
        )
    }

    pub fn not_owner(org: &str) -> Self {
        Self::new(
            TxStatus::Unauthorized,
            codes::contract::NOT_OWNER,
            format!("no signer belongs to org {org}, which owns the account"),
        )
    }

    pub fn bad_amount(reason: impl Into<String>) -> Self {
        Self::new(
            TxStatus::InvalidArgument,
            codes::contract::BAD_AMOUNT,
            reason,
        )
    }

    pub fn malformed(reason: impl Into<String>) -> Self {
        Self::new(
            TxStatus::InvalidArgument,
            codes::contract::MALFORMED,
            reason,
        )
    }

    pub fn not_found(code: &'static str, reason: impl Into<String>) -> Self {
        Self::new(TxStatus::NotFound, code, reason)
    }
}
