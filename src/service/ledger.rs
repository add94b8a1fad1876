//! The finance ledger: one line per succeeded payment and per succeeded refund (negative), with
//! the service's fund code and cost centre, on Europe/London days; streamed a page at a time so a
//! year of takings costs no more memory than a day's.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use futures_util::stream::{self, Stream};
use serde::Serialize;

use super::{FieldIssue, ServiceError};
use crate::domain::ledger::{csv_raw, csv_text, london_day, london_days, pounds};
use crate::domain::FieldError;
use crate::store::{LedgerLine, LineKind, Store};

/// The finance codes of a configured service.
#[derive(Debug, Clone)]
pub struct FinanceCodes {
    pub fund_code: String,
    pub cost_centre: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

#[derive(Debug, Clone)]
pub struct LedgerQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub service: Option<String>,
    pub format: Format,
}

/// One ledger line as finance sees it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LedgerEntry {
    /// The Europe/London calendar day the money moved.
    pub date: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub payment_id: String,
    pub refund_id: Option<String>,
    pub request_ref: String,
    pub service: String,
    pub fund_code: String,
    pub cost_centre: String,
    pub amount_pence: i64,
    pub amount_pounds: String,
    pub provider: String,
    pub provider_reference: Option<String>,
    pub description: String,
    /// The exact time, UTC.
    pub at: String,
}

/// The CSV header, in the order of [`csv_line`]'s cells.
pub const CSV_HEADER: &str = "date,type,payment_id,refund_id,request_ref,service,fund_code,cost_centre,amount_pence,amount_pounds,provider,provider_reference,description,at\r\n";

/// One RFC 4180 line (CRLF-terminated). Free text is neutralised against formula injection.
pub fn csv_line(e: &LedgerEntry) -> String {
    let cells = [
        csv_raw(&e.date),
        csv_raw(&e.kind),
        csv_raw(&e.payment_id),
        csv_raw(e.refund_id.as_deref().unwrap_or("")),
        csv_text(&e.request_ref),
        csv_raw(&e.service),
        csv_text(&e.fund_code),
        csv_text(&e.cost_centre),
        csv_raw(&e.amount_pence.to_string()),
        csv_raw(&e.amount_pounds),
        csv_raw(&e.provider),
        csv_text(e.provider_reference.as_deref().unwrap_or("")),
        csv_text(&e.description),
        csv_raw(&e.at),
    ];
    let mut line = cells.join(",");
    line.push_str("\r\n");
    line
}

/// Totals for one London day, service and fund.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SummaryRow {
    pub date: String,
    pub service: String,
    pub fund_code: String,
    pub payments: u64,
    pub gross_pence: i64,
    pub refunds: u64,
    pub refunds_pence: i64,
    pub net_pence: i64,
}

const PAGE: u32 = 1000;

/// Where a page of ledger lines ends, for the next page's link: opaque, URL-safe.
fn encode_cursor(at: DateTime<Utc>, line_id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}|{line_id}",
        at.to_rfc3339_opts(SecondsFormat::Micros, true)
    ))
}

/// A cursor of [`encode_cursor`]; anything else is none (the first page).
fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, String)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, line_id) = text.split_once('|')?;
    let well_formed = (line_id.starts_with("pay_") || line_id.starts_with("rfd_"))
        && line_id.len() <= 64
        && line_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    Some((
        DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
        well_formed.then(|| line_id.to_owned())?,
    ))
}

/// Days a takings statement totals at once.
const SUMMARY_DAYS: usize = 31;

pub struct LedgerService {
    store: Arc<dyn Store>,
    services: BTreeMap<String, FinanceCodes>,
}

impl LedgerService {
    pub fn new(store: Arc<dyn Store>, services: BTreeMap<String, FinanceCodes>) -> Self {
        Self { store, services }
    }

