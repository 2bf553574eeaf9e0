//! A transaction's window onto state: only its declared keys, reads from the
//! state before it, writes buffered until it succeeds.

use crate::context::Declared;
use crate::rejection::Rejection;
use fiscus_common::codes;
use fiscus_proto::pb::types::TxStatus;
use prost::Message;
use std::collections::BTreeMap;

pub(crate) struct View<'a> {
    declared: &'a Declared,
    /// State before the transaction; keys it does not hold are absent.
    base: &'a BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> View<'a> {
    pub(crate) fn new(
        declared: &'a Declared,
        base: &'a BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> Self {
        Self {
            declared,
            base,
            writes: BTreeMap::new(),
        }
    }

    fn check(&self, key: &[u8]) -> Result<(), Rejection> {
        if self.declared.reads.contains(key)
            || self.declared.writes.contains(key)
            || self.declared.is_fresh(key)
            || self.declared.is_declared_lot(key)
        {
            Ok(())
        } else {
            Err(Rejection::new(
                TxStatus::InvalidArgument,
                codes::contract::UNDECLARED_KEY,
                format!("key {} was not declared", String::from_utf8_lossy(key)),
            ))
        }
    }

    pub(crate) fn get<M: Message + Default>(&self, key: &[u8]) -> Result<Option<M>, Rejection> {
        self.check(key)?;
        let raw: Option<&[u8]> = match self.writes.get(key) {
            Some(v) => v.as_deref(),
            // Keys derived from this tx's id are absent before it by construction.
            None if self.declared.is_fresh(key) => None,
            None => match self.base.get(key) {
                Some(v) => v.as_deref(),
                // A lot the ledger did not read (it reads the first and last
                // few of each account): the block runs again with it.
                None if key.starts_with(b"lot/") => return Err(Rejection::need_read(key)),
                None => None,
            },
        };
        raw.map(|b| {
            M::decode(b).map_err(|e| {
                Rejection::malformed(format!(
                    "stored value at {} is corrupt: {e}",
                    String::from_utf8_lossy(key)
                ))
            })
        })
        .transpose()
    }

    pub(crate) fn put<M: Message>(&mut self, key: &[u8], value: &M) -> Result<(), Rejection> {
        self.check(key)?;
        self.writes
            .insert(key.to_vec(), Some(value.encode_to_vec()));
        Ok(())
    }

    /// Deletes `key` (a lot used up or folded into a bundle).
    pub(crate) fn delete(&mut self, key: &[u8]) -> Result<(), Rejection> {
        self.check(key)?;
        self.writes.insert(key.to_vec(), None);
        Ok(())
    }

    pub(crate) fn into_writes(self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        self.writes
    }
}
