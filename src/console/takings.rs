//! Takings: the ledger's summary per London day, service and fund for a period, one day's
//! payments and refunds, and the ledger downloads (CSV and JSON) that finance imports elsewhere.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::dashboard::summary_row;
use super::forms::{DateFields, DateRange};
use super::pages::{html, html_with_status, FieldProblem};
use super::render::{day_text, layout, money, uk_time, with};
use super::{Console, ConsoleError, Staff};
use crate::domain::card_guard::contains_card_number;
use crate::domain::ledger::london_day;
use crate::domain::staff::Permission;
use crate::service::ledger::{Format, LedgerQuery};
use crate::service::ServiceError;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PeriodForm {
    /// `YYYY-MM-DD`, as the page's own links carry it.
    from: String,
    to: String,
    /// As a person types it: day, month and year.
    #[serde(flatten)]
    dates: DateRange,
    service: String,
}

/// A day as the three boxes of a date input.
fn boxes(day: NaiveDate) -> Value {
    use chrono::Datelike;
    json!({"day": day.day().to_string(), "month": day.month().to_string(), "year": day.year().to_string()})
}

impl PeriodForm {
    /// The period (the last 7 London days when none is given), or what is wrong with it.
    fn parse(&self, console: &Console, format: Format) -> Result<LedgerQuery, Vec<FieldProblem>> {
        let today = london_day(console.clock.now());
        let mut problems = Vec::new();
        let mut day = |iso: &str, typed: DateFields, field: &'static str, default: NaiveDate| {
            if !typed.is_empty() {
                let label = if field == "from" {
                    "The from date"
                } else {
                    "The to date"
                };
                return match typed.read(field, label) {
                    Ok(day) => day,
                    Err(problem) => {
                        problems.push(problem);
                        None
                    }
                };
            }
            if iso.trim().is_empty() {
                return Some(default);
            }
            let parsed = crate::domain::dates::parse_day(iso.trim()).ok();
            if parsed.is_none() {
                problems.push(FieldProblem {
                    field,
                    message: format!("Enter the {field} date as a real date"),
                });
            }
            parsed
        };
        let from = day(&self.from, self.dates.from(), "from", today - Days::new(6));
        let to = day(&self.to, self.dates.to(), "to", today);
        if let (Some(f), Some(t)) = (from, to) {
            if t < f {
                problems.push(FieldProblem {
                    field: "to",
                    message: "The to date must be the same as or after the from date".into(),
                });
            }
        }
        let service = Some(self.service.clone()).filter(|s| console.service_names.contains_key(s));
        match (from, to) {
            (Some(from), Some(to)) if problems.is_empty() => Ok(LedgerQuery {
                from,
                to,
                service,
                format,
            }),
            _ => Err(problems),
        }
    }

    fn query_string(query: &LedgerQuery) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        out.append_pair("from", &query.from.to_string())
            .append_pair("to", &query.to.to_string());
        if let Some(service) = &query.service {
            out.append_pair("service", service);
        }
        format!("?{}", out.finish())
    }
}