    /// `from` and `to` (London dates, both included, required), optional `service`, and (when
    /// `with_format`) `format=json|csv`. Each bad parameter is named.
    pub fn parse_query(
        &self,
        params: &HashMap<String, String>,
        with_format: bool,
    ) -> Result<LedgerQuery, ServiceError> {
        let mut issues = Vec::new();
        let mut date =
            |name: &str| match params.get(name).map(|v| crate::domain::dates::parse_day(v)) {
                Some(Ok(d)) => Some(d),
                Some(Err(error)) => {
                    issues.push(FieldIssue::new(name, error));
                    None
                }
                None => {
                    issues.push(FieldIssue::new(
                        name,
                        FieldError::new("required", "is required"),
                    ));
                    None
                }
            };
        let (from, to) = (date("from"), date("to"));
        if let (Some(from), Some(to)) = (from, to) {
            if to < from {
                issues.push(FieldIssue::new(
                    "to",
                    FieldError::new("out_of_range", "must not be before from"),
                ));
            }
        }
        let service = params.get("service").cloned();
        if service
            .as_ref()
            .is_some_and(|s| !self.services.contains_key(s))
        {
            issues.push(FieldIssue::new(
                "service",
                FieldError::new(
                    "unknown_service",
                    "is not a service configured in Counterfoil",
                ),
            ));
        }
        let format = match params.get("format").map(String::as_str) {
            None | Some("json") => Format::Json,
            Some("csv") if with_format => Format::Csv,
            Some(_) => {
                issues.push(FieldIssue::new(
                    "format",
                    FieldError::new("invalid_value", "must be json or csv"),
                ));
                Format::Json
            }
        };
        let known: &[&str] = if with_format {
            &["from", "to", "service", "format"]
        } else {
            &["from", "to", "service"]
        };
        for name in params.keys().filter(|k| !known.contains(&k.as_str())) {
            issues.push(FieldIssue::new(
                name.clone(),
                FieldError::new("unknown_parameter", "is not a parameter of the ledger"),
            ));
        }
        match (from, to) {
            (Some(from), Some(to)) if issues.is_empty() => Ok(LedgerQuery {
                from,
                to,
                service,
                format,
            }),
            _ => {
                issues.sort_by(|a, b| a.field.cmp(&b.field));
                Err(ServiceError::Validation(issues))
            }
        }
    }

    /// Records a download of the ledger (an export) in the audit trail: who, which period, when.
    pub async fn record_export(
        &self,
        actor: &crate::domain::Actor,
        query: &LedgerQuery,
        at: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        Ok(self
            .store
            .append_audit(&crate::store::AuditEntry {
                at,
                actor_key_id: actor.id(),
                actor_label: actor.label(),
                action: "ledger.exported".into(),
                subject: format!("{}..{}", query.from, query.to),
                detail: serde_json::json!({
                    "from": query.from.to_string(),
                    "to": query.to.to_string(),
                    "service": query.service,
                    "format": if query.format == Format::Csv { "csv" } else { "json" },
                }),
            })
            .await?)
    }

    fn entry(&self, line: LedgerLine) -> LedgerEntry {
        let codes = self.services.get(&line.service);
        LedgerEntry {
            date: london_day(line.at).to_string(),
            amount_pounds: pounds(line.amount),
            fund_code: codes.map(|c| c.fund_code.clone()).unwrap_or_default(),
            cost_centre: codes.map(|c| c.cost_centre.clone()).unwrap_or_default(),
            at: line.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            kind: line.kind.as_str().to_owned(),
            payment_id: line.payment_id,
            refund_id: line.refund_id,
            request_ref: line.request_ref,
            service: line.service,
            amount_pence: line.amount,
            provider: line.provider,
            provider_reference: line.provider_reference,
            description: line.description,
        }
    }

    /// Up to `limit` of the period's lines, oldest first, after `cursor` (from an earlier page's
    /// answer), and the cursor of the page after it when there may be one.
    pub async fn page(
        &self,
        query: &LedgerQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<LedgerEntry>, Option<String>), ServiceError> {
        let (start, end) = london_days(query.from, query.to);
        let after = cursor.and_then(decode_cursor);
        let lines = self
            .store
            .ledger_page(start, end, query.service.as_deref(), after, limit)
            .await?;
        let next = (lines.len() as u32 == limit)
            .then(|| lines.last().map(|l| encode_cursor(l.at, &l.line_id)))
            .flatten();
        Ok((lines.into_iter().map(|l| self.entry(l)).collect(), next))
    }

