//! Calendar days in China Standard Time, the holiday calendar and the budget
//! approvals recorded on chain: everything a Budget Law period is counted
//! with. Pure: the block timestamp is the only clock.
//!
//! Periods follow the Civil Code: the day of the event is not counted
//! (art. 201), the period ends at the end of its last day (art. 203), and a
//! last day that is a day off (a weekend not worked, or an official holiday)
//! moves to the next working day (art. 203).

use crate::DAY_MS;
use fiscus_proto::pb::types::{BudgetApproval, ConsortiumConfig, HolidayCalendar};
use std::collections::{BTreeMap, BTreeSet};

/// China Standard Time is UTC+8, with no daylight saving.
const CST_OFFSET_MS: i64 = 8 * 3_600_000;
/// Days the contract applies where the law sets none (policy, not law).
pub const DEFAULT_EMERGENCY_DAYS: u32 = 10;
pub const DEFAULT_ACKNOWLEDGE_DAYS: u32 = 10;
/// A run of days off longer than this is bad data, not a holiday.
const MAX_DAYS_OFF_IN_A_ROW: i64 = 31;

/// A calendar day in CST, counted from 1970-01-01.
pub type Day = i64;

/// The CST day a block timestamp falls on.
pub fn day_of(ms: i64) -> Day {
    (ms + CST_OFFSET_MS).div_euclid(DAY_MS)
}

/// The last millisecond of a CST day: a period ending on `day` is kept by
/// anything at or before it.
pub fn end_of_day_ms(day: Day) -> i64 {
    (day + 1) * DAY_MS - CST_OFFSET_MS - 1
}

/// The first millisecond of a CST day.
pub fn start_of_day_ms(day: Day) -> i64 {
    day * DAY_MS - CST_OFFSET_MS
}

/// A day as stored in a record (`int32`): block times are bounded far
/// inside ±5.8 million years, so this never saturates in practice.
pub fn day_number(day: Day) -> i32 {
    i32::try_from(day).unwrap_or(if day < 0 { i32::MIN } else { i32::MAX })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> Day {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day number.
pub fn civil_from_days(z: Day) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The fiscal (= calendar) year a block timestamp falls in, in CST.
pub fn fiscal_year_of(ms: i64) -> i64 {
    civil_from_days(day_of(ms)).0
}

/// Parses "YYYY-MM-DD" strictly (a real date, years 1949..=9999).
pub fn parse_date(s: &str) -> Option<Day> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1949..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let day = days_from_civil(i64::from(y), m, d);
    // A day past the month's end (e.g. 02-30) does not round-trip.
    (civil_from_days(day) == (i64::from(y), m, d)).then_some(day)
}

/// Formats a day as "YYYY-MM-DD".
pub fn format_date(day: Day) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Monday is 0; 1970-01-01 was a Thursday.
fn weekday(day: Day) -> i64 {
    (day + 3).rem_euclid(7)
}

/// The calendar and approvals of one consortium configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// (fiscal year, org) → the day its people's congress approved the budget.
    approvals: BTreeMap<(u32, String), Day>,
    holidays: BTreeSet<Day>,
    workdays: BTreeSet<Day>,
    pub emergency_days: u32,
    pub acknowledge_days: u32,
}

impl Default for Calendar {
    /// No approvals, no holidays (weekends only), the default policy days.
    fn default() -> Self {
        Self {
            approvals: BTreeMap::new(),
            holidays: BTreeSet::new(),
            workdays: BTreeSet::new(),
            emergency_days: DEFAULT_EMERGENCY_DAYS,
            acknowledge_days: DEFAULT_ACKNOWLEDGE_DAYS,
        }
    }
}

impl Calendar {
    /// From the chain's configuration. Dates were checked when governance
    /// recorded them; one that does not parse is skipped, never guessed.
    pub fn from_config(c: &ConsortiumConfig) -> Self {
        let mut cal = Self::default();
        for a in &c.budget_approvals {
            cal = cal.with_approval(a);
        }
        for h in &c.holiday_calendars {
            cal = cal.with_holidays(h);
        }
        if let Some(p) = &c.deadline_policy {
            if p.emergency_days > 0 {
                cal.emergency_days = p.emergency_days;
            }
            if p.acknowledge_days > 0 {
                cal.acknowledge_days = p.acknowledge_days;
            }
        }
        cal
    }