/// Takings per London day, service and fund, with totals, for a period.
pub async fn summary(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Query<PeriodForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ViewTakings)?;
    let services: Vec<Value> = console
        .service_names
        .iter()
        .map(|(code, s)| json!({"code": code, "name": s.name}))
        .collect();
    let context = with(
        layout(&console.brand, Some(&staff), "takings", "Takings"),
        "services",
        services,
    );
    let query = match form.parse(&console, Format::Json) {
        Ok(query) => query,
        Err(problems) => {
            // What was typed goes back into the form, but never a card number.
            fn typed(text: &str) -> &str {
                if contains_card_number(text) {
                    ""
                } else {
                    text
                }
            }
            let q = json!({
                "from-day": typed(&form.dates.from_day), "from-month": typed(&form.dates.from_month), "from-year": typed(&form.dates.from_year),
                "to-day": typed(&form.dates.to_day), "to-month": typed(&form.dates.to_month), "to-year": typed(&form.dates.to_year),
                "service": typed(&form.service),
            });
            let context = with(with(context, "errors", problems), "q", q);
            return html_with_status(
                &console,
                "takings.html",
                context,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let rows = console.services.ledger.summary(&query).await?;
    let total = json!({
        "payments": rows.iter().map(|r| r.payments).sum::<u64>(),
        "gross": money(rows.iter().map(|r| r.gross_pence).sum()),
        "refunds_count": rows.iter().map(|r| r.refunds).sum::<u64>(),
        "refunds": money(rows.iter().map(|r| r.refunds_pence).sum()),
        "net": money(rows.iter().map(|r| r.net_pence).sum()),
    });
    let rows: Vec<Value> = rows
        .iter()
        .rev()
        .map(|r| summary_row(&console, r))
        .collect();
    let (from, to) = (boxes(query.from), boxes(query.to));
    let q = json!({
        "from-day": from["day"], "from-month": from["month"], "from-year": from["year"],
        "to-day": to["day"], "to-month": to["month"], "to-year": to["year"],
        "service": query.service,
    });
    let context = with(with(with(context, "rows", rows), "total", total), "q", q);
    html(
        &console,
        "takings.html",
        with(context, "query_string", PeriodForm::query_string(&query)),
    )
}

#[derive(Deserialize)]
pub struct DayQuery {
    service: Option<String>,
    /// Where the previous page of the day's lines ended.
    cursor: Option<String>,
}

/// Lines of a day shown on one page.
const DAY_PAGE: u32 = 100;

/// One London day's payments and refunds, as they count in takings.
pub async fn day(
    console: web::Data<Console>,
    staff: Staff,
    day: web::Path<String>,
    query: web::Query<DayQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ViewTakings)?;
    let date = crate::domain::dates::parse_day(&day).map_err(|_| ConsoleError::NotFound)?;
    let service = query
        .service
        .clone()
        .filter(|s| console.service_names.contains_key(s));
    let ledger_query = LedgerQuery {
        from: date,
        to: date,
        service: service.clone(),
        format: Format::Json,
    };
    let (entries, next) = console
        .services
        .ledger
        .page(&ledger_query, query.cursor.as_deref(), DAY_PAGE)
        .await?;
    let lines: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            let at = chrono::DateTime::parse_from_rfc3339(&e.at)
                .map(|t| uk_time(t.to_utc()))
                .unwrap_or(e.at.clone());
            json!({
                "time": at, "kind": if e.kind == "refund" { "Refund" } else { "Payment" },
                "payment_id": e.payment_id, "request_ref": e.request_ref,
                "service_name": console.service_name(&e.service), "fund_code": e.fund_code,
                "amount": money(e.amount_pence),
            })
        })
        .collect();
    let next_page = next.map(|cursor| {
        let mut link = url::form_urlencoded::Serializer::new(String::new());
        if let Some(service) = &service {
            link.append_pair("service", service);
        }
        link.append_pair("cursor", &cursor);
        format!("/console/takings/{date}?{}", link.finish())
    });
    let context = layout(
        &console.brand,
        Some(&staff),
        "takings",
        &format!("Takings for {}", day_text(date)),
    );
    let context = with(with(context, "lines", lines), "date", date.to_string());
    let context = with(context, "next_page", next_page);
    let context = with(
        with(context, "date_text", day_text(date)),
        "service",
        service,
    );
    html(&console, "takings_day.html", context)
}

/// The ledger for a period as CSV (a spreadsheet's import), streamed.
pub async fn ledger_csv(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Query<PeriodForm>,
) -> Result<HttpResponse, ConsoleError> {
    download(&console, &staff, &form, Format::Csv).await
}

/// The ledger for a period as JSON, streamed.
pub async fn ledger_json(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Query<PeriodForm>,
) -> Result<HttpResponse, ConsoleError> {
    download(&console, &staff, &form, Format::Json).await
}

async fn download(
    console: &Console,
    staff: &Staff,
    form: &PeriodForm,
    format: Format,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ViewTakings)?;
    let query = form
        .parse(console, format)
        .map_err(|_| ConsoleError::Service(ServiceError::Validation(Vec::new())))?;
    let actor = crate::domain::Actor::Person(staff.member.clone());
    console
        .services
        .ledger
        .record_export(&actor, &query, console.clock.now())
        .await?;
    let mut response = crate::edge::downloads::ledger_download(&console.services, &query);
    if format == Format::Json {
        let name = format!(
            "attachment; filename=\"ledger-{}-to-{}.json\"",
            query.from, query.to
        );
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&name) {
            response
                .headers_mut()
                .insert(actix_web::http::header::CONTENT_DISPOSITION, value);
        }
    }
    Ok(response)
}
