//! The transfer contract's rules that need no state: argument shapes, codes,
//! check digits, and who may do what. The contract applies them to every
//! transaction; the exchange-adapter's REST and gRPC submit paths and its
//! bulk import call the same functions before anything is ordered, so the
//! API, the import and the chain cannot disagree.

use crate::identifiers::digits;
use crate::identifiers::truncated;
use crate::identifiers::uscc;
use crate::orgs::Orgs;
use crate::rejection::Rejection;
use fiscus_common::codes;
use fiscus_proto::hash::{Hash32, TxId};
use fiscus_proto::pb::transfer::{
    AccountRef, Program, ProgramKind, Recipient, TransferCall, recipient, transfer_call::Method,
};
use fiscus_proto::pb::types::{OrgLevel, TxStatus};
use std::collections::BTreeSet;

/// Program ids: 1 to 64 of `[A-Za-z0-9._-]`.
pub const MAX_ID_LEN: usize = 64;
/// Free text (documents, purposes, reasons, names): at most this many UTF-8 bytes.
pub const MAX_TEXT_LEN: usize = 256;

/// A rejected argument (`contract.malformed`).
pub fn malformed(reason: impl Into<String>) -> Rejection {
    Rejection::malformed(reason)
}

fn is_org_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

fn is_program_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn bad_org_code(code: &str, field: &str) -> Rejection {
    malformed(format!("{field} {:?} is not six digits", truncated(code)))
}

fn bad_program_id(field: &str) -> Rejection {
    malformed(format!(
        "{field} must be 1 to {MAX_ID_LEN} of A-Z a-z 0-9 . _ -"
    ))
}

/// A GB/T 2260 code (six digits; supervisors have codes of their own).
pub fn org_code(code: &str, field: &str) -> Result<(), Rejection> {
    if is_org_code(code) {
        Ok(())
    } else {
        Err(bad_org_code(code, field))
    }
}

/// A program id: 1 to 64 letters, digits, '.', '_' or '-'.
pub fn program_id(id: &str, field: &str) -> Result<(), Rejection> {
    if is_program_id(id) {
        Ok(())
    } else {
        Err(bad_program_id(field))
    }
}

/// An account reference's org and program. Runs for every transaction:
/// messages (and their allocations) are built only on refusal.
pub fn account_ref<'a>(
    r: &'a Option<AccountRef>,
    field: &str,
) -> Result<(&'a str, &'a str), Rejection> {
    let r = r
        .as_ref()
        .ok_or_else(|| malformed(format!("{field} is missing")))?;
    if !is_org_code(&r.org_code) {
        return Err(bad_org_code(&r.org_code, &format!("{field}.org_code")));
    }
    if !is_program_id(&r.program_id) {
        return Err(bad_program_id(&format!("{field}.program_id")));
    }
    Ok((&r.org_code, &r.program_id))
}

pub fn tx_ref(bytes: &[u8], field: &str) -> Result<TxId, Rejection> {
    Hash32::from_slice("tx id", bytes)
        .map_err(|_| malformed(format!("{field} must be a 32-byte tx id")))
}

pub fn positive(amount: i64) -> Result<i64, Rejection> {
    if amount <= 0 {
        return Err(Rejection::bad_amount(format!(
            "amount must be positive, got {amount} fen"
        )));
    }
    Ok(amount)
}

/// Characters that change how text displays or is parsed downstream
/// (control characters, bidirectional overrides): never stored.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{feff}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Free text: at most [`MAX_TEXT_LEN`] bytes, no control or bidi characters.
pub fn text(s: &str, field: &str, required: bool) -> Result<(), Rejection> {
    if (required && s.trim().is_empty()) || s.len() > MAX_TEXT_LEN {
        return Err(malformed(format!(
            "{field} must be {}..={MAX_TEXT_LEN} bytes of UTF-8",
            u8::from(required)
        )));
    }
    if let Some(c) = s.chars().find(|c| hidden(*c)) {
        return Err(malformed(format!(
            "{field} contains the control character U+{:04X}",
            u32::from(c)
        )));
    }
    Ok(())
}

