//! The ledger in finance's terms: Europe/London calendar days over UTC times, pounds for people,
//! and CSV cells that a spreadsheet cannot mistake for formulas.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::London;

super::named::named_enum! {
    /// What a ledger line is: money in (a payment) or money out (a refund).
    pub enum LineKind { Payment = "payment", Refund = "refund" }
}

/// One line of the ledger: a succeeded payment, or a succeeded refund (negative).
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerLine {
    /// When the money moved (the payment or refund succeeded), UTC.
    pub at: DateTime<Utc>,
    pub kind: LineKind,
    pub payment_id: String,
    pub refund_id: Option<String>,
    /// The line's own id (the refund's, or the payment's), for ordering and paging.
    pub line_id: String,
    pub request_ref: String,
    pub service: String,
    /// Pence; refunds are negative.
    pub amount: i64,
    pub description: String,
    pub provider: String,
    pub provider_reference: Option<String>,
}

/// The London calendar day an instant falls on (a payment at 23:30 UTC in summer is tomorrow's).
pub fn london_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&London).date_naive()
}

/// The UTC instants bounding London days `from` to `to`, both included: [start, end).
pub fn london_days(from: NaiveDate, to: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = |day: NaiveDate| {
        London
            .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"))
            // London's clocks change at 01:00 and 02:00, never at midnight.
            .earliest()
            .expect("midnight exists in London")
            .with_timezone(&Utc)
    };
    (midnight(from), midnight(to + Days::new(1)))
}

/// Whether a spreadsheet could take the cell for a formula: it starts with `= + - @`, a tab or a
/// carriage return, or with their full-width forms (`＝ ＋ － ＠`), after any leading white space
/// (spreadsheets trim it).
pub fn reads_as_formula(value: &str) -> bool {
    const STARTS: [char; 10] = [
        '=', '+', '-', '@', '\t', '\r', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
    ];
    value.starts_with(STARTS)
        || value
            .trim_start_matches(|c: char| c.is_whitespace())
            .starts_with(STARTS)
}

/// Pence as pounds with two decimals, e.g. `-1050` → `-10.50`.
pub fn pounds(pence: i64) -> String {
    let sign = if pence < 0 { "-" } else { "" };
    let abs = pence.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A text cell for RFC 4180 CSV: a cell that a spreadsheet could read as a formula gets a `'` in
/// front (see [`reads_as_formula`]); then quoted if it holds a comma, quote or line break.
pub fn csv_text(value: &str) -> String {
    let mut cell = String::with_capacity(value.len() + 2);
    push_csv_text(&mut cell, value);
    cell
}

/// A cell Counterfoil itself wrote (a number, a date, an id): quoted if needed, never altered.
pub fn csv_raw(value: &str) -> String {
    let mut cell = String::with_capacity(value.len() + 2);
    push_csv_raw(&mut cell, value, false);
    cell
}

/// [`csv_text`] written onto the end of `line` (an export writes a row without a string per cell).
pub fn push_csv_text(line: &mut String, value: &str) {
    push_csv_raw(line, value, reads_as_formula(value));
}

/// [`csv_raw`] written onto the end of `line`, with a `'` in front when `neutralise`.
fn push_csv_raw(line: &mut String, value: &str, neutralise: bool) {
    let quoted = value.contains([',', '"', '\n', '\r']);
    if quoted {
        line.push('"');
    }
    if neutralise {
        line.push('\'');
    }
    if quoted {
        for part in value.split_inclusive('"') {
            line.push_str(part);
            if part.ends_with('"') {
                line.push('"');
            }
        }
        line.push('"');
    } else {
        line.push_str(value);
    }
}

#[cfg(test)]
mod formula_tests {
    use super::*;

    #[test]
    fn formulas_behind_white_space_or_in_full_width_are_neutralised() {
        for cell in [
            "=1+1",
            " =1+1",
            "\u{a0}\t+cmd",
            "\n-2",
            "\u{FF1D}HYPERLINK(x)",
            "  \u{FF20}SUM(A1)",
        ] {
            assert!(
                csv_text(cell).trim_start_matches('"').starts_with('\''),
                "{cell:?}"
            );
        }
        assert_eq!(csv_text("Parking permit"), "Parking permit");
        assert_eq!(csv_text(" Parking"), " Parking");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn summer_evenings_belong_to_the_next_london_day() {
        assert_eq!(
            london_day(utc("2026-07-01T23:30:00Z")),
            NaiveDate::from_ymd_opt(2026, 7, 2).unwrap()
        );
        assert_eq!(
            london_day(utc("2026-07-01T22:59:59Z")),
            NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()
        );
        // In winter London is on UTC.
        assert_eq!(
            london_day(utc("2026-01-15T23:30:00Z")),
            NaiveDate::from_ymd_opt(2026, 1, 15).unwrap()
        );
    }

    #[test]
    fn day_bounds_follow_the_clock_changes() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        // 29 March 2026: clocks go forward at 01:00 GMT, so the day is 23 hours long.
        let (start, end) = london_days(day(2026, 3, 29), day(2026, 3, 29));
        assert_eq!(
            (start, end),
            (utc("2026-03-29T00:00:00Z"), utc("2026-03-29T23:00:00Z"))
        );
        // 25 October 2026: clocks go back, 25 hours.
        let (start, end) = london_days(day(2026, 10, 25), day(2026, 10, 25));
        assert_eq!(
            (start, end),
            (utc("2026-10-24T23:00:00Z"), utc("2026-10-26T00:00:00Z"))
        );
        let (start, end) = london_days(day(2026, 7, 1), day(2026, 7, 31));
        assert_eq!(
            (start, end),
            (utc("2026-06-30T23:00:00Z"), utc("2026-07-31T23:00:00Z"))
        );
    }

    #[test]
    fn pounds_and_pence() {
        assert_eq!(pounds(2500), "25.00");
        assert_eq!(pounds(-1050), "-10.50");
        assert_eq!(pounds(7), "0.07");
        assert_eq!(pounds(-7), "-0.07");
    }

    #[test]
    fn csv_cells_cannot_become_formulas() {
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_text("+44 1632"), "'+44 1632");
        assert_eq!(csv_text("-2+3"), "'-2+3");
        assert_eq!(csv_text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_text("\tx"), "'\tx");
        assert_eq!(csv_text("Parking, zone B"), "\"Parking, zone B\"");
        assert_eq!(csv_text("plain"), "plain");
        assert_eq!(csv_raw("-10.50"), "-10.50", "our own numbers stay numbers");
        assert_eq!(
            csv_text("say \"hi\"\nthen \"\""),
            "\"say \"\"hi\"\"\nthen \"\"\"\"\""
        );
        assert_eq!(csv_raw("\""), "\"\"\"\"");
    }
}
