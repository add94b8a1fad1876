//! The dates and times Counterfoil accepts from a caller: a London day as `YYYY-MM-DD`, an
//! instant as RFC 3339, each between 2000-01-01 and 2099-12-31. Nothing a council asks about lies
//! outside, and bounding them keeps every later calculation (the day after, a period's end) in
//! range.

use chrono::{DateTime, NaiveDate, Utc};

use super::FieldError;

/// The first day a caller may name.
pub fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).expect("a real day")
}

/// The last day a caller may name.
pub fn last_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2099, 12, 31).expect("a real day")
}

fn out_of_range() -> FieldError {
    FieldError::new("out_of_range", "must be between 2000-01-01 and 2099-12-31")
}

/// A London calendar day, `YYYY-MM-DD`, within the bounds.
pub fn parse_day(text: &str) -> Result<NaiveDate, FieldError> {
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        FieldError::new(
            "invalid_format",
            "must be a date, YYYY-MM-DD (a Europe/London day)",
        )
    })?;
    (first_day()..=last_day())
        .contains(&day)
        .then_some(day)
        .ok_or_else(out_of_range)
}

/// An instant, RFC 3339 (e.g. `2026-11-23T09:00:00Z`), within the bounds.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, FieldError> {
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| {
            FieldError::new(
                "invalid_format",
                "must be an RFC 3339 date-time, e.g. 2026-11-23T09:00:00Z",
            )
        })?
        .with_timezone(&Utc);
    (first_day()..=last_day())
        .contains(&at.date_naive())
        .then_some(at)
        .ok_or_else(out_of_range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_instants_outside_the_bounds_are_refused_by_name() {
        assert!(parse_day("2026-03-29").is_ok());
        for far in ["+262142-12-31", "9999-12-31", "1999-12-31", "2100-01-01"] {
            assert_eq!(parse_day(far).unwrap_err().code, "out_of_range", "{far}");
        }
        assert_eq!(parse_day("2026-02-30").unwrap_err().code, "invalid_format");
        assert!(parse_instant("2026-11-23T09:00:00+01:00").is_ok());
        for far in ["9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z"] {
            assert_eq!(
                parse_instant(far).unwrap_err().code,
                "out_of_range",
                "{far}"
            );
        }
        assert!(parse_instant("+262142-12-31T00:00:00Z").is_err());
    }
}