/// 类/款/项 of the government expenditure functional classification: 3, 5 or 7 digits.
pub fn functional_code(code: &str) -> Result<(), Rejection> {
    if matches!(code.len(), 3 | 5 | 7) && digits(code) {
        Ok(())
    } else {
        Err(Rejection::new(
            TxStatus::InvalidArgument,
            codes::contract::BAD_FUNCTIONAL_CODE,
            format!(
                "functional_code {:?} is not a 类/款/项 code of 3, 5 or 7 digits",
                truncated(code)
            ),
        ))
    }
}

/// 经济分类: the government expenditure economic classification, 3 to 7 digits.
pub fn economic_code(code: &str) -> Result<(), Rejection> {
    if (3..=7).contains(&code.len()) && digits(code) {
        Ok(())
    } else {
        Err(Rejection::new(
            TxStatus::InvalidArgument,
            codes::contract::BAD_ECONOMIC_CODE,
            "economic_code must be 3 to 7 digits",
        ))
    }
}

/// The longest `external_id`, in bytes.
pub const MAX_EXTERNAL_ID_LEN: usize = 64;

/// A sender's own id for an allocation or a disbursement (an import row's
/// `external_id`): empty, or 1 to [`MAX_EXTERNAL_ID_LEN`] visible ASCII
/// characters. Bulk import also requires it non-empty.
pub fn external_id(id: &str) -> Result<(), Rejection> {
    if id.len() <= MAX_EXTERNAL_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(Rejection::new(
            TxStatus::InvalidArgument,
            codes::contract::BAD_EXTERNAL_ID,
            format!(
                "external_id {:?} must be at most {MAX_EXTERNAL_ID_LEN} visible ASCII characters \
                 (letters, digits, symbols; no spaces or Chinese)",
                truncated(id)
            ),
        ))
    }
}

/// What a recipient is identified by, as stored in lineage (the code, or the hash in hex).
pub fn recipient(r: &Option<Recipient>) -> Result<String, Rejection> {
    let r = r
        .as_ref()
        .ok_or_else(|| malformed("recipient is missing"))?;
    text(&r.name, "recipient.name", true)?;
    match &r.id {
        Some(recipient::Id::UnifiedSocialCreditCode(c)) => {
            uscc(c)?;
            Ok(c.clone())
        }
        Some(recipient::Id::PersonalIdHash(h)) if h.len() == 32 => Ok(hex::encode(h)),
        _ => Err(Rejection::new(
            TxStatus::InvalidArgument,
            codes::contract::BAD_RECIPIENT,
            "recipient needs a unified social credit code or a 32-byte personal id hash",
        )),
    }
}

/// The art. 52 period of a program's kind: only general and special exist
/// (direct funds and emergencies are attributes, not kinds).
pub fn program_kind(kind: i32) -> Result<ProgramKind, Rejection> {
    match ProgramKind::try_from(kind) {
        Ok(k @ (ProgramKind::General | ProgramKind::Special)) => Ok(k),
        _ => Err(Rejection::new(
            TxStatus::InvalidArgument,
            codes::contract::BAD_PROGRAM_KIND,
            "program kind must be general or special; direct funds and emergencies are the direct and emergency attributes",
        )),
    }
}

/// Who may create a program with this id: a local level's own programs are
/// named `<its code>-…` (e.g. `130000-roads`); every other id belongs to the
/// central level, so no org can take a central program's id first.
pub fn program_namespace(orgs: &Orgs, creator: &str, id: &str) -> Result<(), Rejection> {
    let local_prefix = id.len() > 7 && digits(&id[..6]) && id.as_bytes()[6] == b'-';
    let ok = match orgs.level(creator) {
        Some(OrgLevel::Central) => !local_prefix,
        _ => local_prefix && id.starts_with(creator),
    };
    if ok {
        return Ok(());
    }
    Err(Rejection::new(
        TxStatus::Unauthorized,
        codes::contract::PROGRAM_NAMESPACE,
        format!(
            "{creator} cannot create program {id:?}: a local program's id starts with its owner's code and '-' (e.g. {creator}-roads); other ids are central programs"
        ),
    ))
}

