//! The refunds register: every refund, sent or waiting for or declined by a second person, with
//! who asked, who decided and why, filtered by state, service, people and dates, paged, and as
//! CSV (UK times, a byte-order mark for spreadsheets).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::forms::{decode_cursor, encode_cursor, page_of, query_string, uk_csv_time, DateRange};
use super::pages::{html_with_status, refuse_card_numbers, FieldProblem};
use super::payment::refund_row;
use super::render::{layout, with};
use super::{Console, ConsoleError, Staff};
use crate::domain::ledger::{csv_raw, csv_text, london_day, london_days, pounds};
use crate::domain::queries::RegisterQuery;
use crate::domain::refund::{RefundRecord, RefundState};
use crate::domain::staff::Permission;

/// The register's filters, as typed (every one optional).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RegisterForm {
    state: String,
    service: String,
    requested_by: String,
    decided_by: String,
    #[serde(flatten)]
    dates: DateRange,
    #[serde(skip_serializing)]
    cursor: String,
}

impl RegisterForm {
    /// The filters as a query, or each one that cannot be read (a card number is emptied).
    fn parse(&mut self, console: &Console) -> Result<RegisterQuery, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let fields = [
            ("requested_by", &mut self.requested_by),
            ("decided_by", &mut self.decided_by),
        ];
        problems.extend(refuse_card_numbers(
            fields.into_iter().chain(self.dates.boxes_mut()),
        ));
        let given = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned);
        let mut query = RegisterQuery {
            state: self.state.parse().ok(),
            service: given(&self.service).filter(|s| console.service_names.contains_key(s)),
            requested_by: given(&self.requested_by),
            decided_by: given(&self.decided_by),
            before: given(&self.cursor).and_then(|c| decode_cursor(&c)),
            limit: 50,
            ..RegisterQuery::default()
        };
        let (from, to) = self.dates.read(&mut problems);
        query.requested_from = from.map(|d| london_days(d, d).0);
        query.requested_to = to.map(|d| london_days(d, d).1);
        if problems.is_empty() {
            Ok(query)
        } else {
            Err(problems)
        }
    }
}

fn may_see_refunds(staff: &Staff) -> Result<(), ConsoleError> {
    if staff.member.may(Permission::ApproveRefund) || staff.member.may(Permission::RequestRefund) {
        Ok(())
    } else {
        staff.require(Permission::ViewTakings)
    }
}

/// The register page: 50 at a time, newest first.
pub async fn page(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Query<RegisterForm>,
) -> Result<HttpResponse, ConsoleError> {
    may_see_refunds(&staff)?;
    let mut form = form.into_inner();
    let parsed = form.parse(&console);
    let services: Vec<Value> = console
        .service_names
        .iter()
        .map(|(code, s)| json!({"code": code, "name": s.name}))
        .collect();
    let states: Vec<Value> = RefundState::ALL
        .iter()
        .map(|s| json!({"value": s.as_str(), "text": s.text()}))
        .collect();
    let context = layout(&console.brand, Some(&staff), "refunds", "Refunds");
    let context = with(with(context, "q", &form), "services", services);
    let context = with(context, "states", states);
    let query = match parsed {
        Ok(query) => query,
        Err(problems) => {
            return html_with_status(
                &console,
                "refunds.html",
                with(context, "errors", problems),
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    };
    let found = console
        .services
        .staff_refunds
        .register(&RegisterQuery {
            limit: query.limit + 1,
            ..query.clone()
        })
        .await?;
    let query_string = query_string(&form);
    let (found, next_page) = page_of(found, query.limit, "/console/refunds", &query_string, |r| {
        encode_cursor(r.requested_at, &r.id)
    });
    let rows: Vec<Value> = found.iter().map(|r| refund_row(&console, r)).collect();
    let context = with(with(context, "refunds", rows), "next_page", next_page);
    html_with_status(
        &console,
        "refunds.html",
        with(context, "query_string", query_string),
        actix_web::http::StatusCode::OK,
    )
}

const REGISTER_CSV_HEADER: &str = "\u{feff}refund_or_request_id,payment_id,crm_reference,service,state,amount_pounds,amount_pence,reason,requested_by,requested_uk_time (Europe/London),approved_or_declined_by,decided_uk_time (Europe/London),decline_reason,failure,sent_uk_time (Europe/London)\r\n";

fn csv_line(r: &RefundRecord) -> String {
    let time = uk_csv_time;
    let cells = [
        csv_raw(&r.id),
        csv_raw(r.payment_id.as_ref()),
        csv_text(&r.request_ref),
        csv_text(&r.service),
        r.state.as_str().to_owned(),
        pounds(r.amount),
        r.amount.to_string(),
        csv_text(&r.reason),
        csv_text(&r.requested_by_label),
        time(Some(r.requested_at)),
        csv_text(r.decided_by_label.as_deref().unwrap_or("")),
        time(r.decided_at),
        csv_text(r.decline_reason.as_deref().unwrap_or("")),
        csv_text(r.failure.as_deref().unwrap_or("")),
        time(r.sent_at),
    ];
    format!("{}\r\n", cells.join(","))
}

/// Every refund the filters match, as CSV, a page at a time (no cap).
pub async fn csv(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Query<RegisterForm>,
) -> Result<HttpResponse, ConsoleError> {
    may_see_refunds(&staff)?;
    let mut form = form.into_inner();
    let query = form.parse(&console).map_err(|_| ConsoleError::NotFound)?;
    let mut body = String::from(REGISTER_CSV_HEADER);
    let mut page = RegisterQuery {
        limit: 500,
        before: None,
        ..query
    };
    loop {
        let rows = console.services.staff_refunds.register(&page).await?;
        body.extend(rows.iter().map(csv_line));
        match rows.last() {
            Some(last) if rows.len() == page.limit as usize => {
                page.before = Some((last.requested_at, last.id.clone()));
            }
            _ => break,
        }
    }
    let today = london_day(console.clock.now());
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"refunds-{today}.csv\""),
        ))
        .body(body))
}
