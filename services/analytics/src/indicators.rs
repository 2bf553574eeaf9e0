//! The indicators: for a set of orgs S (a region's subtree, or one
//! department alone), what flowed into, out of and within it, read from the
//! rollups and classified by which side of S each movement's two orgs are on.
//!
//! | figure | movements counted |
//! |---|---|
//! | `appropriated` 拨入 | appropriations at an org in S |
//! | `received` 收到下达 | allocations into S from an org outside it |
//! | `allocated` 下达 | allocations from S to an org outside it |
//! | `acknowledged` 已确认 | acknowledgements of allocations into S from outside |
//! | `disbursed` 支付 | disbursements by an org in S |
//! | `recovered_out` / `recovered_in` 收回 | recoveries leaving / entering S |
//! | `adjusted_out` / `adjusted_in` 调整 | corrections leaving / entering S |
//! | `held` 结存 | the first three inflows less the four outflows |
//!
//! For a region (a subtree), `allocated` is zero (money only goes down, and
//! below is inside), and its progress is the money's: expenditure progress
//! 支出进度 = disbursed / (appropriated + received). For one department,
//! allocation progress 下达进度 = allocated / (appropriated + received).

use crate::facts::Kind;
use crate::store::Division;
use rusqlite::Connection;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Amounts in fen, with the number of movements behind each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub appropriated_fen: i64,
    pub received_fen: i64,
    pub allocated_fen: i64,
    pub acknowledged_fen: i64,
    pub disbursed_fen: i64,
    pub recovered_out_fen: i64,
    pub recovered_in_fen: i64,
    pub adjusted_out_fen: i64,
    pub adjusted_in_fen: i64,
    pub disbursements: i64,
    pub allocations_received: i64,
}

impl Figures {
    /// Adds one rollup row of `amount` over `count` movements, given whether
    /// its from-org and to-org are in S.
    pub fn add(&mut self, kind: Kind, from_in: bool, to_in: bool, amount: i64, count: i64) {
        match kind {
            Kind::Appropriate if to_in => self.appropriated_fen += amount,
            Kind::Allocate if to_in && !from_in => {
                self.received_fen += amount;
                self.allocations_received += count;
            }
            Kind::Allocate if from_in && !to_in => self.allocated_fen += amount,
            Kind::Acknowledge if to_in && !from_in => self.acknowledged_fen += amount,
            Kind::Disburse if from_in => {
                self.disbursed_fen += amount;
                self.disbursements += count;
            }
            Kind::Recover if from_in && !to_in => self.recovered_out_fen += amount,
            Kind::Recover if to_in && !from_in => self.recovered_in_fen += amount,
            Kind::Adjust if from_in && !to_in => self.adjusted_out_fen += amount,
            Kind::Adjust if to_in && !from_in => self.adjusted_in_fen += amount,
            _ => {}
        }
    }

    pub fn inflow_fen(&self) -> i64 {
        self.appropriated_fen + self.received_fen
    }

    pub fn held_fen(&self) -> i64 {
        self.appropriated_fen + self.received_fen + self.recovered_in_fen + self.adjusted_in_fen
            - self.allocated_fen
            - self.disbursed_fen
            - self.recovered_out_fen
            - self.adjusted_out_fen
    }

    /// 下达进度, in basis points (1/100 of a percent); None without inflow.
    pub fn allocation_progress_bp(&self) -> Option<i64> {
        ratio_bp(self.allocated_fen, self.inflow_fen())
    }

    /// 支出进度, in basis points; None without inflow.
    pub fn expenditure_progress_bp(&self) -> Option<i64> {
        ratio_bp(self.disbursed_fen, self.inflow_fen())
    }
}

/// `part / whole` in basis points, rounded half up, in integers.
pub fn ratio_bp(part: i64, whole: i64) -> Option<i64> {
    if whole <= 0 {
        return None;
    }
    let (p, w) = (i128::from(part), i128::from(whole));
    i64::try_from((p * 20_000 + w) / (2 * w)).ok()
}

/// The division tree in memory, for classifying rollup rows.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    by_code: BTreeMap<String, Division>,
    children: BTreeMap<String, Vec<String>>,
}

/// Which part of a region an org is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part<'a> {
    Outside,
    /// The region's own department.
    Top,
    /// The subtree of this child of the region's top.
    Child(&'a str),
}

