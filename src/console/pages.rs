//! The console's reading pages: the dashboard, payment search (and its CSV of every match), the
//! payment page, the accessibility statement, and the stylesheets and logo.

use actix_web::{web, HttpResponse};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::render::{day_text, layout, money, status_text, uk_time, with};
use super::session::{self, random_token, Staff};
use super::{Console, ConsoleError};
use crate::domain::card_guard::contains_card_number;
use crate::domain::ledger::{csv_raw, csv_text, london_day, london_days};
use crate::domain::staff::{parse_pounds, Permission};
use crate::domain::{Payment, PaymentId, PaymentStatus, RequestRef};
use crate::service::ledger::{Format, LedgerQuery};
use crate::service::payments::listing::{decode_cursor, encode_cursor};
use crate::store::PaymentQuery;

/// Renders a page as HTML.
pub(super) fn html(
    console: &Console,
    template: &str,
    context: Map<String, Value>,
) -> Result<HttpResponse, ConsoleError> {
    html_with_status(console, template, context, actix_web::http::StatusCode::OK)
}

pub(super) fn html_with_status(
    console: &Console,
    template: &str,
    context: Map<String, Value>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let body = console
        .templates
        .render(template, &Value::Object(context))
        .map_err(|e| {
            tracing::error!(template, error = %e, "console template failed");
            ConsoleError::Service(crate::service::ServiceError::Store(
                crate::store::StoreError::Other("template".into()),
            ))
        })?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// One refused form field: the input's id and what to do about it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(super) struct FieldProblem {
    pub field: &'static str,
    pub message: String,
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(include_str!("assets/console.css"))
}

/// The council's colour (checked at start-up to carry white text at WCAG AA contrast).
pub async fn brand_stylesheet(console: web::Data<Console>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(format!(
            ".header {{ background-color: {}; }}\n",
            console.brand.colour
        ))
}

pub async fn logo(console: web::Data<Console>) -> Result<HttpResponse, ConsoleError> {
    let (bytes, content_type) = console.brand.logo.clone().ok_or(ConsoleError::NotFound)?;
    Ok(HttpResponse::Ok().content_type(content_type).body(bytes))
}

pub async fn accessibility(
    console: web::Data<Console>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let staff = session::current(&req);
    let context = layout(
        &console.brand,
        staff.as_ref(),
        "accessibility",
        "Accessibility statement",
    );
    html(&console, "accessibility.html", context)
}

/// Today's and yesterday's takings by service and fund, and what needs a person.
pub async fn dashboard(
    console: web::Data<Console>,
    staff: Staff,
) -> Result<HttpResponse, ConsoleError> {
    let services = &console.services;
    let mut attention = Vec::new();
    if staff.member.may(Permission::ApproveRefund) || staff.member.may(Permission::RequestRefund) {
        let waiting = services.staff_refunds.waiting().await?.len();
        attention.push(json!({"label": "Refunds waiting for a second person", "count": waiting, "href": "/console/approvals"}));
    }
    if staff.member.may(Permission::ViewPayments) {
        let errors = services
            .payments
            .search(&PaymentQuery {
                status: Some(PaymentStatus::Error),
                limit: 100,
                ..PaymentQuery::default()
            })
            .await?
            .len();
        let count = if errors == 100 {
            "100 or more".to_owned()
        } else {
            errors.to_string()
        };
        attention.push(json!({"label": "Payments whose outcome the provider could not give", "count": count, "href": "/console/payments?status=error"}));
        let dead = services.notifications.list(Some("dead")).await?.len();
        attention
            .push(json!({"label": "CRM notifications that could not be delivered", "count": dead}));
    }
    let mut days = Vec::new();
    if staff.member.may(Permission::ViewTakings) {
        let today = london_day(console.clock.now());
        let yesterday = today - Days::new(1);
        let query = LedgerQuery {
            from: yesterday,
            to: today,
            service: None,
            format: Format::Json,
        };
        let rows = services.ledger.summary(&query).await?;
        for (label, day) in [("Today", today), ("Yesterday", yesterday)] {
            let rows: Vec<Value> = rows
                .iter()
                .filter(|r| r.date == day.to_string())
                .map(|r| summary_row(&console, r))
                .collect();
            days.push(json!({"label": label, "date": day.to_string(), "date_text": day_text(day), "rows": rows}));
        }
    }
    let context = layout(&console.brand, Some(&staff), "dashboard", "Dashboard");
    let context = with(with(context, "attention", attention), "days", days);
    html(&console, "dashboard.html", context)
}

