//! Payment search: the form (every field optional, card numbers refused and never repeated), a
//! page of 50 newest first with keyset paging, and the CSV of every match.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::forms::{page_of, push_uk_csv_time, query_string, DateRange};
use super::pages::{html, html_with_status, refuse_card_numbers, FieldProblem};
use super::render::{layout, money, uk_time, with};
use super::session::Staff;
use super::{Console, ConsoleError};
use crate::domain::ledger::{london_day, london_days, push_csv_text};
use crate::domain::queries::PaymentQuery;
use crate::domain::staff::{parse_pounds, Permission};
use crate::domain::Actor;
use crate::domain::{Payment, PaymentId, PaymentStatus, RequestRef};
use crate::service::payments::listing::{decode_cursor, encode_cursor};

/// The payment search form, as typed (every field optional).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct SearchForm {
    reference: String,
    payment_id: String,
    provider_reference: String,
    amount: String,
    status: String,
    service: String,
    #[serde(flatten)]
    dates: DateRange,
    #[serde(skip_serializing)]
    cursor: String,
}

impl SearchForm {
    /// The form with any field that holds a card number emptied (so the page, its links and the
    /// audit trail never repeat it), and a problem for each such field.
    pub(super) fn without_card_numbers(mut self) -> (Self, Vec<FieldProblem>) {
        let mut problems = Vec::new();
        let fields = [
            ("reference", &mut self.reference),
            ("payment_id", &mut self.payment_id),
            ("provider_reference", &mut self.provider_reference),
            ("amount", &mut self.amount),
            ("status", &mut self.status),
            ("service", &mut self.service),
            ("cursor", &mut self.cursor),
        ];
        problems.extend(refuse_card_numbers(
            fields.into_iter().chain(self.dates.boxes_mut()),
        ));
        (self, problems)
    }

    /// The search as a query, or each field that cannot be read.
    fn parse(&self, console: &Console) -> Result<PaymentQuery, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let mut problem = |field, message: &str| {
            problems.push(FieldProblem {
                field,
                message: message.to_owned(),
            })
        };
        let mut query = PaymentQuery {
            limit: 50,
            ..PaymentQuery::default()
        };
        let given = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned);
        if let Some(r) = given(&self.reference) {
            match RequestRef::parse(&r) {
                Ok(r) => query.request_ref = Some(r.into_inner()),
                Err(_) => problem("reference", "Enter the CRM reference as the CRM shows it"),
            }
        }
        if let Some(id) = given(&self.payment_id) {
            match PaymentId::parse(&id) {
                Ok(id) => query.id = Some(id.to_string()),
                Err(_) => problem("payment_id", "Enter a payment id, which starts pay_"),
            }
        }
        query.provider_payment_id = given(&self.provider_reference);
        if let Some(amount) = given(&self.amount) {
            match parse_pounds(&amount) {
                Ok(pence) => query.amount = Some(pence),
                Err(e) => problem("amount", &e.message),
            }
        }
        query.status = self.status.parse().ok();
        query.service = given(&self.service).filter(|s| console.service_names.contains_key(s));
        let (from, to) = self.dates.read(&mut problems);
        query.created_from = from.map(|d| london_days(d, d).0);
        query.created_to = to.map(|d| london_days(d, d).1);
        if let Some(cursor) = given(&self.cursor) {
            query.before = decode_cursor(&cursor);
        }
        if problems.is_empty() {
            Ok(query)
        } else {
            Err(problems)
        }
    }
}

/// A payment in a list, for people.
fn payment_row(console: &Console, p: &Payment) -> Value {
    let (status, status_text_shown) = super::payment::payment_status_text(p);
    json!({
        "id": p.id.to_string(),
        "request_ref": p.request_ref,
        "service_name": console.service_name(&p.service),
        "amount": money(p.amount),
        "status": status,
        "status_text": status_text_shown,
        "created": uk_time(p.created_at),
    })
}

fn search_context(console: &Console, staff: &Staff, form: &SearchForm) -> Map<String, Value> {
    let services: Vec<Value> = console
        .service_names
        .iter()
        .map(|(code, s)| json!({"code": code, "name": s.name}))
        .collect();
    let statuses: Vec<&str> = PaymentStatus::ALL.iter().map(|s| s.as_str()).collect();
    let context = layout(&console.brand, Some(staff), "payments", "Payments");
    with(
        with(with(context, "q", form), "services", services),
        "statuses",
        statuses,
    )
}