impl Tree {
    pub fn new(divisions: Vec<Division>) -> Self {
        let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for d in &divisions {
            if !d.parent.is_empty() {
                children
                    .entry(d.parent.clone())
                    .or_default()
                    .push(d.code.clone());
            }
        }
        let by_code = divisions.into_iter().map(|d| (d.code.clone(), d)).collect();
        Self { by_code, children }
    }

    /// The org with no parent (the MOF), if there is exactly one.
    pub fn root(&self) -> Option<String> {
        let mut roots = self.by_code.values().filter(|d| d.parent.is_empty());
        match (roots.next(), roots.next()) {
            (Some(r), None) => Some(r.code.clone()),
            _ => None,
        }
    }

    pub fn get(&self, code: &str) -> Option<&Division> {
        self.by_code.get(code)
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// The finance departments directly below `code` (supervisors hold no
    /// money and are left out), in code order.
    pub fn children(&self, code: &str) -> Vec<&Division> {
        self.children
            .get(code)
            .map(|c| {
                c.iter()
                    .filter_map(|c| self.by_code.get(c))
                    .filter(|d| d.level != "supervisor")
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `org` is `top` or below it. Bounded by the tree's size.
    pub fn within(&self, top: &str, org: &str) -> bool {
        self.part(top, org) != Part::Outside
    }

    /// Where every org of the tree lies with respect to `top`.
    fn parts<'a>(&'a self, top: &str) -> HashMap<&'a str, Part<'a>> {
        self.by_code
            .keys()
            .map(|c| (c.as_str(), self.part(top, c)))
            .filter(|(_, p)| *p != Part::Outside)
            .collect()
    }

    fn part<'a>(&'a self, top: &str, org: &str) -> Part<'a> {
        if org == top {
            return Part::Top;
        }
        let mut cur = match self.by_code.get(org) {
            Some(d) => d,
            None => return Part::Outside,
        };
        for _ in 0..=self.by_code.len() {
            if cur.parent == top {
                return Part::Child(cur.code.as_str());
            }
            match self.by_code.get(&cur.parent) {
                Some(p) => cur = p,
                None => return Part::Outside,
            }
        }
        Part::Outside
    }
}

/// What a query keeps: a program, and an inclusive range of months ("YYYY-MM").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub program: Option<String>,
    pub from_month: Option<String>,
    pub to_month: Option<String>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.program.is_none() && self.from_month.is_none() && self.to_month.is_none()
    }
}

/// One rollup row: (group key, kind, from, to, amount, count).
type Row = (String, Kind, String, String, i64, i64);

/// Rollup rows grouped by `group` ("" for none, "month", "program"), from
/// the smallest rollup that holds them: `edge`, `flow_month` or
/// `flow_program` without a filter, `flow` (filtered in SQL) with one.
fn rows(conn: &Connection, filter: &Filter, group: &str) -> Result<Vec<Row>, rusqlite::Error> {
    let key = match group {
        "month" => "month",
        "program" => "program",
        _ => "''",
    };
    let sql = if filter.is_empty() {
        let table = match key {
            "month" => "flow_month",
            "program" => "flow_program",
            _ => "edge",
        };
        format!("SELECT {key}, kind, from_org, to_org, amount_fen, tx_count FROM {table}")
    } else {
        format!(
            "SELECT {key}, kind, from_org, to_org, SUM(amount_fen), SUM(tx_count) FROM flow
             WHERE (?1 IS NULL OR program = ?1) AND (?2 IS NULL OR month >= ?2) AND (?3 IS NULL OR month <= ?3)
             GROUP BY {key}, kind, from_org, to_org"
        )
    };
    let mut st = conn.prepare_cached(&sql)?;
    let mut q = if filter.is_empty() {
        st.query([])?
    } else {
        st.query(rusqlite::params![
            filter.program,
            filter.from_month,
            filter.to_month
        ])?
    };
    let mut out = Vec::new();
    while let Some(r) = q.next()? {
        let kind: String = r.get(1)?;
        let Some(kind) = Kind::parse(&kind) else {
            continue;
        };
        out.push((r.get(0)?, kind, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?));
    }
    Ok(out)
}

/// A region broken down: the whole subtree, its own department, and each
/// child's subtree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Breakdown {
    pub region: Figures,
    pub department: Figures,
    /// (child code, its subtree's figures), in code order; every child is
    /// listed, with zeros where nothing moved.
    pub children: Vec<(String, Figures)>,
}