/// A takings row for people.
pub(super) fn summary_row(console: &Console, r: &crate::service::ledger::SummaryRow) -> Value {
    let date = NaiveDate::parse_from_str(&r.date, "%Y-%m-%d").ok();
    json!({
        "date": r.date,
        "date_text": date.map(day_text).unwrap_or_else(|| r.date.clone()),
        "service_name": console.service_name(&r.service),
        "fund_code": r.fund_code,
        "payments": r.payments,
        "gross": money(r.gross_pence),
        "refunds_count": r.refunds,
        "refunds": money(r.refunds_pence),
        "net": money(r.net_pence),
    })
}

/// What a person is told when they type a card number: it is refused and never repeated.
pub(super) const CARD_NUMBER_REFUSED: &str =
    "Do not enter card numbers: the council never keeps card details. Remove the card number";

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
    from: String,
    to: String,
    #[serde(skip_serializing)]
    cursor: String,
}

impl SearchForm {
    /// The form with any field that holds a card number emptied (so the page, its links and the
    /// audit trail never repeat it), and a problem for each such field.
    pub(super) fn without_card_numbers(mut self) -> (Self, Vec<FieldProblem>) {
        let mut problems = Vec::new();
        for (field, value) in [
            ("reference", &mut self.reference),
            ("payment_id", &mut self.payment_id),
            ("provider_reference", &mut self.provider_reference),
            ("amount", &mut self.amount),
            ("status", &mut self.status),
            ("service", &mut self.service),
            ("from", &mut self.from),
            ("to", &mut self.to),
            ("cursor", &mut self.cursor),
        ] {
            if contains_card_number(value) {
                value.clear();
                problems.push(FieldProblem {
                    field,
                    message: CARD_NUMBER_REFUSED.to_owned(),
                });
            }
        }
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
        let day = |text: &str| given(text).map(|t| crate::domain::dates::parse_day(&t));
        let (from, to) = (day(&self.from), day(&self.to));
        match from {
            Some(Ok(d)) => query.created_from = Some(london_days(d, d).0),
            Some(Err(_)) => problem("from", "Enter the from date as a real date"),
            None => {}
        }
        match to {
            Some(Ok(d)) => query.created_to = Some(london_days(d, d).1),
            Some(Err(_)) => problem("to", "Enter the to date as a real date"),
            None => {}
        }
        if let (Some(Ok(f)), Some(Ok(t))) = (from, to) {
            if t < f {
                problem(
                    "to",
                    "The to date must be the same as or after the from date",
                );
            }
        }
        if let Some(cursor) = given(&self.cursor) {
            query.before = decode_cursor(&cursor);
        }
        if problems.is_empty() {
            Ok(query)
        } else {
            Err(problems)
        }
    }

