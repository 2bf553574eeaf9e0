//! Where each yuan came from and how long it waited: analytics follows the
//! money of every account as parcels (pieces) in the order they arrived,
//! and pays out oldest first, as the contract's lots do (ADR 0004). A piece
//! remembers the day it arrived in the account and the day its money was
//! first appropriated. So an allocation tells how long the money sat before
//! it was passed down (下达时间), and a disbursement how long the money took
//! from its appropriation to the final recipient.
//!
//! The queues live in memory while a batch is applied and are written back
//! at the batch's end (`account_lots`, one row per account), in the batch's
//! SQLite transaction.

use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::{BTreeMap, VecDeque};

/// A parcel of money in an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// The CST day it arrived in this account.
    pub arrived: i64,
    /// The CST day its money was appropriated.
    pub origin: i64,
    pub amount: i64,
}

type Account = (String, String);

/// An account's pieces, and the last day money left it.
#[derive(Debug, Default)]
struct Held {
    pieces: VecDeque<Piece>,
    last_out_day: Option<i64>,
}

/// The queues of the accounts a batch touches.
#[derive(Debug, Default)]
pub(crate) struct Queues {
    queues: BTreeMap<Account, Held>,
}

fn decode(b: &[u8]) -> VecDeque<Piece> {
    b.chunks_exact(24)
        .map(|c| {
            let n = |i: usize| i64::from_le_bytes(c[i..i + 8].try_into().unwrap_or([0; 8]));
            Piece {
                arrived: n(0),
                origin: n(8),
                amount: n(16),
            }
        })
        .collect()
}

fn encode(q: &VecDeque<Piece>) -> Vec<u8> {
    let mut out = Vec::with_capacity(q.len() * 24);
    for p in q {
        out.extend_from_slice(&p.arrived.to_le_bytes());
        out.extend_from_slice(&p.origin.to_le_bytes());
        out.extend_from_slice(&p.amount.to_le_bytes());
    }
    out
}

impl Queues {
    fn held(
        &mut self,
        tx: &Transaction<'_>,
        org: &str,
        program: &str,
    ) -> Result<&mut Held, rusqlite::Error> {
        let key = (org.to_owned(), program.to_owned());
        if !self.queues.contains_key(&key) {
            let row: Option<(Vec<u8>, Option<i64>)> = tx
                .prepare_cached(
                    "SELECT pieces, last_out_day FROM account_lots WHERE org = ?1 AND program = ?2",
                )?
                .query_row(params![org, program], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let held = row
                .map(|(b, last_out_day)| Held {
                    pieces: decode(&b),
                    last_out_day,
                })
                .unwrap_or_default();
            self.queues.insert(key.clone(), held);
        }
        Ok(self.queues.entry(key).or_default())
    }

    /// Adds a piece at the back of the account's queue (merged with the
    /// last one when it arrived the same day from the same appropriation day).
    pub(crate) fn put(
        &mut self,
        tx: &Transaction<'_>,
        org: &str,
        program: &str,
        piece: Piece,
    ) -> Result<(), rusqlite::Error> {
        let q = &mut self.held(tx, org, program)?.pieces;
        match q.back_mut() {
            Some(b) if b.arrived == piece.arrived && b.origin == piece.origin => {
                b.amount += piece.amount
            }
            _ => q.push_back(piece),
        }
        Ok(())
    }

    /// Takes `amount` from the front of the account's queue, oldest first,
    /// on `day`. A valid transaction never takes more than the account
    /// holds; if the queue runs short anyway, what it holds is taken.
    pub(crate) fn take(
        &mut self,
        tx: &Transaction<'_>,
        org: &str,
        program: &str,
        mut amount: i64,
        day: i64,
    ) -> Result<Vec<Piece>, rusqlite::Error> {
        let held = self.held(tx, org, program)?;
        held.last_out_day = Some(day);
        let q = &mut held.pieces;
        let mut out = Vec::new();
        while amount > 0 {
            let Some(front) = q.front_mut() else { break };
            if front.amount <= amount {
                amount -= front.amount;
                out.push(*front);
                q.pop_front();
            } else {
                front.amount -= amount;
                out.push(Piece { amount, ..*front });
                amount = 0;
            }
        }
        Ok(out)
    }

    /// Writes every queue the batch touched.
    pub(crate) fn flush(self, tx: &Transaction<'_>) -> Result<(), rusqlite::Error> {
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO account_lots (org, program, pieces, balance_fen, last_out_day)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for ((org, program), h) in self.queues {
            let balance: i64 = h.pieces.iter().map(|p| p.amount).sum();
            put.execute(params![
                org,
                program,
                encode(&h.pieces),
                balance,
                h.last_out_day
            ])?;
        }
        Ok(())
    }
}

/// The pieces of an `account_lots` row.
pub fn pieces(blob: &[u8]) -> impl Iterator<Item = Piece> + '_ {
    decode(blob).into_iter()
}