/// The figures of `top`'s region, its department and each child's subtree.
pub fn breakdown(
    conn: &Connection,
    tree: &Tree,
    top: &str,
    filter: &Filter,
) -> Result<Breakdown, rusqlite::Error> {
    let mut out = Breakdown::default();
    let mut kids: BTreeMap<&str, Figures> = tree
        .children(top)
        .into_iter()
        .map(|d| (d.code.as_str(), Figures::default()))
        .collect();
    let parts = tree.parts(top);
    let part = |org: &str| parts.get(org).copied().unwrap_or(Part::Outside);
    for (_, kind, from, to, amount, count) in rows(conn, filter, "")? {
        let (pf, pt) = (part(&from), part(&to));
        out.region.add(
            kind,
            pf != Part::Outside,
            pt != Part::Outside,
            amount,
            count,
        );
        out.department
            .add(kind, pf == Part::Top, pt == Part::Top, amount, count);
        for p in [pf, pt] {
            if let Part::Child(c) = p
                && let Some(f) = kids.get_mut(c)
            {
                f.add(kind, pf == p, pt == p, amount, count);
            }
            if pf == pt {
                break;
            }
        }
    }
    out.children = kids.into_iter().map(|(c, f)| (c.to_owned(), f)).collect();
    Ok(out)
}

/// The region's figures per month or per program (`group`), in key order.
pub fn series(
    conn: &Connection,
    tree: &Tree,
    top: &str,
    filter: &Filter,
    group: &str,
) -> Result<Vec<(String, Figures)>, rusqlite::Error> {
    let mut out: BTreeMap<String, Figures> = BTreeMap::new();
    let parts = tree.parts(top);
    for (key, kind, from, to, amount, count) in rows(conn, filter, group)? {
        let (fi, ti) = (
            parts.contains_key(from.as_str()),
            parts.contains_key(to.as_str()),
        );
        if fi || ti {
            out.entry(key).or_default().add(kind, fi, ti, amount, count);
        }
    }
    out.retain(|_, f| *f != Figures::default());
    Ok(out.into_iter().collect())
}

/// Allocations made by a set of orgs, and how many of them the contract
/// recorded as past their Budget Law art. 52 deadline (逾期下达).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Compliance {
    pub allocations: i64,
    pub allocated_fen: i64,
    pub late: i64,
    pub late_fen: i64,
}

impl Compliance {
    fn add(&mut self, r: [i64; 4]) {
        self.allocations += r[0];
        self.allocated_fen += r[1];
        self.late += r[2];
        self.late_fen += r[3];
    }

    /// The share of allocations made on time, in basis points; None without any.
    pub fn on_time_bp(&self) -> Option<i64> {
        ratio_bp(self.allocations - self.late, self.allocations)
    }
}

/// Compliance of a region's payers: all of them, its department, each child subtree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComplianceBreakdown {
    pub region: Compliance,
    pub department: Compliance,
    pub children: Vec<(String, Compliance)>,
}

/// Art. 52 compliance of the allocations made inside `top`'s region, by payer.
pub fn compliance(
    conn: &Connection,
    tree: &Tree,
    top: &str,
    filter: &Filter,
) -> Result<ComplianceBreakdown, rusqlite::Error> {
    let mut st = conn.prepare_cached(
        "SELECT from_org, SUM(allocations), SUM(allocated_fen), SUM(late), SUM(late_fen) FROM deadline
         WHERE (?1 IS NULL OR program = ?1) AND (?2 IS NULL OR month >= ?2) AND (?3 IS NULL OR month <= ?3)
         GROUP BY from_org",
    )?;
    let mut q = st.query(rusqlite::params![
        filter.program,
        filter.from_month,
        filter.to_month
    ])?;
    let mut out = ComplianceBreakdown::default();
    let mut kids: BTreeMap<&str, Compliance> = tree
        .children(top)
        .into_iter()
        .map(|d| (d.code.as_str(), Compliance::default()))
        .collect();
    let parts = tree.parts(top);
    while let Some(r) = q.next()? {
        let from: String = r.get(0)?;
        let row = [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?];
        match parts.get(from.as_str()) {
            None => continue,
            Some(Part::Top) => out.department.add(row),
            Some(Part::Child(c)) => {
                if let Some(k) = kids.get_mut(c) {
                    k.add(row);
                }
            }
            Some(Part::Outside) => continue,
        }
        out.region.add(row);
    }
    out.children = kids.into_iter().map(|(c, f)| (c.to_owned(), f)).collect();
    Ok(out)
}

