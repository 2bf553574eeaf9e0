//! Why a transaction was refused: a receipt status plus a stable code.

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
            "contract.insufficient_funds",
            format!("balance {have} fen is below {need} fen"),
        )
    }

    pub fn not_owner(org: &str) -> Self {
        Self::new(
            TxStatus::Unauthorized,
            "contract.not_owner",
            format!("no signer belongs to org {org}, which owns the account"),
        )
    }

    pub fn bad_amount(reason: impl Into<String>) -> Self {
        Self::new(TxStatus::InvalidArgument, "contract.bad_amount", reason)
    }

    pub fn malformed(reason: impl Into<String>) -> Self {
        Self::new(TxStatus::InvalidArgument, "contract.malformed", reason)
    }

    pub fn not_found(code: &'static str, reason: impl Into<String>) -> Self {
        Self::new(TxStatus::NotFound, code, reason)
    }
}