    /// The filters as a query string (`?…`, or empty), without the page cursor.
    fn query_string(&self) -> String {
        let pairs = serde_json::to_value(self).expect("a form serialises");
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        if let Value::Object(map) = pairs {
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
}

/// A payment in a list, for people.
fn payment_row(console: &Console, p: &Payment) -> Value {
    json!({
        "id": p.id.to_string(),
        "request_ref": p.request_ref,
        "service_name": console.service_name(&p.service),
        "amount": money(p.amount),
        "status": p.status.as_str(),
        "status_text": status_text(p.status.as_str()),
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
    let mut found = console
        .services
        .payments
        .search(&PaymentQuery {
            limit: query.limit + 1,
            ..query.clone()
        })
        .await?;
    let query_string = form.query_string();
    let next_page = (found.len() > query.limit as usize).then(|| {
        found.truncate(query.limit as usize);
        let last = found.last().expect("a full page");
        let cursor = encode_cursor(last.created_at, &last.id);
        let joiner = if query_string.is_empty() { "?" } else { "&" };
        format!("/console/payments{query_string}{joiner}cursor={cursor}")
    });
    let rows: Vec<Value> = found.iter().map(|p| payment_row(&console, p)).collect();
    let context = with(with(context, "payments", rows), "next_page", next_page);
    html(
        &console,
        "payments.html",
        with(context, "query_string", query_string),
    )
}

const PAYMENTS_CSV_HEADER: &str = "payment_id,crm_reference,service,fund_code,amount_pounds,amount_pence,status,provider,provider_reference,created_uk_time (Europe/London),finished_uk_time (Europe/London),refunded_pence,description\r\n";

fn csv_time(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(|t| {
        t.with_timezone(&chrono_tz::Europe::London)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    })
    .unwrap_or_default()
}

fn payment_csv_line(console: &Console, p: &Payment) -> String {
    let cells = [
        csv_raw(p.id.as_ref()),
        csv_text(&p.request_ref),
        csv_text(&p.service),
        csv_text(&console.fund_code(&p.service)),
        crate::domain::ledger::pounds(p.amount),
        p.amount.to_string(),
        p.status.as_str().to_owned(),
        p.provider.as_str().to_owned(),
        csv_text(p.provider_payment_id.as_deref().unwrap_or("")),
        csv_time(Some(p.created_at)),
        csv_time(p.finished_at),
        p.refunded_amount.to_string(),
        csv_text(&p.description),
    ];
    format!("{}\r\n", cells.join(","))
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
        ("from", &form.from),
        ("to", &form.to),
    ]
    .into_iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .map(|(k, _)| k)
    .collect();
    let principal = crate::service::staff_refunds::principal_of(&staff.member);
    console
        .services
        .audit
        .record(
            &principal,
            "payments.exported",
            "payments",
            json!({"filters": filters}),
        )
        .await?;
    let state = (
        console.clone(),
        PaymentQuery {
            limit: 500,
            before: None,
            ..query
        },
        false,
    );
    let rows = futures_util::stream::unfold(state, |(console, query, done)| async move {
        if done {
            return None;
        }
        match console.services.payments.search(&query).await {
            Err(e) => Some((Err(ConsoleError::from(e)), (console, query, true))),
            Ok(page) => {
                let last = page.last().map(|p| (p.created_at, p.id.clone()));
                let text: String = page.iter().map(|p| payment_csv_line(&console, p)).collect();
                let finished = page.len() < query.limit as usize;
                let next = PaymentQuery {
                    before: last,
                    ..query
                };
                Some((Ok(web::Bytes::from(text)), (console, next, finished)))
            }
        }
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

#[derive(Deserialize)]
pub struct PaymentPageQuery {
    done: Option<String>,
}

/// The payment page: its details, refunds, timeline and CRM notifications, and the refund form.
pub async fn payment(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
    query: web::Query<PaymentPageQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ViewPayments)?;
    let id = PaymentId::parse(&id).map_err(|_| ConsoleError::NotFound)?;
    let banner = match query.done.as_deref() {
        Some("sent") => Some(
            json!({"title": "Refund sent", "text": "The refund has been sent to the payment provider.", "success": true}),
        ),
        Some("again") => Some(
            json!({"title": "Refund already sent", "text": "That form was sent before; its refund stands and nothing more was refunded.", "success": true}),
        ),
        Some("waiting") => Some(
            json!({"title": "Refund waiting for approval", "text": "The refund is over this service's limit. It will be sent once a second person approves it.", "success": true}),
        ),
        _ => None,
    };
    let context = payment_context(&console, &staff, &id, RefundFormState::default()).await?;
    html(&console, "payment.html", with(context, "banner", banner))
}

/// What the refund form shows: values typed and problems found (none on first view).
#[derive(Default)]
pub(super) struct RefundFormState {
    pub amount: String,
    pub reason: String,
    pub problems: Vec<FieldProblem>,
}

pub(super) async fn payment_context(
    console: &Console,
    staff: &Staff,
    id: &PaymentId,
    form: RefundFormState,
) -> Result<Map<String, Value>, ConsoleError> {
    let services = &console.services;
    let p = services.payments.get(id).await?;
    let events = services.payments.events(id).await?;
    let refunds = services.refunds.list(id).await?;
    let approvals = services.staff_refunds.approvals_for(id).await?;
    let notifications = services.notifications.for_payment(id).await?;
    let refundable = services.staff_refunds.refundable(id).await?;
    let may_refund = staff.member.may(Permission::RequestRefund);
    let refund_form = may_refund && refundable.available > 0;
    let refund_note = match (may_refund, refundable.succeeded, refundable.available) {
        (false, _, _) => None,
        (true, false, _) => Some("Only a succeeded payment can be refunded."),
        (true, true, 0) => Some("This payment has been refunded in full."),
        _ => None,
    };
    let title = format!("Payment {}", p.request_ref);
    let context = layout(&console.brand, Some(staff), "payments", &title);
    let details = json!({
        "id": p.id.to_string(), "request_ref": p.request_ref, "service_name": console.service_name(&p.service),
        "fund_code": console.fund_code(&p.service), "amount": money(p.amount), "refunded": money(p.refunded_amount),
        "description": p.description, "provider": p.provider.as_str(),
        "provider_reference": p.provider_payment_id.clone().unwrap_or_else(|| "Not known yet".into()),
        "status": p.status.as_str(), "status_text": status_text(p.status.as_str()),
        "created": uk_time(p.created_at), "finished": p.finished_at.map(uk_time).unwrap_or_else(|| "Not finished".into()),
    });
    let events: Vec<Value> = events.iter().map(|e| json!({
        "at": uk_time(e.at), "from": e.from.map(|f| status_text(f.as_str())).unwrap_or_default(),
        "to": status_text(e.to.as_str()), "source": e.source.as_str(),
    })).collect();
    let refunds: Vec<Value> = refunds.iter().map(|r| json!({
        "id": r.id, "amount": money(r.amount), "status": r.status.as_str(), "status_text": status_text(r.status.as_str()),
        "by": r.requested_by_label, "at": uk_time(r.created_at), "reason": r.reason,
    })).collect();
    let approvals: Vec<Value> = approvals.iter().map(|a| json!({
        "amount": money(a.amount), "status": a.status.as_str(), "status_text": status_text(a.status.as_str()),
        "requested_by": a.requested_by_label, "decided_by": a.decided_by_label.clone().unwrap_or_default(),
        "requested_at": uk_time(a.requested_at),
    })).collect();
    let notifications: Vec<Value> = notifications.iter().map(|n| json!({
        "event_type": n.event_type, "status": status_text(&n.status), "attempts": n.attempts,
        "created": uk_time(n.created_at), "delivered": n.delivered_at.map(uk_time).unwrap_or_default(),
    })).collect();
    let threshold_text =
        (refundable.threshold < refundable.available).then(|| money(refundable.threshold));
    let context = with(context, "p", details);
    let context = with(with(context, "events", events), "refunds", refunds);
    let context = with(
        with(context, "approvals", approvals),
        "notifications",
        notifications,
    );
    let context = with(
        with(context, "refund_form", refund_form),
        "refund_note",
        refund_note,
    );
    let context = with(
        context,
        "refundable",
        json!({"available_text": money(refundable.available), "threshold_text": threshold_text}),
    );
    let context = with(context, "form_token", random_token());
    let context = with(
        context,
        "form",
        json!({"amount": form.amount, "reason": form.reason}),
    );
    Ok(with(context, "errors", form.problems))
}