    /// Adds an approval (builders and tests).
    pub fn with_approval(mut self, a: &BudgetApproval) -> Self {
        if let Some(day) = parse_date(&a.approved_on) {
            self.approvals
                .insert((a.fiscal_year, a.org_code.clone()), day);
        }
        self
    }

    /// Adds a year's holidays and adjusted working days (builders and tests).
    pub fn with_holidays(mut self, h: &HolidayCalendar) -> Self {
        self.holidays
            .extend(h.holidays.iter().filter_map(|d| parse_date(d)));
        self.workdays
            .extend(h.workdays.iter().filter_map(|d| parse_date(d)));
        self
    }

    /// The day `org`'s people's congress approved the `year` budget, if recorded.
    pub fn approval(&self, year: u32, org: &str) -> Option<Day> {
        self.approvals.get(&(year, org.to_owned())).copied()
    }

    pub fn is_working_day(&self, day: Day) -> bool {
        if self.workdays.contains(&day) {
            return true;
        }
        weekday(day) < 5 && !self.holidays.contains(&day)
    }

    /// The last day of a period of `days` days counted from the day after
    /// `start` (Civil Code art. 201), moved to the next working day when it
    /// falls on a day off (art. 203).
    pub fn period_end(&self, start: Day, days: u32) -> Day {
        let mut last = start + i64::from(days);
        for _ in 0..MAX_DAYS_OFF_IN_A_ROW {
            if self.is_working_day(last) {
                break;
            }
            last += 1;
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_impossible_dates_are_refused() {
        for s in ["1970-01-02", "2026-10-01", "2028-02-29", "2000-02-29"] {
            assert_eq!(format_date(parse_date(s).unwrap()), s);
        }
        for s in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-01",
            "26-01-01",
            "2026/01/01",
        ] {
            assert_eq!(parse_date(s), None, "{s}");
        }
        assert_eq!(parse_date("1900-01-01"), None, "before 1949");
    }

    #[test]
    fn a_cst_day_starts_at_16_00_utc_the_day_before() {
        // 2026-01-01T00:00+08:00 = 2025-12-31T16:00Z = 1767196800000 ms.
        let midnight = 1_767_196_800_000;
        assert_eq!(format_date(day_of(midnight)), "2026-01-01");
        assert_eq!(format_date(day_of(midnight - 1)), "2025-12-31");
        assert_eq!(start_of_day_ms(day_of(midnight)), midnight);
        assert_eq!(end_of_day_ms(day_of(midnight)), midnight + DAY_MS - 1);
        assert_eq!(fiscal_year_of(midnight - 1), 2025);
    }

    #[test]
    fn a_period_ending_on_a_weekend_moves_to_monday() {
        let cal = Calendar::default();
        // 2026-03-12 is a Thursday; +30 days is Saturday 2026-04-11.
        let start = parse_date("2026-03-12").unwrap();
        assert_eq!(format_date(cal.period_end(start, 30)), "2026-04-13");
        // +29 days is Friday 2026-04-10: a working day, kept.
        assert_eq!(format_date(cal.period_end(start, 29)), "2026-04-10");
    }

    #[test]
    fn a_period_ending_in_the_national_day_holiday_moves_past_it() {
        let cal = Calendar::default().with_holidays(&HolidayCalendar {
            year: 2026,
            holidays: (1..=7).map(|d| format!("2026-10-{d:02}")).collect(),
            workdays: vec!["2026-09-20".into(), "2026-10-10".into()],
        });
        let start = parse_date("2026-09-01").unwrap();
        // +30 days = 2026-10-01, a holiday through 10-07: ends on Thursday 10-08.
        assert_eq!(format_date(cal.period_end(start, 30)), "2026-10-08");
        // 2026-10-10 is a Saturday worked (调休): a period ending on it stays.
        let start = parse_date("2026-09-10").unwrap();
        assert_eq!(format_date(cal.period_end(start, 30)), "2026-10-10");
    }
}
