//! What the console's forms share: dates typed as day, month and year (the GOV.UK date input),
//! read with messages that say what to fix.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::pages::FieldProblem;

/// A date as typed in three boxes; all empty means "no date".
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq)]
pub struct DateFields {
    pub day: String,
    pub month: String,
    pub year: String,
}

impl DateFields {
    pub fn is_empty(&self) -> bool {
        [&self.day, &self.month, &self.year]
            .iter()
            .all(|s| s.trim().is_empty())
    }

    /// The date, if one was typed; `field` names the form field (its first box is
    /// `{field}-day`) and `label` how the message names it ("The from date").
    pub fn read(
        &self,
        field: &'static str,
        label: &str,
    ) -> Result<Option<NaiveDate>, FieldProblem> {
        if self.is_empty() {
            return Ok(None);
        }
        let problem = |message: String| FieldProblem { field, message };
        let missing: Vec<&str> = [
            ("day", &self.day),
            ("month", &self.month),
            ("year", &self.year),
        ]
        .into_iter()
        .filter(|(_, v)| v.trim().is_empty())
        .map(|(name, _)| name)
        .collect();
        if !missing.is_empty() {
            return Err(problem(format!(
                "{label} must include a {}",
                missing.join(" and a ")
            )));
        }
        let number = |s: &str| s.trim().parse::<u32>().ok();
        let (Some(d), Some(m), Some(y)) =
            (number(&self.day), number(&self.month), number(&self.year))
        else {
            return Err(problem(format!(
                "{label} must be a real date, in numbers, like 27 3 2026"
            )));
        };
        if self.year.trim().len() != 4 {
            return Err(problem(format!(
                "{label}: enter the year in full, like 2026"
            )));
        }
        let date = NaiveDate::from_ymd_opt(y as i32, m, d)
            .ok_or_else(|| problem(format!("{label} must be a real date")))?;
        crate::domain::dates::parse_day(&date.to_string())
            .map(Some)
            .map_err(|_| problem(format!("{label} must be between 2000 and 2099")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(d: &str, m: &str, y: &str) -> DateFields {
        DateFields {
            day: d.into(),
            month: m.into(),
            year: y.into(),
        }
    }

    #[test]
    fn a_date_is_read_from_three_boxes_with_messages_that_say_what_to_fix() {
        assert_eq!(fields("", "", "").read("from", "The date"), Ok(None));
        assert_eq!(
            fields("27", "3", "2026").read("from", "The date"),
            Ok(NaiveDate::from_ymd_opt(2026, 3, 27))
        );
        let missing = fields("27", "", "").read("from", "The date").unwrap_err();
        assert_eq!(missing.message, "The date must include a month and a year");
        assert_eq!(missing.field, "from");
        assert!(fields("31", "2", "2026").read("from", "The date").is_err());
        assert!(fields("1", "1", "26").read("from", "The date").is_err());
        assert!(fields("a", "1", "2026").read("from", "The date").is_err());
    }
}
