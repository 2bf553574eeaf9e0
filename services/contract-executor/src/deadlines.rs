//! Budget Law art. 52: by when funds held at a level must be passed down.
//! One pure function, [`deadline`], decides it for a lot held by an org; the
//! contract judges each allocation with it and [`overdue`] answers which
//! funds sit past their deadline at any height. Plain-language rules, with
//! the paragraphs, are in the README.

use crate::calendar::{Calendar, Day, day_of, end_of_day_ms, start_of_day_ms};
use crate::orgs::Orgs;
use fiscus_proto::pb::state::{Account, Lot, ProgramRecord};
use fiscus_proto::pb::transfer::ProgramKind;
use fiscus_proto::pb::types::OrgLevel;

/// Who sets the deadline and from what it is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// e.g. "art52.2.special" (see the README's table).
    pub rule: &'static str,
    /// "approval", "receipt" or "appropriation" (no approval on chain yet).
    pub basis: &'static str,
    /// The day the period counts from.
    pub start: Day,
    /// The period's last day; None where no deadline applies.
    pub due: Option<Day>,
}

impl Deadline {
    fn none(rule: &'static str, start: Day) -> Self {
        Self {
            rule,
            basis: "",
            start,
            due: None,
        }
    }

    /// The last millisecond on which the funds are on time; 0 for none.
    pub fn due_at_ms(&self) -> i64 {
        self.due.map(end_of_day_ms).unwrap_or(0)
    }

    /// The event the period counts from, as a block time (start of its day).
    pub fn start_ms(&self) -> i64 {
        start_of_day_ms(self.start)
    }

    /// Whether passing the funds on at `now_ms` is late.
    pub fn is_late_at(&self, now_ms: i64) -> bool {
        self.due.is_some_and(|d| day_of(now_ms) > d)
    }
}

/// What about a program the deadline depends on.
#[derive(Debug, Clone, Copy)]
pub struct ProgramTerms<'a> {
    pub owner: &'a str,
    pub special: bool,
    pub emergency: bool,
    pub settlement: bool,
    pub fiscal_year: u32,
}

impl<'a> ProgramTerms<'a> {
    pub fn of(p: &'a ProgramRecord) -> Self {
        let prog = p.program.as_ref();
        Self {
            owner: &p.owner_org,
            special: prog.is_some_and(|p| p.kind == ProgramKind::Special as i32),
            emergency: prog.is_some_and(|p| p.emergency),
            settlement: prog.is_some_and(|p| p.settlement),
            fiscal_year: prog.map(|p| p.fiscal_year).unwrap_or(0),
        }
    }
}

