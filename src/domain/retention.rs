//! Retention: when personal data is pseudonymised, and when whole payment records may go
//! (the end of the UK financial year, 31 March, plus the years finance must keep them).

use std::collections::BTreeMap;

/// What a pseudonymised personal field holds instead.
pub const ERASED: &str = "[erased]";

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use super::ledger::{london_day, london_days};

/// Personal fields of payments that finished before this instant are pseudonymised.
pub fn personal_data_cutoff(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now - Duration::days(i64::from(days))
}

/// The last day of the financial year a London day falls in (UK: 1 April to 31 March).
pub fn financial_year_end(day: NaiveDate) -> NaiveDate {
    let year = if day.month() <= 3 {
        day.year()
    } else {
        day.year() + 1
    };
    NaiveDate::from_ymd_opt(year, 3, 31).expect("31 March exists")
}

/// Records dated before the returned instant may be removed today: everything in a financial
/// year that ended more than `years` years ago, counted in whole years from its 31 March. A
/// payment of 15 May 2019 (year ending 31 March 2020) with 6 years goes from 1 April 2026.
pub fn removal_cutoff(now: DateTime<Utc>, years: u32) -> DateTime<Utc> {
    let today = london_day(now);
    // The most recent 31 March that has fully passed.
    let last_year_end = if (today.month(), today.day()) > (3, 31) {
        today.year()
    } else {
        today.year() - 1
    };
    let kept_from =
        NaiveDate::from_ymd_opt(last_year_end - years as i32, 4, 1).expect("1 April exists");
    london_days(kept_from, kept_from).0
}

/// One movement of money: when (UTC), for which service, how many pence (refunds negative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub at: DateTime<Utc>,
    pub service: String,
    pub amount: i64,
}

/// Totals per London day and service, as kept once the records are removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayTotals {
    pub payments: i64,
    pub gross_pence: i64,
    pub refunds: i64,
    pub refunds_pence: i64,
}

pub fn daily_totals(movements: &[Movement]) -> BTreeMap<(NaiveDate, String), DayTotals> {
    let mut totals: BTreeMap<(NaiveDate, String), DayTotals> = BTreeMap::new();
    for m in movements {
        let day = totals
            .entry((london_day(m.at), m.service.clone()))
            .or_default();
        if m.amount < 0 {
            day.refunds += 1;
            day.refunds_pence -= m.amount;
        } else {
            day.payments += 1;
            day.gross_pence += m.amount;
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn financial_years_end_on_31_march() {
        assert_eq!(financial_year_end(day("2019-05-15")), day("2020-03-31"));
        assert_eq!(financial_year_end(day("2020-03-31")), day("2020-03-31"));
        assert_eq!(financial_year_end(day("2020-04-01")), day("2021-03-31"));
    }

    #[test]
    fn records_go_six_whole_years_after_their_year_ends() {
        // On 31 March 2026 (London) the year ending 31 March 2020 is not yet six years gone.
        assert_eq!(
            removal_cutoff(utc("2026-03-31T12:00:00Z"), 6),
            utc("2019-03-31T23:00:00Z") // 1 April 2019, 00:00 London (BST)
        );
        // From 1 April 2026 it is: everything before 1 April 2020 may go.
        assert_eq!(
            removal_cutoff(utc("2026-03-31T23:30:00Z"), 6),
            utc("2020-03-31T23:00:00Z")
        );
        // In winter the boundary is London midnight in GMT.
        assert_eq!(
            removal_cutoff(utc("2026-12-01T00:00:00Z"), 6),
            utc("2020-03-31T23:00:00Z")
        );
        assert_eq!(
            removal_cutoff(utc("2026-04-01T00:00:00Z"), 0),
            utc("2026-03-31T23:00:00Z")
        );
    }

    #[test]
    fn a_payment_is_kept_until_its_year_plus_six_has_passed() {
        // 15 May 2019 belongs to the year ending 31 March 2020: kept on 31 March 2026, gone after.
        let paid = utc("2019-05-15T10:00:00Z");
        assert!(paid >= removal_cutoff(utc("2026-03-31T22:59:59Z"), 6));
        assert!(paid < removal_cutoff(utc("2026-03-31T23:00:00Z"), 6));
    }

    #[test]
    fn totals_are_per_london_day_and_service() {
        let m = |at: &str, amount| Movement {
            at: utc(at),
            service: "parking".into(),
            amount,
        };
        let totals = daily_totals(&[
            m("2019-07-01T22:30:00Z", 1000), // 23:30 BST: 1 July
            m("2019-07-01T23:30:00Z", 500),  // 00:30 BST: 2 July
            m("2019-07-02T09:00:00Z", -200),
        ]);
        assert_eq!(
            totals[&(day("2019-07-01"), "parking".into())],
            DayTotals {
                payments: 1,
                gross_pence: 1000,
                refunds: 0,
                refunds_pence: 0
            }
        );
        assert_eq!(
            totals[&(day("2019-07-02"), "parking".into())],
            DayTotals {
                payments: 1,
                gross_pence: 500,
                refunds: 1,
                refunds_pence: 200
            }
        );
    }
}