/// One allocation the contract recorded as late.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LateItem {
    pub height: u64,
    pub index: u32,
    pub tx_id: String,
    pub from_org: String,
    pub to_org: String,
    pub program: String,
    /// The allocation's CST day, and the day it was due by.
    pub day: i64,
    pub due_day: i64,
    pub amount_fen: i64,
}

/// The late allocations made inside `top`'s region, in chain order, from
/// after (`height`, `index`), at most `limit`.
pub fn late_items(
    conn: &Connection,
    top: &str,
    filter: &Filter,
    after: (u64, u32),
    limit: u32,
) -> Result<Vec<LateItem>, rusqlite::Error> {
    let mut st = conn.prepare_cached(
        "SELECT m.height, m.idx, hex(m.tx_id), m.from_org, m.to_org, m.program, m.day, m.late_due_day, m.amount_fen
         FROM subtree s JOIN movement m ON m.from_org = s.org
           AND m.kind = 'allocate' AND m.late_due_day IS NOT NULL
         WHERE s.ancestor = ?1
           AND (?2 IS NULL OR m.program = ?2) AND (?3 IS NULL OR m.month >= ?3) AND (?4 IS NULL OR m.month <= ?4)
           AND (m.height > ?5 OR (m.height = ?5 AND m.idx > ?6))
         ORDER BY m.height, m.idx LIMIT ?7",
    )?;
    let rows = st.query_map(
        rusqlite::params![
            top,
            filter.program,
            filter.from_month,
            filter.to_month,
            after.0 as i64,
            after.1,
            limit
        ],
        |r| {
            Ok(LateItem {
                height: r.get::<_, i64>(0)? as u64,
                index: r.get(1)?,
                tx_id: r.get::<_, String>(2)?.to_ascii_lowercase(),
                from_org: r.get(3)?,
                to_org: r.get(4)?,
                program: r.get(5)?,
                day: r.get(6)?,
                due_day: r.get(7)?,
                amount_fen: r.get(8)?,
            })
        },
    )?;
    rows.collect()
}

/// Funds in one account (org, program) that arrived on or before the cut-off
/// day and are still held: accounts pay out oldest first (ADR 0004), and
/// the store follows each account's pieces in that order (`crate::lots`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdleAccount {
    pub org: String,
    pub program: String,
    pub balance_fen: i64,
    pub idle_fen: i64,
    /// The last day money left the account, if it ever did.
    pub last_out_day: Option<i64>,
}

/// Idle funds (沉淀资金) in `top`'s region: money that arrived on or before
/// `cutoff_day` and has not moved since.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdleReport {
    pub idle_fen: i64,
    pub department_idle_fen: i64,
    /// Idle funds per child subtree, in code order.
    pub children: Vec<(String, i64)>,
    /// The accounts holding idle funds, most idle first (then by org and program).
    pub accounts: Vec<IdleAccount>,
}

pub fn idle(
    conn: &Connection,
    tree: &Tree,
    top: &str,
    program: Option<&str>,
    cutoff_day: i64,
) -> Result<IdleReport, rusqlite::Error> {
    // Each account's pieces, oldest first (crate::lots): the idle part is
    // what of them arrived on or before the cut-off.
    let mut st = conn.prepare_cached(
        "SELECT a.org, a.program, a.pieces, a.balance_fen, a.last_out_day
         FROM subtree s JOIN account_lots a ON a.org = s.org
         WHERE s.ancestor = ?1 AND (?2 IS NULL OR a.program = ?2)",
    )?;
    let mut q = st.query(rusqlite::params![top, program])?;
    let mut out = IdleReport::default();
    let mut kids: BTreeMap<&str, i64> = tree
        .children(top)
        .into_iter()
        .map(|d| (d.code.as_str(), 0))
        .collect();
    let parts = tree.parts(top);
    while let Some(r) = q.next()? {
        let blob: Vec<u8> = r.get(2)?;
        let idle: i64 = crate::lots::pieces(&blob)
            .filter(|p| p.arrived <= cutoff_day)
            .map(|p| p.amount)
            .sum();
        if idle == 0 {
            continue;
        }
        let org: String = r.get(0)?;
        match parts.get(org.as_str()) {
            Some(Part::Top) => out.department_idle_fen += idle,
            Some(Part::Child(c)) => {
                if let Some(k) = kids.get_mut(c) {
                    *k += idle;
                }
            }
            _ => {}
        }
        out.idle_fen += idle;
        out.accounts.push(IdleAccount {
            org,
            program: r.get(1)?,
            balance_fen: r.get(3)?,
            idle_fen: idle,
            last_out_day: r.get(4)?,
        });
    }
    out.accounts.sort_by(|a, b| {
        b.idle_fen
            .cmp(&a.idle_fen)
            .then_with(|| a.org.cmp(&b.org))
            .then_with(|| a.program.cmp(&b.program))
    });
    out.children = kids.into_iter().map(|(c, v)| (c.to_owned(), v)).collect();
    Ok(out)
}