/// A new program's record, checked against the block's fiscal year (the
/// calendar year in China Standard Time).
pub fn program(p: &Program, id: &str, block_year: Option<i64>) -> Result<(), Rejection> {
    if p.id != id {
        return Err(malformed("program.id must equal the account's program_id"));
    }
    program_kind(p.kind)?;
    text(&p.name, "program.name", true)?;
    functional_code(&p.functional_code)?;
    if p.document.trim().is_empty() {
        return Err(Rejection::new(
            TxStatus::InvalidArgument,
            codes::contract::MISSING_DOCUMENT,
            "program.document (文号) is required",
        ));
    }
    text(&p.document, "program.document", true)?;
    let Some(block_year) = block_year else {
        return Ok(());
    };
    let year = i64::from(p.fiscal_year);
    let ok = if p.advance {
        year == block_year + 1
    } else {
        year == block_year
    };
    if !ok {
        return Err(Rejection::new(
            TxStatus::InvalidArgument,
            codes::contract::BAD_FISCAL_YEAR,
            format!(
                "program.fiscal_year {} must be the block's fiscal year {block_year}, or {} for an advance allocation (提前下达) marked advance",
                p.fiscal_year,
                block_year + 1
            ),
        ));
    }
    Ok(())
}

/// The level of a registered org.
pub fn level(orgs: &Orgs, org: &str) -> Result<OrgLevel, Rejection> {
    orgs.level(org).ok_or_else(|| {
        Rejection::not_found(
            codes::contract::UNKNOWN_ORG,
            format!("org {org} is not in the registry"),
        )
    })
}

/// Supervisors (audit offices, budget committees) read, freeze and unfreeze;
/// they never hold, move, receive or create funds.
pub fn moves_money(orgs: &Orgs, org: &str) -> Result<OrgLevel, Rejection> {
    let level = level(orgs, org)?;
    if level == OrgLevel::Supervisor || level == OrgLevel::Unspecified {
        return Err(Rejection::new(
            TxStatus::Unauthorized,
            codes::contract::SUPERVISOR_MOVES_NO_MONEY,
            format!(
                "{org} is a supervisor: supervisors read, freeze and unfreeze, and move no money"
            ),
        ));
    }
    Ok(level)
}

/// Where an allocation from `from` may go: a child, or for direct funds
/// (直达资金) any descendant; never a supervisor. Returns the receiver's level.
pub fn allocation_target(
    orgs: &Orgs,
    from: &str,
    to: &str,
    direct: bool,
) -> Result<OrgLevel, Rejection> {
    let level = moves_money(orgs, to)?;
    let allowed = if direct {
        orgs.is_descendant(from, to)
    } else {
        orgs.parent(to) == Some(from)
    };
    if allowed {
        return Ok(level);
    }
    Err(Rejection::new(
        TxStatus::InvalidArgument,
        codes::contract::NOT_DESCENDANT,
        format!(
            "{to} is not a {} of {from}",
            if direct { "descendant" } else { "child" }
        ),
    ))
}

/// A recovery returns funds to an org above the one that holds them.
pub fn recovery_target(orgs: &Orgs, from: &str, to: &str) -> Result<OrgLevel, Rejection> {
    let level = moves_money(orgs, to)?;
    if !orgs.is_descendant(to, from) {
        return Err(Rejection::new(
            TxStatus::InvalidArgument,
            codes::contract::NOT_ANCESTOR,
            format!("{to} is not above {from}"),
        ));
    }
    Ok(level)
}

/// Recovered funds go back up the program's own chain: never above the
/// program's owner (a county cannot send a province's own funds to the MOF).
pub fn recovery_within_program(orgs: &Orgs, owner: &str, to: &str) -> Result<(), Rejection> {
    if to == owner || orgs.is_descendant(owner, to) {
        return Ok(());
    }
    Err(Rejection::new(
        TxStatus::InvalidArgument,
        codes::contract::NOT_ANCESTOR,
        format!("{to} is above the program's owner {owner}"),
    ))
}

/// The org whose signature a call needs, and whether it moves money.
pub fn acting_org(call: &TransferCall) -> Option<&str> {
    let r = match call.method.as_ref()? {
        Method::Appropriate(a) => &a.account,
        Method::Allocate(a) => &a.from,
        Method::Acknowledge(a) => &a.account,
        Method::Disburse(a) => &a.from,
        Method::Recover(a) => &a.from,
        Method::Adjust(a) => &a.from,
        // Freeze and unfreeze are a supervisor's act on someone else's account.
        Method::Freeze(_) | Method::Unfreeze(_) => return None,
    };
    r.as_ref().map(|r| r.org_code.as_str())
}

