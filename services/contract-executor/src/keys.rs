//! State keys. Every key a transaction may touch is derived from its args
//! before it runs.

use fiscus_proto::hash::TxId;

// Keys are built by concatenation, not `format!`: several per transaction.
pub fn account(org: &str, program: &str) -> Vec<u8> {
    [
        b"acct/".as_slice(),
        org.as_bytes(),
        b"/",
        program.as_bytes(),
    ]
    .concat()
}

/// Where an account's lots live: `lot/<org>/<program>/` (ADR 0006).
pub fn lot_prefix(org: &str, program: &str) -> Vec<u8> {
    [
        b"lot/".as_slice(),
        org.as_bytes(),
        b"/",
        program.as_bytes(),
        b"/",
    ]
    .concat()
}

/// The lot prefix of the account whose key is `account_key`
/// (`acct/<org>/<program>`), or None for another key.
pub fn lot_prefix_of(account_key: &[u8]) -> Option<Vec<u8>> {
    let rest = account_key.strip_prefix(b"acct/")?;
    Some([b"lot/".as_slice(), rest, b"/"].concat())
}

/// The `seq`-th closed lot under `prefix` (a [`lot_prefix`]). Twenty decimal
/// digits, so that keys sort in FIFO order.
pub fn lot_at(prefix: &[u8], seq: u64) -> Vec<u8> {
    [prefix, format!("{seq:020}").as_bytes()].concat()
}

/// The `seq`-th closed lot of an account, while it lives.
pub fn lot(org: &str, program: &str, seq: u64) -> Vec<u8> {
    lot_at(&lot_prefix(org, program), seq)
}

/// The account a lot key belongs to and the lot's sequence number, or None
/// for any other key.
pub fn lot_owner(key: &[u8]) -> Option<(Vec<u8>, u64)> {
    let rest = key.strip_prefix(b"lot/")?;
    if rest.len() < 21 || rest[rest.len() - 21] != b'/' {
        return None;
    }
    let (acct, seq) = rest.split_at(rest.len() - 21);
    let seq = &seq[1..];
    if !seq.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let seq = std::str::from_utf8(seq).ok()?.parse().ok()?;
    Some(([b"acct/".as_slice(), acct].concat(), seq))
}

pub fn program(id: &str) -> Vec<u8> {
    [b"prog/".as_slice(), id.as_bytes()].concat()
}

pub fn allocation(tx: &TxId) -> Vec<u8> {
    tx.prefixed_hex(b"alloc/")
}

pub fn lineage(tx: &TxId) -> Vec<u8> {
    tx.prefixed_hex(b"lineage/")
}

/// The adjustments that correct transaction `corrected` (`Corrections`).
pub fn corrections(corrected: &TxId) -> Vec<u8> {
    corrected.prefixed_hex(b"corr/")
}

/// The consortium configuration (`ConsortiumConfig`), written only by governance.
pub const CONFIG: &[u8] = b"gov/config";

pub fn proposal(tx: &TxId) -> Vec<u8> {
    tx.prefixed_hex(b"gov/proposal/")
}

/// Consecutive same-level, same-class lots folded into one bundle (ADR 0004).
pub const BUNDLE_FANOUT: usize = 16;
/// Bundles one credit may create: a cascade through this many levels covers
/// 16^8 lots, far beyond any account's life.
pub const MAX_BUNDLES_PER_CREDIT: u8 = 8;

/// The id of the `i`-th bundle that transaction `tx` creates.
pub fn bundle_id(tx: &TxId, i: u8) -> TxId {
    fiscus_proto::hash::sha256(&[b"fiscus.bundle/".as_slice(), &tx.0, &[i]].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lot_keys_sort_in_fifo_order_and_name_their_account() {
        let a = lot("130100", "edu-2026", 9);
        let b = lot("130100", "edu-2026", 10);
        assert!(a < b);
        assert!(a.starts_with(&lot_prefix("130100", "edu-2026")));
        assert_eq!(
            lot_prefix_of(&account("130100", "edu-2026")),
            Some(lot_prefix("130100", "edu-2026"))
        );
        assert_eq!(lot_prefix_of(b"prog/edu-2026"), None);
        assert_eq!(lot_owner(&b), Some((account("130100", "edu-2026"), 10)));
        assert_eq!(
            lot_owner(&lot("1", "p", u64::MAX)).map(|o| o.1),
            Some(u64::MAX)
        );
        assert_eq!(lot_owner(b"acct/130100/edu"), None);
        assert_eq!(lot_owner(b"lot/130100/edu/12"), None);
        assert_eq!(lot_owner(b"lot/130100/edu/0000000000000000000x"), None);
    }
}