/// By when `holder` (at `level`) must pass down the funds of `lot`.
///
/// - Funds that came back by a recovery: no obligation to pass them down again.
/// - Settlement-based programs may be issued in instalments: no deadline (para. 5).
/// - Emergencies: promptly; flagged past the policy threshold from receipt (para. 5).
/// - The MOF: 30 days (general) or 90 days (special) from the NPC's approval (para. 2).
/// - Central funds at a province or a city: 30 days from the day they reached
///   the province (para. 3), the same window at every level down to the county.
/// - A local level's own programs: 30 or 60 days from its own congress's
///   approval (para. 4).
/// - A higher local level's funds passed on: 30 or 60 days from receipt
///   (policy; the law sets no period).
///
/// Without a recorded approval the period counts from the appropriation
/// (basis "appropriation"); recording the approval later never moves a
/// deadline that was already judged from it.
pub fn deadline(
    lot: &Lot,
    holder: &str,
    level: OrgLevel,
    terms: &ProgramTerms<'_>,
    cal: &Calendar,
) -> Deadline {
    let received = day_of(lot.received_at_ms);
    if lot.recovered {
        return Deadline::none("recovered", received);
    }
    if terms.settlement {
        return Deadline::none("art52.5.settlement", received);
    }
    if terms.emergency {
        return Deadline {
            rule: "art52.5.emergency",
            basis: "receipt",
            start: received,
            due: Some(cal.period_end(received, cal.emergency_days)),
        };
    }
    let days = |general: u32, special: u32| if terms.special { special } else { general };
    let from_approval = |rule: &'static str, org: &str, n: u32| {
        let (basis, start) = match cal.approval(terms.fiscal_year, org) {
            Some(day) => ("approval", day),
            None => ("appropriation", received),
        };
        Deadline {
            rule,
            basis,
            start,
            due: Some(cal.period_end(start, n)),
        }
    };
    match level {
        OrgLevel::Central => from_approval(
            if terms.special {
                "art52.2.special"
            } else {
                "art52.2.general"
            },
            holder,
            days(30, 90),
        ),
        OrgLevel::Provincial | OrgLevel::Municipal if lot.from_central => {
            let start = crate::lots::window_day(lot);
            Deadline {
                rule: "art52.3",
                basis: "receipt",
                start,
                due: Some(cal.period_end(start, 30)),
            }
        }
        // Central funds have reached the county level: art. 52 ends there.
        OrgLevel::County if lot.from_central => Deadline::none("", received),
        OrgLevel::Provincial | OrgLevel::Municipal | OrgLevel::County if terms.owner == holder => {
            from_approval(
                if terms.special {
                    "art52.4.special"
                } else {
                    "art52.4.general"
                },
                holder,
                days(30, 60),
            )
        }
        OrgLevel::Provincial | OrgLevel::Municipal | OrgLevel::County => Deadline {
            rule: "policy.local_onward",
            basis: "receipt",
            start: received,
            due: Some(cal.period_end(received, days(30, 60))),
        },
        OrgLevel::Supervisor | OrgLevel::Unspecified => Deadline::none("", received),
    }
}

/// The strictest deadline of the lots an allocation draws on (the earliest
/// due day; none only if none of them has one).
pub fn strictest(
    lots: &[Lot],
    holder: &str,
    level: OrgLevel,
    terms: &ProgramTerms<'_>,
    cal: &Calendar,
) -> Option<Deadline> {
    let all = lots.iter().map(|l| deadline(l, holder, level, terms, cal));
    let mut best: Option<Deadline> = None;
    for d in all {
        best = match (best, d.due) {
            (None, _) => Some(d),
            (Some(b), Some(due)) if b.due.is_none_or(|bd| due < bd) => Some(d),
            (b, _) => b,
        };
    }
    best
}

/// Funds sitting past their deadline, still not passed down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdue {
    pub org: String,
    pub program_id: String,
    /// The transaction (or bundle) whose lot is held.
    pub source_tx_id: Vec<u8>,
    pub amount_fen: i64,
    pub deadline: Deadline,
    /// Whole days past the due day at the judged time.
    pub days_overdue: i64,
}

/// The lots of one account that are overdue at `as_of_ms` (a block time).
/// An org with no org below it has nobody to pass funds to: never overdue.
pub fn overdue_in_account(
    org: &str,
    program_id: &str,
    account: &Account,
    program: &ProgramRecord,
    orgs: &Orgs,
    cal: &Calendar,
    as_of_ms: i64,
) -> Vec<Overdue> {
    let Some(level) = orgs.level(org) else {
        return Vec::new();
    };
    if !orgs.has_children(org) {
        return Vec::new();
    }
    let terms = ProgramTerms::of(program);
    let today = day_of(as_of_ms);
    account
        .lots
        .iter()
        .filter_map(|lot| {
            let d = deadline(lot, org, level, &terms, cal);
            let due = d.due?;
            (today > due).then(|| Overdue {
                org: org.to_owned(),
                program_id: program_id.to_owned(),
                source_tx_id: lot.source_tx_id.clone(),
                amount_fen: lot.amount_fen,
                deadline: d,
                days_overdue: today - due,
            })
        })
        .collect()
}