pub fn require_signer(signers: &BTreeSet<String>, org: &str) -> Result<(), Rejection> {
    if signers.contains(org) {
        Ok(())
    } else {
        Err(Rejection::not_owner(org))
    }
}

/// Only a supervisor may freeze or unfreeze, and only within its
/// jurisdiction: the org it sits under (its parent in the registry) and the
/// orgs below that one (the Hebei audit office, under 130000, supervises
/// Hebei; a supervisor under 000000 supervises everyone).
pub fn require_supervisor(
    signers: &BTreeSet<String>,
    orgs: &Orgs,
    account_org: &str,
) -> Result<(), Rejection> {
    let supervisors: Vec<&String> = signers
        .iter()
        .filter(|o| orgs.level(o) == Some(OrgLevel::Supervisor))
        .collect();
    if supervisors.is_empty() {
        return Err(Rejection::new(
            TxStatus::Unauthorized,
            codes::contract::SUPERVISORS_ONLY,
            "only a supervisor (audit office, budget committee) may freeze or unfreeze",
        ));
    }
    let covers = |sup: &str| {
        orgs.parent(sup)
            .is_some_and(|p| p == account_org || orgs.is_descendant(p, account_org))
    };
    if supervisors.iter().any(|s| covers(s)) {
        return Ok(());
    }
    Err(Rejection::new(
        TxStatus::Unauthorized,
        codes::contract::OUTSIDE_JURISDICTION,
        format!("{account_org} is outside the signing supervisor's jurisdiction"),
    ))
}

