//! Budget Law art. 52: by when funds held at a level must be passed down.
//! One pure function, [`deadline`], decides it for a lot held by an org; the
//! contract judges each allocation with it and [`overdue`] answers which
//! funds sit past their deadline at any height. Plain-language rules, with
//! the paragraphs, are in the README.

use crate::calendar::{Calendar, Day, day_of, end_of_day_ms, start_of_day_ms};
use crate::orgs::Orgs;
use fiscus_proto::pb::state::{AllocationRecord, ClockBasis, DeadlineRule, Lot, ProgramRecord};
use fiscus_proto::pb::transfer::ProgramKind;
use fiscus_proto::pb::types::OrgLevel;

/// Who sets the deadline and from what it is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// e.g. art52.2.special (see the README's table and [`rule_name`]).
    pub rule: DeadlineRule,
    /// An approval, a receipt, or the appropriation (no approval on chain yet).
    pub basis: ClockBasis,
    /// The day the period counts from.
    pub start: Day,
    /// The period's last day; None where no deadline applies.
    pub due: Option<Day>,
}

impl Deadline {
    fn none(rule: DeadlineRule, start: Day) -> Self {
        Self {
            rule,
            basis: ClockBasis::None,
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

/// The short code reports and the README use for a rule, e.g. `art52.3`;
/// empty for none.
pub fn rule_name(rule: DeadlineRule) -> &'static str {
    match rule {
        DeadlineRule::None => "",
        DeadlineRule::Art522General => "art52.2.general",
        DeadlineRule::Art522Special => "art52.2.special",
        DeadlineRule::Art523 => "art52.3",
        DeadlineRule::Art524General => "art52.4.general",
        DeadlineRule::Art524Special => "art52.4.special",
        DeadlineRule::Art525Emergency => "art52.5.emergency",
        DeadlineRule::Art525Settlement => "art52.5.settlement",
        DeadlineRule::PolicyLocalOnward => "policy.local_onward",
        DeadlineRule::Recovered => "recovered",
    }
}

/// `approval`, `receipt` or `appropriation`; empty for none.
pub fn basis_name(basis: ClockBasis) -> &'static str {
    match basis {
        ClockBasis::None => "",
        ClockBasis::Approval => "approval",
        ClockBasis::Receipt => "receipt",
        ClockBasis::Appropriation => "appropriation",
    }
}

/// An allocation record's deadline as stored: the rule's and the basis's
/// short codes, and the calendar days (CST) from the clock's start day to
/// the allocation's day (0 where no rule applied).
pub fn recorded(rec: &AllocationRecord) -> (&'static str, &'static str, u32) {
    let rule = DeadlineRule::try_from(rec.rule).unwrap_or(DeadlineRule::None);
    let basis = ClockBasis::try_from(rec.clock_basis).unwrap_or(ClockBasis::None);
    let days = if rule == DeadlineRule::None {
        0
    } else {
        u32::try_from(day_of(rec.allocated_at_ms) - Day::from(rec.clock_start_day)).unwrap_or(0)
    };
    (rule_name(rule), basis_name(basis), days)
}

/// What about a program the deadline depends on.
#[derive(Debug, Clone, Copy)]
pub struct ProgramTerms<'a> {
    pub owner: &'a str,
    /// A central program (the MOF owns it): its funds are central funds at
    /// every level (art. 52 paras. 2 and 3).
    pub central: bool,
    pub special: bool,
    pub emergency: bool,
    pub settlement: bool,
    pub fiscal_year: u32,
}

impl<'a> ProgramTerms<'a> {
    pub fn of(p: &'a ProgramRecord, orgs: &Orgs) -> Self {
        let prog = p.program.as_ref();
        Self {
            owner: &p.owner_org,
            central: orgs.level(&p.owner_org) == Some(OrgLevel::Central),
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
        return Deadline::none(DeadlineRule::Recovered, received);
    }
    if terms.settlement {
        return Deadline::none(DeadlineRule::Art525Settlement, received);
    }
    if terms.emergency {
        return Deadline {
            rule: DeadlineRule::Art525Emergency,
            basis: ClockBasis::Receipt,
            start: received,
            due: Some(cal.period_end(received, cal.emergency_days)),
        };
    }
    let days = |general: u32, special: u32| if terms.special { special } else { general };
    let from_approval = |rule: DeadlineRule, org: &str, n: u32| {
        let (basis, start) = match cal.approval(terms.fiscal_year, org) {
            Some(day) => (ClockBasis::Approval, day),
            None => (ClockBasis::Appropriation, received),
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
                DeadlineRule::Art522Special
            } else {
                DeadlineRule::Art522General
            },
            holder,
            days(30, 90),
        ),
        OrgLevel::Provincial | OrgLevel::Municipal if terms.central => {
            let start = crate::lots::window_day(lot);
            Deadline {
                rule: DeadlineRule::Art523,
                basis: ClockBasis::Receipt,
                start,
                due: Some(cal.period_end(start, 30)),
            }
        }
        // Central funds have reached the county level: art. 52 ends there.
        OrgLevel::County if terms.central => Deadline::none(DeadlineRule::None, received),
        OrgLevel::Provincial | OrgLevel::Municipal | OrgLevel::County if terms.owner == holder => {
            from_approval(
                if terms.special {
                    DeadlineRule::Art524Special
                } else {
                    DeadlineRule::Art524General
                },
                holder,
                days(30, 60),
            )
        }
        OrgLevel::Provincial | OrgLevel::Municipal | OrgLevel::County => Deadline {
            rule: DeadlineRule::PolicyLocalOnward,
            basis: ClockBasis::Receipt,
            start: received,
            due: Some(cal.period_end(received, days(30, 60))),
        },
        OrgLevel::Supervisor | OrgLevel::Unspecified => {
            Deadline::none(DeadlineRule::None, received)
        }
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

/// The lots of one account (its live lots, `lot/<org>/<program>/…`) that are
/// overdue at `as_of_ms` (a block time). An org with no org below it has
/// nobody to pass funds to: never overdue.
pub fn overdue_in_account(
    org: &str,
    program_id: &str,
    lots: &[Lot],
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
    let terms = ProgramTerms::of(program, orgs);
    let today = day_of(as_of_ms);
    lots.iter()
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
