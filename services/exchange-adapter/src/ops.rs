//! Typed JSON operations for custodial submission, and their mapping onto the
//! transfer contract's calls.

use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_proto::pb::transfer::{
    AccountRef, AcknowledgeArgs, AdjustArgs, AllocateArgs, AppropriateArgs, DisburseArgs,
    FreezeArgs, Program, ProgramKind, Recipient, RecoverArgs, TransferCall, UnfreezeArgs,
    recipient, transfer_call::Method,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An account: an org's balance in one program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// GB/T 2260 code, e.g. "130000".
    pub org_code: String,
    pub program_id: String,
}

impl From<&Account> for AccountRef {
    fn from(a: &Account) -> Self {
        AccountRef {
            org_code: a.org_code.clone(),
            program_id: a.program_id.clone(),
        }
    }
}

/// A new program, named on its first appropriation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProgram {
    pub id: String,
    pub name: String,
    /// `general` (一般性转移支付) or `special` (专项转移支付): the Budget Law
    /// art. 52 period.
    pub kind: String,
    /// 类/款/项 functional classification code: 3, 5 or 7 digits, e.g. "2050202".
    pub functional_code: String,
    /// The block's fiscal year, or the next one with `advance`.
    pub fiscal_year: u32,
    /// The allocation document number (文号), required.
    pub document: String,
    /// 直达资金 (direct funds): may be allocated to any descendant.
    #[serde(default)]
    pub direct: bool,
    /// Natural disasters and other emergencies: issued promptly (art. 52).
    #[serde(default)]
    pub emergency: bool,
    /// 据实结算 (settlement-based): may be issued in instalments.
    #[serde(default)]
    pub settlement: bool,
    /// 提前下达: allocated in advance for the next fiscal year.
    #[serde(default)]
    pub advance: bool,
}

/// A final recipient: a unit by its unified social credit code, or a person by
/// a resident id number (checked, then hashed with the consortium's salt; the
/// number itself is never stored) or by a hash the client made the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientJson {
    #[serde(default)]
    pub unified_social_credit_code: Option<String>,
    /// A resident id number (18 characters, GB 11643 check digit).
    #[serde(default)]
    pub personal_id_number: Option<String>,
    /// Hex SHA-256(salt || "|" || id number), for clients that hash themselves.
    #[serde(default)]
    pub personal_id_hash_hex: Option<String>,
    pub name: String,
}

/// One transfer operation. Amounts are integer fen (1 yuan = 100 fen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    /// Create funds at an org (central appropriation).
    Appropriate {
        account: Account,
        #[serde(default)]
        program: Option<NewProgram>,
        amount_fen: i64,
        document: String,
    },
    /// Move funds to a child org (any descendant for direct funds).
    Allocate {
        from: Account,
        to_org_code: String,
        amount_fen: i64,
        document: String,
        /// Your own id for it, kept on chain and in exports for
        /// reconciliation: up to 64 visible ASCII characters.
        #[serde(default)]
        external_id: String,
    },
    /// The receiver confirms an allocation.
    Acknowledge {
        account: Account,
        allocation_tx_id: String,
    },
    /// Pay a final recipient.
    Disburse {
        from: Account,
        recipient: RecipientJson,
        amount_fen: i64,
        purpose: String,
        economic_code: String,
        /// Your own id for it, kept on chain and in exports for
        /// reconciliation: up to 64 visible ASCII characters.
        #[serde(default)]
        external_id: String,
    },
    /// Return funds to the org that allocated them.
    Recover {
        from: Account,
        to_org_code: String,
        amount_fen: i64,
        reason: String,
    },
    /// A supervisor freezes an account (no funds leave it until unfrozen).
    Freeze { account: Account, reason: String },
    /// A supervisor unfreezes an account.
    Unfreeze { account: Account, reason: String },
    /// A correction between two accounts of one program. It needs the
    /// signatures of both orgs, so custodial signing (one org) is refused
    /// with `contract.needs_both_parties`: submit a client-signed envelope.
    Adjust {
        from: Account,
        to: Account,
        amount_fen: i64,
        /// The tx id (64 hex digits) of the transaction this corrects.
        corrects_tx_id: String,
        reason: String,
    },
}

fn bad(message: impl Into<String>) -> ServiceError {
    ServiceError::new(
        ErrorKind::InvalidArgument,
        codes::api::INVALID_OPERATION,
        message,
    )
}

fn kind(name: &str) -> Result<ProgramKind, ServiceError> {
    Ok(match name {
        "general" => ProgramKind::General,
        "special" => ProgramKind::Special,
        other => {
            return Err(ServiceError::new(
                ErrorKind::InvalidArgument,
                codes::contract::BAD_PROGRAM_KIND,
                format!(
                    "program kind {other:?} is not general or special; direct funds and emergencies are the direct and emergency attributes"
                ),
            ));
        }
    })
}

fn tx_id(hex_id: &str, field: &str) -> Result<Vec<u8>, ServiceError> {
    hex::decode(hex_id)
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| bad(format!("{field} must be 64 hex digits")))
}

impl Operation {
    /// The org whose funds the operation moves: the one that must sign.
    /// None for freeze and unfreeze, a supervisor's act on another's account.
    pub fn acting_org(&self) -> Option<&str> {
        match self {
            Self::Appropriate { account, .. } | Self::Acknowledge { account, .. } => {
                Some(&account.org_code)
            }
            Self::Allocate { from, .. }
            | Self::Disburse { from, .. }
            | Self::Recover { from, .. }
            | Self::Adjust { from, .. } => Some(&from.org_code),
            Self::Freeze { .. } | Self::Unfreeze { .. } => None,
        }
    }