/// Payment search: a page of 50, newest first, and a link to the next.
pub async fn payments(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Query<SearchForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ViewPayments)?;
    let (form, card_numbers) = form.into_inner().without_card_numbers();
    let context = search_context(&console, &staff, &form);
    let parsed = if card_numbers.is_empty() {
        form.parse(&console)
    } else {
        Err(card_numbers)
    };
    let query = match parsed {
        Ok(query) => query,
        Err(problems) => {
            let context = with(with(context, "errors", problems), "title", "Payments");
            return html_with_status(
                &console,
                "payments.html",
                context,
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let found = console
        .services
        .payments
        .search(&PaymentQuery {
            limit: query.limit + 1,
            ..query.clone()
        })
        .await?;
    let query_string = query_string(&form);
    let (found, next_page) = page_of(
        found,
        query.limit,
        "/console/payments",
        &query_string,
        |p| encode_cursor(p.created_at, &p.id),
    );
    let rows: Vec<Value> = found.iter().map(|p| payment_row(&console, p)).collect();
    let context = with(with(context, "payments", rows), "next_page", next_page);
    html(
        &console,
        "payments.html",
        with(context, "query_string", query_string),
    )
}

const PAYMENTS_CSV_HEADER: &str = "\u{feff}payment_id,crm_reference,service,fund_code,amount_pounds,amount_pence,status,provider,provider_reference,created_uk_time (Europe/London),finished_uk_time (Europe/London),refunded_pence,description\r\n";

fn payment_csv_line(console: &Console, p: &Payment, line: &mut String) {
    use std::fmt::Write;
    line.push_str(p.id.as_ref());
    line.push(',');
    push_csv_text(line, &p.request_ref);
    line.push(',');
    push_csv_text(line, &p.service);
    line.push(',');
    push_csv_text(line, &console.fund_code(&p.service));
    let _ = write!(
        line,
        ",{},{},{},{},",
        crate::domain::ledger::pounds(p.amount),
        p.amount,
        p.status.as_str(),
        p.provider.as_str()
    );
    push_csv_text(line, p.provider_payment_id.as_deref().unwrap_or(""));
    line.push(',');
    push_uk_csv_time(line, Some(p.created_at));
    line.push(',');
    push_uk_csv_time(line, p.finished_at);
    let _ = write!(line, ",{},", p.refunded_amount);
    push_csv_text(line, &p.description);
    line.push_str("\r\n");
}

/// Every payment matching `query`, newest first, a thousand at a time (keyset pages).
fn matching_pages(
    console: web::Data<Console>,
    query: PaymentQuery,
) -> impl futures_util::Stream<Item = Result<Vec<Payment>, ConsoleError>> + Send + 'static {
    let state = (
        console,
        PaymentQuery {
            limit: 1000,
            before: None,
            ..query
        },
        false,
    );
    futures_util::stream::unfold(state, |(console, query, done)| async move {
        if done {
            return None;
        }
        match console.services.payments.search(&query).await {
            Err(e) => Some((Err(ConsoleError::from(e)), (console, query, true))),
            Ok(page) => {
                let last = page.last().map(|p| (p.created_at, p.id.clone()));
                let finished = page.len() < query.limit as usize;
                let next = PaymentQuery {
                    before: last,
                    ..query
                };
                Some((Ok(page), (console, next, finished)))
            }
        }
    })
}

/// Every payment matching the search, as CSV, read and sent a page at a time (no cap).
pub async fn payments_csv(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Query<SearchForm>,
) -> Result<HttpResponse, ConsoleError> {
    use futures_util::StreamExt;
    staff.require(Permission::ViewPayments)?;
    let (form, card_numbers) = form.into_inner().without_card_numbers();
    if !card_numbers.is_empty() {
        return Err(ConsoleError::NotFound);
    }
    let query = form.parse(&console).map_err(|_| ConsoleError::NotFound)?;
    let filters: Vec<&str> = [
        ("reference", &form.reference),
        ("payment_id", &form.payment_id),
        ("provider_reference", &form.provider_reference),
        ("amount", &form.amount),
        ("status", &form.status),
        ("service", &form.service),
        ("from", &form.dates.from_year),
        ("to", &form.dates.to_year),
    ]
    .into_iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .map(|(k, _)| k)
    .collect();
    let actor = Actor::Person(staff.member.clone());
    console
        .services
        .audit
        .record(
            &actor,
            "payments.exported",
            "payments",
            json!({"filters": filters}),
        )
        .await?;
    let pages = matching_pages(console.clone(), query);
    // The database reads the next page while this one is written out and sent.
    let writer = console.clone();
    let rows = crate::service::read_ahead::read_ahead(pages, 2).map(move |page| {
        page.map(|page| {
            let mut text = String::with_capacity(page.len() * 160);
            for p in &page {
                payment_csv_line(&writer, p, &mut text);
            }
            web::Bytes::from(text)
        })
    });
    let head = futures_util::stream::once(async {
        Ok(web::Bytes::from_static(PAYMENTS_CSV_HEADER.as_bytes()))
    });
    let today = london_day(console.clock.now());
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"payments-{today}.csv\""),
        ))
        .streaming(head.chain(rows)))
}
