//! Payouts in the console: the provider's payouts to the council's bank, latest first, each set
//! against the income batches that posted what it holds; a payout's page lists its items (each
//! matched to our payment or refund and its batch, or flagged); a person may read them now.

use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};

use super::income::ActForm;
use super::pages::html;
use super::render::{day_text, layout, money, uk_time, with};
use super::sign_in::see_other;
use super::{Console, ConsoleError, Staff};
use crate::domain::payout::PayoutLine;
use crate::domain::staff::Permission;
use crate::service::payouts::PayoutView;

const PAYOUTS_PAGE: u32 = 25;

fn payout_view(view: &PayoutView) -> Value {
    let (p, c) = (&view.payout, &view.check);
    json!({
        "id": p.id, "account": p.account, "amount": money(p.amount),
        "arrival": day_text(p.arrival_date), "status": p.status, "read": uk_time(p.read_at),
        "charges": money(c.charges), "refunds": money(c.refunds), "fees": money(c.fees),
        "other": money(c.other), "has_other": c.other != 0,
        "batched": money(c.batched), "expected": money(c.expected),
        "difference": money(c.difference), "needs_a_person": c.needs_a_person(),
        "unmatched": c.unmatched.len(), "unbatched": c.unbatched.len(),
        "batches": c.batches.iter().collect::<Vec<_>>(),
    })
}

fn line_view(line: &PayoutLine) -> Value {
    let item = &line.item;
    let what = match item.kind.as_str() {
        "charge" | "payment" => "Payment",
        "refund" => "Refund",
        "payout" => "The payout itself",
        _ => "Adjustment",
    };
    let state = match (line.is_takings(), line.is_matched(), &line.batch_reference) {
        (false, _, _) => ("none", "Not takings"),
        (true, false, _) => ("open", "Not ours: no payment or refund carries it"),
        (true, true, None) => ("running", "Not posted yet"),
        (true, true, Some(_)) => ("posted", "Posted"),
    };
    json!({
        "item_id": item.id, "what": what, "amount": money(item.amount),
        "fee": money(item.fee), "net": money(item.net),
        "payment_id": line.payment_id, "refund_id": line.refund_id,
        "provider_ref": item.provider_refund_id.clone().or(item.provider_payment_id.clone()),
        "batch_id": line.batch_id, "batch_reference": line.batch_reference, "state": state.0, "state_text": state.1,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PayoutsQuery {
    cursor: String,
    done: String,
}

/// The cursor of a payouts page: its last arrival day, account and id.
fn cursor_of(view: &PayoutView) -> String {
    let p = &view.payout;
    format!("{}~{}~{}", p.arrival_date, p.account, p.id)
}

fn read_cursor(cursor: &str) -> Option<(NaiveDate, String, String)> {
    let mut parts = cursor.splitn(3, '~');
    let day = NaiveDate::parse_from_str(parts.next()?, "%Y-%m-%d").ok()?;
    Some((day, parts.next()?.to_owned(), parts.next()?.to_owned()))
}

/// The payouts, latest arrival first.
pub async fn payouts(
    console: web::Data<Console>,
    staff: Staff,
    query: web::Query<PayoutsQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ViewTakings)?;
    let found = console
        .services
        .payouts
        .payouts(read_cursor(&query.cursor), PAYOUTS_PAGE + 1)
        .await?;
    let (found, next_page) =
        super::forms::page_of(found, PAYOUTS_PAGE, "/console/payouts", "", cursor_of);
    let rows: Vec<Value> = found.iter().map(payout_view).collect();
    let banner = match query.done.as_str() {
        "read" => Some(
            json!({"title": "Payouts read", "text": "Every account's recent payouts were read from its provider.", "success": true}),
        ),
        "unread" => Some(
            json!({"title": "Some payouts could not be read", "text": "A provider did not answer; the others were read. The service tries again every hour, and the log names the account.", "success": false}),
        ),
        _ => None,
    };
    let context = layout(&console.brand, Some(&staff), "payouts", "Payouts");
    let context = with(with(context, "payouts", rows), "next_page", next_page);
    let context = with(context, "banner", banner);
    let context = with(
        context,
        "may_read",
        staff.member.may(Permission::PostIncome),
    );
    html(&console, "payouts.html", context)
}

/// Reads every account's payouts now, rather than at the next hourly round.
pub async fn read_now(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Form<ActForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(form.token())?;
    staff.require(Permission::PostIncome)?;
    let reading = console.services.payouts.read_all().await?;
    let done = if reading.unread.is_empty() {
        "read"
    } else {
        "unread"
    };
    Ok(see_other(&format!("/console/payouts?done={done}#main")))
}

/// One payout: its figures against the batches, and every item in it.
pub async fn payout(
    console: web::Data<Console>,
    staff: Staff,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ViewTakings)?;
    let (account, id) = path.into_inner();
    let (view, lines) = console
        .services
        .payouts
        .payout(&account, &id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let title = format!("Payout {}", view.payout.id);
    let context = layout(&console.brand, Some(&staff), "payouts", &title);
    let context = with(context, "payout", payout_view(&view));
    let context = with(
        context,
        "lines",
        lines.iter().map(line_view).collect::<Vec<_>>(),
    );
    html(&console, "payout.html", context)
}