    /// The contract call; a personal id number is checked and hashed with
    /// the consortium's `salt` here, so the number never leaves the adapter.
    pub fn to_call(&self, salt: &[u8]) -> Result<TransferCall, ServiceError> {
        let method = match self {
            Self::Appropriate {
                account,
                program,
                amount_fen,
                document,
            } => Method::Appropriate(AppropriateArgs {
                account: Some(account.into()),
                program: program
                    .as_ref()
                    .map(|p| -> Result<Program, ServiceError> {
                        Ok(Program {
                            id: p.id.clone(),
                            name: p.name.clone(),
                            kind: kind(&p.kind)? as i32,
                            functional_code: p.functional_code.clone(),
                            fiscal_year: p.fiscal_year,
                            document: p.document.clone(),
                            direct: p.direct,
                            emergency: p.emergency,
                            settlement: p.settlement,
                            advance: p.advance,
                        })
                    })
                    .transpose()?,
                amount_fen: *amount_fen,
                document: document.clone(),
            }),
            Self::Allocate {
                from,
                to_org_code,
                amount_fen,
                document,
                external_id,
            } => Method::Allocate(AllocateArgs {
                from: Some(from.into()),
                to_org_code: to_org_code.clone(),
                amount_fen: *amount_fen,
                document: document.clone(),
                external_id: external_id.clone(),
            }),
            Self::Acknowledge {
                account,
                allocation_tx_id,
            } => Method::Acknowledge(AcknowledgeArgs {
                allocation_tx_id: tx_id(allocation_tx_id, "allocation_tx_id")?,
                account: Some(account.into()),
            }),
            Self::Disburse {
                from,
                recipient: r,
                amount_fen,
                purpose,
                economic_code,
                external_id,
            } => {
                let id = match (
                    &r.unified_social_credit_code,
                    &r.personal_id_number,
                    &r.personal_id_hash_hex,
                ) {
                    (Some(c), None, None) => recipient::Id::UnifiedSocialCreditCode(c.clone()),
                    (None, Some(n), None) => recipient::Id::PersonalIdHash(
                        fiscus_contract_executor::identifiers::personal_id_hash(salt, n)
                            .map_err(crate::submit::rejected)?
                            .to_vec(),
                    ),
                    (None, None, Some(h)) => recipient::Id::PersonalIdHash(
                        hex::decode(h)
                            .ok()
                            .filter(|b| b.len() == 32)
                            .ok_or_else(|| bad("personal_id_hash_hex must be 64 hex digits"))?,
                    ),
                    _ => {
                        return Err(bad(
                            "a recipient has exactly one of unified_social_credit_code, personal_id_number and personal_id_hash_hex",
                        ));
                    }
                };
                Method::Disburse(DisburseArgs {
                    from: Some(from.into()),
                    recipient: Some(Recipient {
                        id: Some(id),
                        name: r.name.clone(),
                    }),
                    amount_fen: *amount_fen,
                    purpose: purpose.clone(),
                    economic_code: economic_code.clone(),
                    external_id: external_id.clone(),
                })
            }
            Self::Recover {
                from,
                to_org_code,
                amount_fen,
                reason,
            } => Method::Recover(RecoverArgs {
                from: Some(from.into()),
                to_org_code: to_org_code.clone(),
                amount_fen: *amount_fen,
                reason: reason.clone(),
            }),
            Self::Freeze { account, reason } => Method::Freeze(FreezeArgs {
                account: Some(account.into()),
                reason: reason.clone(),
            }),
            Self::Unfreeze { account, reason } => Method::Unfreeze(UnfreezeArgs {
                account: Some(account.into()),
                reason: reason.clone(),
            }),
            Self::Adjust {
                from,
                to,
                amount_fen,
                corrects_tx_id,
                reason,
            } => Method::Adjust(AdjustArgs {
                from: Some(from.into()),
                to: Some(to.into()),
                amount_fen: *amount_fen,
                corrects_tx_id: tx_id(corrects_tx_id, "corrects_tx_id")?,
                reason: reason.clone(),
            }),
        };
        Ok(TransferCall {
            method: Some(method),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_parses_and_names_its_signer() {
        let op: Operation = serde_json::from_str(
            r#"{"op":"allocate","from":{"org_code":"130000","program_id":"edu"},
                "to_org_code":"130100","amount_fen":100,"document":"冀财预〔2026〕1号"}"#,
        )
        .unwrap();
        assert_eq!(op.acting_org(), Some("130000"));
        assert!(matches!(
            op.to_call(b"salt").unwrap().method,
            Some(Method::Allocate(_))
        ));
    }

    #[test]
    fn unknown_fields_and_bad_ids_are_refused() {
        let unknown = serde_json::from_str::<Operation>(
            r#"{"op":"allocate","from":{"org_code":"130000","program_id":"edu"},
                "to_org_code":"130100","amount_fen":100,"document":"d","extra":1}"#,
        );
        assert!(unknown.is_err());
        let op = Operation::Acknowledge {
            account: Account {
                org_code: "130100".into(),
                program_id: "edu".into(),
            },
            allocation_tx_id: "zz".into(),
        };
        assert_eq!(
            op.to_call(b"salt").unwrap_err().code,
            "api.invalid_operation"
        );
    }
}