    /// The period's lines, a page at a time, oldest first.
    pub fn pages(
        self: &Arc<Self>,
        query: &LedgerQuery,
    ) -> impl Stream<Item = Result<Vec<LedgerEntry>, ServiceError>> + 'static {
        let (start, end) = london_days(query.from, query.to);
        let service = query.service.clone();
        let this = self.clone();
        type Cursor = Option<(DateTime<Utc>, String)>;
        // The next page is read while this one is written out.
        let pages = stream::unfold(
            Some(None::<(DateTime<Utc>, String)>),
            move |cursor: Option<Cursor>| {
                let (this, service) = (this.clone(), service.clone());
                async move {
                    let after = cursor?;
                    match this
                        .store
                        .ledger_page(start, end, service.as_deref(), after, PAGE)
                        .await
                    {
                        Err(e) => Some((Err(e.into()), None)),
                        Ok(lines) if lines.is_empty() => None,
                        Ok(lines) => {
                            let next = (lines.len() as u32 == PAGE)
                                .then(|| lines.last().map(|l| (l.at, l.line_id.clone())));
                            let entries = lines.into_iter().map(|l| this.entry(l)).collect();
                            Some((Ok(entries), next))
                        }
                    }
                }
            },
        );
        super::read_ahead::read_ahead(pages, 2)
    }

    /// Per London day, service and fund: count and sum of payments and of refunds, and the net.
    pub async fn summary(
        self: &Arc<Self>,
        query: &LedgerQuery,
    ) -> Result<Vec<SummaryRow>, ServiceError> {
        let mut totals: BTreeMap<(String, String, String), SummaryRow> = BTreeMap::new();
        let days: Vec<NaiveDate> = query
            .from
            .iter_days()
            .take_while(|d| *d <= query.to)
            .collect();
        // The database counts and sums; a statement covers at most a month of days.
        for chunk in days.chunks(SUMMARY_DAYS) {
            let mut bounds: Vec<DateTime<Utc>> =
                chunk.iter().map(|day| london_days(*day, *day).0).collect();
            bounds.push(london_days(chunk[chunk.len() - 1], chunk[chunk.len() - 1]).1);
            let found = self
                .store
                .ledger_totals(&bounds, query.service.as_deref())
                .await?;
            for t in found {
                let Some(day) = chunk.get(t.day_index) else {
                    continue;
                };
                let row = self.summary_row(&mut totals, day.to_string(), &t.service);
                match t.kind {
                    LineKind::Payment => {
                        row.payments += t.lines as u64;
                        row.gross_pence += t.pence;
                        row.net_pence += t.pence;
                    }
                    LineKind::Refund => {
                        row.refunds += t.lines as u64;
                        row.refunds_pence += t.pence;
                        row.net_pence -= t.pence;
                    }
                }
            }
        }
        // Days whose payment records were removed after the retention period keep their totals.
        let kept = self
            .store
            .archived_totals(
                &query.from.to_string(),
                &query.to.to_string(),
                query.service.as_deref(),
            )
            .await?;
        for t in kept {
            let row = self.summary_row(&mut totals, t.day.clone(), &t.service);
            row.payments += t.payments as u64;
            row.gross_pence += t.gross_pence;
            row.refunds += t.refunds as u64;
            row.refunds_pence += t.refunds_pence;
            row.net_pence += t.gross_pence - t.refunds_pence;
        }
        Ok(totals.into_values().collect())
    }

    /// The summary's row for a day and service (under the service's fund), made when first met.
    fn summary_row<'a>(
        &self,
        totals: &'a mut BTreeMap<(String, String, String), SummaryRow>,
        date: String,
        service: &str,
    ) -> &'a mut SummaryRow {
        let fund_code = self
            .services
            .get(service)
            .map(|c| c.fund_code.clone())
            .unwrap_or_default();
        totals
            .entry((date.clone(), service.to_owned(), fund_code.clone()))
            .or_insert_with(|| SummaryRow {
                date,
                service: service.to_owned(),
                fund_code,
                payments: 0,
                gross_pence: 0,
                refunds: 0,
                refunds_pence: 0,
                net_pence: 0,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_anything_else_is_the_first_page() {
        let at = Utc::now();
        let (back_at, back_id) = decode_cursor(&encode_cursor(at, "rfd_abcdefgh")).unwrap();
        assert_eq!(back_id, "rfd_abcdefgh");
        assert_eq!(back_at.timestamp_micros(), at.timestamp_micros());
        for garbage in ["", "not-a-cursor", &encode_cursor(at, "x' OR 1=1 --")] {
            assert!(decode_cursor(garbage).is_none(), "{garbage}");
        }
    }
}
