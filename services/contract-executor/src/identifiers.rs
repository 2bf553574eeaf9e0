//! The national identifiers a recipient is checked against before anything
//! reaches the chain: the unified social credit code (统一社会信用代码, GB 32100),
//! the organization code inside it (GB 11714), and the resident identity
//! number (GB 11643), each with its check character; personal numbers are
//! stored only as a salted hash.

use crate::rejection::Rejection;
use fiscus_common::codes;
use fiscus_proto::hash::Hash32;
use fiscus_proto::pb::types::TxStatus;

/// GB 32100-2015's alphabet: digits and capitals without I, O, S, V, Z.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The check character of a unified social credit code's first 17 characters.
pub fn uscc_check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (b, w) in first17.bytes().zip(USCC_WEIGHTS) {
        let v = USCC_ALPHABET.iter().position(|a| *a == b)? as u32;
        sum += v * w;
    }
    let check = (31 - sum % 31) % 31;
    Some(char::from(USCC_ALPHABET[check as usize]))
}

const ORG_CODE_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// The check character of a GB 11714 organization code's first 8 characters
/// (positions 9 to 16 of a unified social credit code).
fn org_code_check_char(body: &str) -> Option<char> {
    let mut sum = 0u32;
    for (b, w) in body.bytes().zip(ORG_CODE_WEIGHTS) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return None,
        };
        sum += v * w;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        d => char::from_digit(d, 10)?,
    })
}

/// A unified social credit code (统一社会信用代码, GB 32100-2015): the
/// registration authority and category, six digits of division code, a
/// GB 11714 organization code with its own check character, and the final
/// check character over all seventeen.
pub fn uscc(code: &str) -> Result<(), Rejection> {
    let ok = code.len() == 18
        && code.is_ascii()
        && b"123456789ANY".contains(&code.as_bytes()[0])
        && USCC_ALPHABET.contains(&code.as_bytes()[1])
        && digits(&code[2..8])
        && org_code_check_char(&code[8..16]).is_some_and(|c| code[16..17] == *c.to_string())
        && uscc_check_char(&code[..17]).is_some_and(|c| code.ends_with(c));
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(
            TxStatus::InvalidArgument,
            codes::contract::BAD_RECIPIENT,
            format!(
                "{:?} is not a unified social credit code (GB 32100-2015: 18 characters, an organization code and a check character that agree)",
                truncated(code)
            ),
        ))
    }
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The ISO 7064 MOD 11-2 check character of a resident id number's first 17 digits.
pub fn id_number_check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 || !digits(first17) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(ID_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(b"10X98765432"[(sum % 11) as usize].into())
}

/// A birth date YYYYMMDD from 1850 on that exists in the calendar.
fn birth_date_ok(d: &str) -> bool {
    if d.len() != 8 || !digits(d) {
        return false;
    }
    let (Ok(y), Ok(m), Ok(day)) = (
        d[..4].parse::<i64>(),
        d[4..6].parse::<u32>(),
        d[6..].parse::<u32>(),
    ) else {
        return false;
    };
    let days = crate::calendar::days_from_civil(y, m, day);
    y >= 1850
        && (1..=12).contains(&m)
        && day >= 1
        && crate::calendar::civil_from_days(days) == (y, m, day)
}

/// A resident id number (GB 11643-1999): 17 digits, a valid birth date, and
/// the ISO 7064 MOD 11-2 check character (a final `x` reads as `X`).
pub fn id_number(id: &str) -> Result<String, Rejection> {
    let id = id.trim().to_ascii_uppercase();
    // ASCII and 18 long before any slicing: byte offsets are then characters.
    let ok = id.len() == 18
        && id.is_ascii()
        && birth_date_ok(&id[6..14])
        && id_number_check_char(&id[..17]).is_some_and(|c| id.ends_with(c));
    if ok {
        Ok(id)
    } else {
        Err(Rejection::new(
            TxStatus::InvalidArgument,
            codes::contract::BAD_ID_NUMBER,
            "not a resident id number: 17 digits with a valid birth date and a correct ISO 7064 MOD 11-2 check character",
        ))
    }
}

/// The recipient hash of a personal id number: checked first, then
/// SHA-256(salt || "|" || id number), with the consortium's salt.
pub fn personal_id_hash(salt: &[u8], id: &str) -> Result<Hash32, Rejection> {
    let id = id_number(id)?;
    Ok(fiscus_proto::hash::sha256(
        &[salt, b"|", id.as_bytes()].concat(),
    ))
}

/// Only ASCII digits.
pub(crate) fn digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// At most 32 characters of an offending value, for messages.
pub(crate) fn truncated(s: &str) -> String {
    s.chars().take(32).collect()
}
