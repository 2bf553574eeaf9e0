//! Why a transaction was refused: a receipt status plus a stable code.

use fiscus_common::codes;
use fiscus_proto::pb::types::TxStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: TxStatus,
    /// Stable machine-readable code, e.g. `contract.insufficient_funds`.
    pub code: &'static str,
    pub reason: String,
    /// Not a refusal: the transaction needs this key, which the block's
    /// reads did not carry (an account's lot beyond those read, ADR 0006).
    /// The block is executed again with it; nothing is recorded.
    pub need: Option<Vec<u8>>,
}

impl Rejection {
    pub fn new(status: TxStatus, code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            status,
            code,
            reason: reason.into(),
            need: None,
        }
    }

    /// The transaction needs `key` read before it can run (see [`Self::need`]).
    pub fn need_read(key: &[u8]) -> Self {
        Self {
            need: Some(key.to_vec()),
            ..Self::new(
                TxStatus::InvalidArgument,
                codes::contract::INTERNAL,
                format!("{} was not read", String::from_utf8_lossy(key)),
            )
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