/// Every check of a call that needs no state, in the order the contract
/// applies them: shapes and codes, the orgs involved, and the signers'
/// authority. `block_year` is the fiscal year new programs are checked
/// against (the block's); None skips that one check, for callers that cannot
/// know which block will order the call.
pub fn check_call(
    call: &TransferCall,
    signers: &BTreeSet<String>,
    orgs: &Orgs,
    block_year: Option<i64>,
) -> Result<(), Rejection> {
    let method = call
        .method
        .as_ref()
        .ok_or_else(|| malformed("the call names no method"))?;
    match method {
        Method::Appropriate(a) => {
            let (org, prog) = account_ref(&a.account, "account")?;
            moves_money(orgs, org)?;
            require_signer(signers, org)?;
            positive(a.amount_fen)?;
            text(&a.document, "document", false)?;
            if let Some(p) = &a.program {
                program_namespace(orgs, org, prog)?;
                program(p, prog, block_year)?;
            }
        }
        Method::Allocate(a) => {
            let (org, _) = account_ref(&a.from, "from")?;
            org_code(&a.to_org_code, "to_org_code")?;
            moves_money(orgs, org)?;
            // Child or any descendant depends on the program (direct funds or
            // not), which is state: here only what holds either way.
            allocation_target(orgs, org, &a.to_org_code, true)?;
            require_signer(signers, org)?;
            positive(a.amount_fen)?;
            // An allocation is issued by a document (下达文件).
            text(&a.document, "document", true)?;
            external_id(&a.external_id)?;
        }
        Method::Acknowledge(a) => {
            let (org, _) = account_ref(&a.account, "account")?;
            tx_ref(&a.allocation_tx_id, "allocation_tx_id")?;
            moves_money(orgs, org)?;
            require_signer(signers, org)?;
        }
        Method::Disburse(a) => {
            let (org, _) = account_ref(&a.from, "from")?;
            moves_money(orgs, org)?;
            require_signer(signers, org)?;
            positive(a.amount_fen)?;
            text(&a.purpose, "purpose", true)?;
            economic_code(&a.economic_code)?;
            recipient(&a.recipient)?;
            external_id(&a.external_id)?;
        }
        Method::Recover(a) => {
            let (org, _) = account_ref(&a.from, "from")?;
            org_code(&a.to_org_code, "to_org_code")?;
            moves_money(orgs, org)?;
            recovery_target(orgs, org, &a.to_org_code)?;
            require_signer(signers, org)?;
            positive(a.amount_fen)?;
            text(&a.reason, "reason", true)?;
        }
        Method::Freeze(a) => {
            let (org, _) = account_ref(&a.account, "account")?;
            require_supervisor(signers, orgs, org)?;
            text(&a.reason, "reason", true)?;
        }
        Method::Unfreeze(a) => {
            let (org, _) = account_ref(&a.account, "account")?;
            require_supervisor(signers, orgs, org)?;
            text(&a.reason, "reason", true)?;
        }
        Method::Adjust(a) => {
            let (fo, fp) = account_ref(&a.from, "from")?;
            let (to, tp) = account_ref(&a.to, "to")?;
            moves_money(orgs, fo)?;
            moves_money(orgs, to)?;
            if !(signers.contains(fo) && signers.contains(to)) {
                return Err(Rejection::new(
                    TxStatus::Unauthorized,
                    codes::contract::NEEDS_BOTH_PARTIES,
                    "an adjustment needs signatures from both orgs",
                ));
            }
            if fp != tp || (fo, fp) == (to, tp) {
                return Err(malformed(
                    "an adjustment moves funds between two accounts of the same program",
                ));
            }
            tx_ref(&a.corrects_tx_id, "corrects_tx_id")?;
            text(&a.reason, "reason", true)?;
            positive(a.amount_fen)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifiers::{
        id_number, id_number_check_char, personal_id_hash, uscc, uscc_check_char,
    };

    #[test]
    fn unified_social_credit_codes_need_their_check_character() {
        // 91350100M000100Y43 is the standard's own worked example.
        assert!(uscc("91350100M000100Y43").is_ok());
        assert_eq!(uscc_check_char("91350100M000100Y4"), Some('3'));
        // Its final check character happens to be right; its organization
        // code's (positions 9 to 17) is not.
        let err = uscc("123456789012345678").unwrap_err();
        assert_eq!(err.code, "contract.bad_recipient");
        assert!(uscc("91350100M000100Y44").is_err(), "wrong check character");
        assert!(
            uscc("91350100I000100Y43").is_err(),
            "I is not in the alphabet"
        );
        assert!(uscc("12130102MB0A12342E").is_ok());
        assert!(
            uscc("12130102MB0A12352E").is_err(),
            "organization code check"
        );
    }

    #[test]
    fn resident_id_numbers_need_their_check_digit_and_a_real_birth_date() {
        // GB 11643-1999's worked example.
        assert_eq!(
            id_number("11010519491231002X").unwrap(),
            "11010519491231002X"
        );
        assert_eq!(
            id_number("11010519491231002x").unwrap(),
            "11010519491231002X"
        );
        assert_eq!(
            id_number("110105194912310021").unwrap_err().code,
            "contract.bad_id_number"
        );
        let bad_date = format!(
            "13010219700230001{}",
            id_number_check_char("13010219700230001").unwrap()
        );
        assert!(id_number(&bad_date).is_err(), "February 30th");
        let old = format!(
            "13010219200101001{}",
            id_number_check_char("13010219200101001").unwrap()
        );
        assert!(id_number(&old).is_ok(), "born in 1920");
        for bad in [
            "1101051éé1230000X",
            "1101051949123100é",
            "",
            "11010519491231002",
        ] {
            assert!(id_number(bad).is_err(), "{bad:?} is refused, not a panic");
        }
        let h1 = personal_id_hash(b"salt", "11010519491231002x").unwrap();
        let h2 = personal_id_hash(b"salt", "11010519491231002X").unwrap();
        assert_eq!(h1, h2, "the hash input is normalised before hashing");
    }

    #[test]
    fn text_refuses_control_and_bidi_characters() {
        assert!(text("财预〔2026〕12号", "document", true).is_ok());
        for bad in ["a\0b", "a\u{1b}[31m", "pay\u{202e}gnp.exe", "\u{2066}x"] {
            assert_eq!(
                text(bad, "document", true).unwrap_err().code,
                "contract.malformed"
            );
        }
        assert!(
            text(&"元".repeat(86), "document", true).is_err(),
            "258 bytes"
        );
        assert!(text("  ", "document", true).is_err(), "blank is empty");
    }

    #[test]
    fn functional_codes_are_lei_kuan_xiang() {
        for ok in ["205", "20502", "2050202"] {
            assert!(functional_code(ok).is_ok());
        }
        for bad in ["", "2050", "205020", "20502020", "2050a02"] {
            assert_eq!(
                functional_code(bad).unwrap_err().code,
                "contract.bad_functional_code"
            );
        }
    }
}
