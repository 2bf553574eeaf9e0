//! Typed JSON operations for custodial submission, and their mapping onto the
//! transfer contract's calls.

use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_proto::pb::transfer::{
    AccountRef, AcknowledgeArgs, AllocateArgs, AppropriateArgs, DisburseArgs, Program, ProgramKind,
    Recipient, RecoverArgs, TransferCall, recipient, transfer_call::Method,
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
    /// `general` (一般性转移支付), `special` (专项), `direct` (直达资金) or `disaster` (救灾).
    pub kind: String,
    /// 类/款/项 functional classification code, e.g. "2050202".
    pub functional_code: String,
    pub fiscal_year: u32,
    pub document: String,
}

/// A final recipient: a unit by its unified social credit code, or a person by
/// the hex SHA-256 of a salted id number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientJson {
    #[serde(default)]
    pub unified_social_credit_code: Option<String>,
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
    },
    /// Return funds to the org that allocated them.
    Recover {
        from: Account,
        to_org_code: String,
        amount_fen: i64,
        reason: String,
    },
}

fn bad(message: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorKind::InvalidArgument, "api.invalid_operation", message)
}

fn kind(name: &str) -> Result<ProgramKind, ServiceError> {
    Ok(match name {
        "general" => ProgramKind::General,
        "special" => ProgramKind::Special,
        "direct" => ProgramKind::Direct,
        "disaster" => ProgramKind::Disaster,
        other => {
            return Err(bad(format!(
                "program kind {other:?} is not general, special, direct or disaster"
            )));
        }
    })
}

impl Operation {
    /// The org whose funds the operation moves: the one that must sign.
    pub fn acting_org(&self) -> &str {
        match self {
            Self::Appropriate { account, .. } | Self::Acknowledge { account, .. } => {
                &account.org_code
            }
            Self::Allocate { from, .. }
            | Self::Disburse { from, .. }
            | Self::Recover { from, .. } => &from.org_code,
        }
    }

    pub fn to_call(&self) -> Result<TransferCall, ServiceError> {
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
            } => Method::Allocate(AllocateArgs {
                from: Some(from.into()),
                to_org_code: to_org_code.clone(),
                amount_fen: *amount_fen,
                document: document.clone(),
            }),
            Self::Acknowledge {
                account,
                allocation_tx_id,
            } => Method::Acknowledge(AcknowledgeArgs {
                allocation_tx_id: hex::decode(allocation_tx_id)
                    .ok()
                    .filter(|b| b.len() == 32)
                    .ok_or_else(|| bad("allocation_tx_id must be 64 hex digits"))?,
                account: Some(account.into()),
            }),
            Self::Disburse {
                from,
                recipient: r,
                amount_fen,
                purpose,
                economic_code,
            } => {
                let id = match (&r.unified_social_credit_code, &r.personal_id_hash_hex) {
                    (Some(c), None) => recipient::Id::UnifiedSocialCreditCode(c.clone()),
                    (None, Some(h)) => recipient::Id::PersonalIdHash(
                        hex::decode(h)
                            .ok()
                            .filter(|b| b.len() == 32)
                            .ok_or_else(|| bad("personal_id_hash_hex must be 64 hex digits"))?,
                    ),
                    _ => {
                        return Err(bad(
                            "a recipient has exactly one of unified_social_credit_code and personal_id_hash_hex",
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
        assert_eq!(op.acting_org(), "130000");
        assert!(matches!(
            op.to_call().unwrap().method,
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
        assert_eq!(op.to_call().unwrap_err().code, "api.invalid_operation");
    }
}
