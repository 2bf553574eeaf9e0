//! Anomaly flags (异常提示): patterns an auditor should look at, found by
//! plain rules over the movements of a region. A flag is a lead, not a
//! finding: every rule below can be met by lawful payments.
//!
//! | rule | what it flags | thresholds (config) |
//! |---|---|---|
//! | `split_payment` 拆分支付 | one org paying one recipient, in one program, two or more times within `split_window_days`, each payment at least 80% of `split_threshold_fen` and below it, together at least the threshold | 10,000,000 fen (10万元), 7 days |
//! | `shared_recipient` 多地支付同一对象 | one recipient paid in one program by two or more different orgs | — |
//! | `recovery_after_disbursement` 支付后收回 | an org returning money upward in a program after it had paid recipients in that program | — |
//! | `long_freeze` 长期冻结 | an account frozen, and not unfrozen, for more than `frozen_days` up to the last block applied | 30 days |
//!
//! Every rule reads the region's own movements: a flag appears in the
//! regions its paying (or frozen) org lies in, and nowhere else.

use rusqlite::Connection;
use serde::Serialize;

/// The rules' thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub split_threshold_fen: i64,
    pub split_window_days: i64,
    pub frozen_days: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            split_threshold_fen: 10_000_000,
            split_window_days: 7,
            frozen_days: 30,
        }
    }
}

/// One flag: which rule, whom it concerns, and the movements behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    /// `split_payment`, `shared_recipient`, `recovery_after_disbursement` or `long_freeze`.
    pub rule: &'static str,
    /// The org (for `shared_recipient`: the orgs, comma-separated).
    pub org: String,
    pub program: String,
    /// The recipient, for the payment rules.
    pub recipient: String,
    /// What the flagged movements add up to (0 for a freeze).
    pub amount_fen: i64,
    /// The first and last CST day of what is flagged (for a freeze: frozen on, and the last block's day).
    pub first_day: i64,
    pub last_day: i64,
    /// The transactions behind the flag, hex: in chain order (for
    /// `shared_recipient`, sorted); for a freeze, the freeze. At most
    /// [`MAX_TX_IDS`]; `tx_count` says how many there are.
    pub tx_ids: Vec<String>,
    pub tx_count: usize,
}

/// Transactions listed per flag at most (a recipient paid thousands of
/// times would otherwise make one flag, and one export cell, unbounded).
pub const MAX_TX_IDS: usize = 100;

impl Flag {
    fn bounded(mut self) -> Self {
        self.tx_count = self.tx_ids.len();
        self.tx_ids.truncate(MAX_TX_IDS);
        self
    }
}

type Payment = (i64, i64, String, i64, i64);

/// The flags of `top`'s region, rule by rule, each rule's in a stable order.
pub fn flags(
    conn: &Connection,
    top: &str,
    t: &Thresholds,
    as_of_day: i64,
) -> Result<Vec<Flag>, rusqlite::Error> {
    let mut out = Vec::new();
    split_payments(conn, top, t, &mut out)?;
    shared_recipients(conn, top, &mut out)?;
    recoveries_after_disbursement(conn, top, &mut out)?;
    long_freezes(conn, top, t, as_of_day, &mut out)?;
    Ok(out)
}

fn split_payments(
    conn: &Connection,
    top: &str,
    t: &Thresholds,
    out: &mut Vec<Flag>,
) -> Result<(), rusqlite::Error> {
    // Payments in the band, grouped by (payer, program, recipient), in chain order.
    let low = t.split_threshold_fen - t.split_threshold_fen / 5;
    let mut st = conn.prepare_cached(
        "SELECT m.from_org, m.program, m.recipient, m.height, m.idx, hex(m.tx_id), m.day, m.amount_fen
         FROM subtree s JOIN movement m ON m.from_org = s.org AND m.kind = 'disburse'
         WHERE s.ancestor = ?1 AND m.amount_fen >= ?2 AND m.amount_fen < ?3
         ORDER BY m.from_org, m.program, m.recipient, m.height, m.idx",
    )?;
    let mut rows = st.query(rusqlite::params![top, low, t.split_threshold_fen])?;
    let mut group: Option<(String, String, String)> = None;
    let mut payments: Vec<Payment> = Vec::new();
    let flush = |key: &Option<(String, String, String)>, p: &[Payment], out: &mut Vec<Flag>| {
        let Some((org, program, recipient)) = key else {
            return;
        };
        // Windows of `split_window_days` from each payment on; a flag per
        // run of payments that are each within the window of the run's first.
        let mut i = 0;
        while i < p.len() {
            let mut j = i;
            while j + 1 < p.len() && p[j + 1].3 - p[i].3 < t.split_window_days {
                j += 1;
            }
            let run = &p[i..=j];
            let sum: i64 = run.iter().map(|x| x.4).sum();
            if run.len() >= 2 && sum >= t.split_threshold_fen {
                out.push(
                    Flag {
                        rule: "split_payment",
                        org: org.clone(),
                        program: program.clone(),
                        recipient: recipient.clone(),
                        amount_fen: sum,
                        first_day: run[0].3,
                        last_day: run[run.len() - 1].3,
                        tx_ids: run.iter().map(|x| x.2.to_ascii_lowercase()).collect(),
                        tx_count: 0,
                    }
                    .bounded(),
                );
                i = j + 1;
            } else {
                i += 1;
            }
        }
    };
    while let Some(r) = rows.next()? {
        let key = (r.get(0)?, r.get(1)?, r.get(2)?);
        if group.as_ref() != Some(&key) {
            flush(&group, &payments, out);
            payments.clear();
            group = Some(key);
        }
        payments.push((r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?));
    }
    flush(&group, &payments, out);
    Ok(())
}