/// How long money waited, for one level of government: amount-weighted
/// (half of the money waited `median_days` or less).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waits {
    /// `central`, `provincial`, `municipal` or `county`.
    pub level: String,
    pub amount_fen: i64,
    pub median_days: i64,
    pub p90_days: i64,
}

/// Which wait: money passed down (days from arriving at the payer to its
/// allocation, 下达时间), or money paid (days from its appropriation to the
/// final recipient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    PassDown,
    Payment,
}

/// The smallest day count by which at least `pct`% of the amount is counted.
fn weighted_percentile(days: &[(i64, i64)], total: i64, pct: i64) -> i64 {
    let mut cum: i128 = 0;
    for (d, a) in days {
        cum += i128::from(*a);
        if cum * 100 >= i128::from(total) * i128::from(pct) {
            return *d;
        }
    }
    days.last().map_or(0, |(d, _)| *d)
}

/// The waits of the money the orgs of `top`'s region passed down or paid,
/// per level, for one program or all (and only direct funds' programs with
/// `direct_only`).
pub fn waits(
    conn: &Connection,
    top: &str,
    which: Wait,
    program: Option<&str>,
    direct_only: bool,
) -> Result<Vec<Waits>, rusqlite::Error> {
    let table = match which {
        Wait::PassDown => "passdown",
        Wait::Payment => "payment_age",
    };
    let sql = format!(
        "SELECT d.level, w.days, SUM(w.amount_fen)
         FROM subtree s JOIN {table} w ON w.org = s.org JOIN division d ON d.code = w.org
           LEFT JOIN program p ON p.id = w.program
         WHERE s.ancestor = ?1 AND (?2 IS NULL OR w.program = ?2) AND (?3 = 0 OR p.direct = 1)
         GROUP BY d.level, w.days ORDER BY d.level, w.days"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(rusqlite::params![top, program, direct_only])?;
    let mut by_level: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    while let Some(r) = rows.next()? {
        by_level
            .entry(r.get(0)?)
            .or_default()
            .push((r.get(1)?, r.get(2)?));
    }
    let order = ["central", "provincial", "municipal", "county"];
    let mut out: Vec<Waits> = by_level
        .into_iter()
        .filter(|(_, d)| !d.is_empty())
        .map(|(level, days)| {
            let total: i64 = days.iter().map(|(_, a)| a).sum();
            Waits {
                median_days: weighted_percentile(&days, total, 50),
                p90_days: weighted_percentile(&days, total, 90),
                amount_fen: total,
                level,
            }
        })
        .collect();
    out.sort_by_key(|w| {
        order
            .iter()
            .position(|l| *l == w.level)
            .unwrap_or(order.len())
    });
    Ok(out)
}

/// Direct funds (直达资金) in `top`'s region: what came in under programs
/// with the direct attribute, and what of it reached final recipients.
pub fn direct_funds(
    conn: &Connection,
    tree: &Tree,
    top: &str,
) -> Result<(i64, i64), rusqlite::Error> {
    let direct: std::collections::BTreeSet<String> = conn
        .prepare_cached("SELECT id FROM program WHERE direct = 1")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let (mut inflow, mut disbursed) = (0, 0);
    for (program, f) in series(conn, tree, top, &Filter::default(), "program")? {
        if direct.contains(&program) {
            inflow += f.inflow_fen();
            disbursed += f.disbursed_fen;
        }
    }
    Ok((inflow, disbursed))
}
