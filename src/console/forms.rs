//! What the console's forms share: dates typed as day, month and year (the GOV.UK date input),
//! read with messages that say what to fix; filters carried into links; UK times in CSVs.

use chrono::{DateTime, NaiveDate, Utc};
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

/// A "from" and a "to" date, each as three boxes (`from-day`, `from-month`, …), as a search
/// form carries them.
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct DateRange {
    #[serde(rename = "from-day")]
    pub from_day: String,
    #[serde(rename = "from-month")]
    pub from_month: String,
    #[serde(rename = "from-year")]
    pub from_year: String,
    #[serde(rename = "to-day")]
    pub to_day: String,
    #[serde(rename = "to-month")]
    pub to_month: String,
    #[serde(rename = "to-year")]
    pub to_year: String,
}

impl DateRange {
    pub fn from(&self) -> DateFields {
        DateFields {
            day: self.from_day.clone(),
            month: self.from_month.clone(),
            year: self.from_year.clone(),
        }
    }

    pub fn to(&self) -> DateFields {
        DateFields {
            day: self.to_day.clone(),
            month: self.to_month.clone(),
            year: self.to_year.clone(),
        }
    }

    /// Every box, named by the field its problems belong to.
    pub fn boxes_mut(&mut self) -> [(&'static str, &mut String); 6] {
        [
            ("from", &mut self.from_day),
            ("from", &mut self.from_month),
            ("from", &mut self.from_year),
            ("to", &mut self.to_day),
            ("to", &mut self.to_month),
            ("to", &mut self.to_year),
        ]
    }

    /// The two days, each if typed; a problem for each that cannot be read, and for a "to"
    /// before the "from".
    pub fn read(&self, problems: &mut Vec<FieldProblem>) -> (Option<NaiveDate>, Option<NaiveDate>) {
        let from = self.from().read("from", "The from date");
        let to = self.to().read("to", "The to date");
        if let (Ok(Some(f)), Ok(Some(t))) = (&from, &to) {
            if t < f {
                problems.push(FieldProblem {
                    field: "to",
                    message: "The to date must be the same as or after the from date".into(),
                });
            }
        }
        let mut keep = |day: Result<Option<NaiveDate>, FieldProblem>| match day {
            Ok(day) => day,
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        (keep(from), keep(to))
    }
}

/// A form's filters as a query string (`?…`, or empty): every field with a value.
pub fn query_string(form: &impl Serialize) -> String {
    let pairs = serde_json::to_value(form).expect("a form serialises");
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    if let serde_json::Value::Object(map) = pairs {
        for (k, v) in map {
            if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                out.append_pair(&k, v);
            }
        }
    }
    let text = out.finish();
    if text.is_empty() {
        text
    } else {
        format!("?{text}")
    }
}

/// The link to the page after this one: the same filters and the cursor.
fn next_page_link(path: &str, query_string: &str, cursor: &str) -> String {
    let joiner = if query_string.is_empty() { "?" } else { "&" };
    format!("{path}{query_string}{joiner}cursor={cursor}")
}

/// A page of at most `limit` rows out of `found` (read with one more than `limit`), and the link
/// to the next page when there is one (`cursor` says where a row's page ends).
pub fn page_of<T>(
    mut found: Vec<T>,
    limit: u32,
    path: &str,
    query_string: &str,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let next = (found.len() > limit as usize).then(|| {
        found.truncate(limit as usize);
        let last = found.last().expect("a full page");
        next_page_link(path, query_string, &cursor(last))
    });
    (found, next)
}

/// An instant as a CSV cell in UK time (the column's name says so), empty when there is none.
pub fn uk_csv_time(at: Option<DateTime<Utc>>) -> String {
    let mut cell = String::with_capacity(19);
    push_uk_csv_time(&mut cell, at);
    cell
}

/// [`uk_csv_time`] written onto the end of `line` (`YYYY-MM-DD HH:MM:SS`, UK time).
pub fn push_uk_csv_time(line: &mut String, at: Option<DateTime<Utc>>) {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    if let Some(t) = at {
        let t = t.with_timezone(&chrono_tz::Europe::London);
        let _ = write!(
            line,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
    }
}

/// Where a page ends: its last row's time and id, as an opaque link parameter.
pub(super) fn encode_cursor(at: DateTime<Utc>, id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}|{id}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    ))
}

/// The time and id of [`encode_cursor`]; `None` for anything it did not make.
pub(super) fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, String)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, id) = text.split_once('|')?;
    let at = DateTime::parse_from_rfc3339(at).ok()?;
    Some((at.with_timezone(&Utc), id.to_owned()))
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