fn shared_recipients(
    conn: &Connection,
    top: &str,
    out: &mut Vec<Flag>,
) -> Result<(), rusqlite::Error> {
    let mut st = conn.prepare_cached(
        "SELECT m.program, m.recipient, group_concat(DISTINCT m.from_org), SUM(m.amount_fen),
           MIN(m.day), MAX(m.day), group_concat(hex(m.tx_id))
         FROM subtree s JOIN movement m ON m.from_org = s.org AND m.kind = 'disburse'
         WHERE s.ancestor = ?1 AND m.recipient != ''
         GROUP BY m.program, m.recipient HAVING COUNT(DISTINCT m.from_org) >= 2
         ORDER BY m.program, m.recipient",
    )?;
    let rows = st.query_map([top], |r| {
        let orgs: String = r.get(2)?;
        let mut orgs: Vec<&str> = orgs.split(',').collect();
        orgs.sort_unstable();
        let txs: String = r.get(6)?;
        Ok(Flag {
            rule: "shared_recipient",
            org: orgs.join(","),
            program: r.get(0)?,
            recipient: r.get(1)?,
            amount_fen: r.get(3)?,
            first_day: r.get(4)?,
            last_day: r.get(5)?,
            tx_ids: txs.split(',').map(str::to_ascii_lowercase).collect(),
            tx_count: 0,
        })
    })?;
    for f in rows {
        let mut f = f?;
        f.tx_ids.sort_unstable();
        out.push(f.bounded());
    }
    Ok(())
}

fn recoveries_after_disbursement(
    conn: &Connection,
    top: &str,
    out: &mut Vec<Flag>,
) -> Result<(), rusqlite::Error> {
    // Each account's first payment is kept as it happens (`first_payment`).
    let mut st = conn.prepare_cached(
        "SELECT r.from_org, r.program, r.amount_fen, r.day, hex(r.tx_id),
           CASE WHEN f.height < r.height OR (f.height = r.height AND f.idx < r.idx) THEN f.day END
         FROM subtree s JOIN movement r ON r.from_org = s.org AND r.kind = 'recover'
           LEFT JOIN first_payment f ON f.org = r.from_org AND f.program = r.program
         WHERE s.ancestor = ?1
         ORDER BY r.height, r.idx",
    )?;
    let rows = st.query_map([top], |r| {
        let first_paid: Option<i64> = r.get(5)?;
        Ok(
            first_paid.map(|first_day| -> Result<Flag, rusqlite::Error> {
                Ok(Flag {
                    rule: "recovery_after_disbursement",
                    org: r.get(0)?,
                    program: r.get(1)?,
                    recipient: String::new(),
                    amount_fen: r.get(2)?,
                    first_day,
                    last_day: r.get(3)?,
                    tx_ids: vec![r.get::<_, String>(4)?.to_ascii_lowercase()],
                    tx_count: 1,
                })
            }),
        )
    })?;
    for f in rows {
        if let Some(f) = f? {
            out.push(f?);
        }
    }
    Ok(())
}

fn long_freezes(
    conn: &Connection,
    top: &str,
    t: &Thresholds,
    as_of_day: i64,
    out: &mut Vec<Flag>,
) -> Result<(), rusqlite::Error> {
    // Each account's last freeze or unfreeze.
    let mut st = conn.prepare_cached(
        "SELECT f.org, f.program, f.day, f.frozen, hex(f.tx_id)
         FROM subtree s JOIN freeze f ON f.org = s.org
         WHERE s.ancestor = ?1
         ORDER BY f.org, f.program, f.height, f.idx",
    )?;
    let mut last: Vec<(String, String, i64, bool, String)> = Vec::new();
    let mut rows = st.query([top])?;
    while let Some(r) = rows.next()? {
        let (org, program): (String, String) = (r.get(0)?, r.get(1)?);
        let e = (org, program, r.get(2)?, r.get(3)?, r.get(4)?);
        match last.last_mut() {
            Some(l) if l.0 == e.0 && l.1 == e.1 => *l = e,
            _ => last.push(e),
        }
    }
    for (org, program, day, frozen, tx) in last {
        if frozen && as_of_day - day > t.frozen_days {
            out.push(Flag {
                rule: "long_freeze",
                org,
                program,
                recipient: String::new(),
                amount_fen: 0,
                first_day: day,
                last_day: as_of_day,
                tx_ids: vec![tx.to_ascii_lowercase()],
                tx_count: 1,
            });
        }
    }
    Ok(())
}
