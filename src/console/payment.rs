//! The payment page: its details and what has been given back, every refund as it stands (who
//! asked, who approved or declined and why, what the provider said), the timeline, the CRM
//! notifications, and the refund form.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::pages::{html, FieldProblem};
use super::render::{layout, money, status_text, uk_time, with};
use super::session::{random_token, Staff};
use super::{Console, ConsoleError};
use crate::domain::queries::RegisterQuery;
use crate::domain::refund::{refunded_part, RefundRecord, RefundState};
use crate::domain::staff::Permission;
use crate::domain::{Payment, PaymentId, PaymentStatus};

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
            json!({"title": "Refund waiting for approval", "text": "With what you have already refunded of this payment, it is over this service's limit for one person. Nothing has been refunded yet: it will be sent once a second person approves it.", "success": true}),
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

/// A payment's status as people read it: a succeeded payment given back in part or in full
/// says so.
pub(super) fn payment_status_text(p: &Payment) -> (String, String) {
    match (p.status, refunded_part(p.amount, p.refunded_amount)) {
        (PaymentStatus::Succeeded, Some(part)) => ("refunded".to_owned(), part.to_owned()),
        _ => (p.status.as_str().to_owned(), status_text(p.status.as_str())),
    }
}

/// A refund as the payment page and the register show it.
pub(super) fn refund_row(console: &Console, r: &RefundRecord) -> Value {
    let decided = match r.state {
        RefundState::Waiting => "Not yet".to_owned(),
        _ => r
            .decided_by_label
            .clone()
            .unwrap_or_else(|| "Not needed".into()),
    };
    let outcome = match (r.state, &r.failure) {
        (RefundState::Declined, _) => {
            format!("Declined: {}", r.decline_reason.clone().unwrap_or_default())
        }
        (RefundState::Waiting, Some(code)) => {
            format!("The provider refused the last attempt ({code}); approve to try again")
        }
        (RefundState::Failed, code) => format!(
            "The provider did not refund it{}",
            code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
        ),
        (RefundState::Pending, _) => "Sent; the provider has not confirmed it yet".to_owned(),
        (RefundState::Succeeded, _) => "Refunded by the provider".to_owned(),
        (RefundState::Waiting, None) => "Waiting for a refund approver".to_owned(),
    };
    json!({
        "id": r.id, "payment_id": r.payment_id.to_string(), "request_ref": r.request_ref,
        "service_name": console.service_name(&r.service),
        "amount": money(r.amount), "state": r.state.as_str(), "state_text": r.state.text(),
        "reason": r.reason, "requested_by": r.requested_by_label, "requested_at": uk_time(r.requested_at),
        "decided_by": decided, "decided_at": r.decided_at.map(uk_time).unwrap_or_default(),
        "outcome": outcome, "sent_at": r.sent_at.map(uk_time).unwrap_or_default(),
    })
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
    // Asks the provider about any refund still open before showing them.
    services.refunds.list(id).await?;
    let records = services
        .staff_refunds
        .register(&RegisterQuery {
            payment_id: Some(id.clone()),
            limit: 500,
            ..RegisterQuery::default()
        })
        .await?;
    let notifications = services.notifications.for_payment(id).await?;
    let refundable = services.staff_refunds.refundable(id).await?;
    let may_refund = staff.member.may(Permission::RequestRefund);
    let refund_form = may_refund && refundable.available > 0;
    let refund_note = match (refundable.succeeded, refundable.available) {
        (false, _) => Some("Only a succeeded payment can be refunded."),
        (true, 0) if p.refunded_amount >= p.amount => {
            Some("This payment has been refunded in full.")
        }
        (true, 0) => Some(
            "Nothing more can be refunded for now: refunds waiting for approval or not yet \
             confirmed by the provider cover the rest.",
        ),
        _ => None,
    };
    let title = format!("Payment {}", p.request_ref);
    let context = layout(&console.brand, Some(staff), "payments", &title);
    let (status, status_text_shown) = payment_status_text(&p);
    let details = json!({
        "id": p.id.to_string(), "request_ref": p.request_ref, "service_name": console.service_name(&p.service),
        "fund_code": console.fund_code(&p.service), "amount": money(p.amount), "refunded": money(p.refunded_amount),
        "description": p.description, "provider": p.provider.as_str(),
        "provider_reference": p.provider_payment_id.clone().unwrap_or_else(|| "Not known yet".into()),
        "status": status, "status_text": status_text_shown,
        "created": uk_time(p.created_at), "finished": p.finished_at.map(uk_time).unwrap_or_else(|| "Not finished".into()),
    });
    let events: Vec<Value> = events.iter().map(|e| json!({
        "at": uk_time(e.at), "from": e.from.map(|f| status_text(f.as_str())).unwrap_or_default(),
        "to": status_text(e.to.as_str()), "source": e.source.as_str(),
    })).collect();
    let mut refunds: Vec<Value> = records.iter().map(|r| refund_row(console, r)).collect();
    refunds.reverse();
    let notifications: Vec<Value> = notifications.iter().map(|n| json!({
        "event_type": n.event_type, "status": status_text(n.status.as_str()), "attempts": n.attempts,
        "created": uk_time(n.created_at), "delivered": n.delivered_at.map(uk_time).unwrap_or_default(),
    })).collect();
    let threshold_text =
        (refundable.threshold < refundable.available).then(|| money(refundable.threshold));
    let context = with(context, "p", details);
    let context = with(with(context, "events", events), "refunds", refunds);
    let context = with(context, "notifications", notifications);
    let context = with(
        with(context, "refund_form", refund_form),
        "refund_note",
        refund_note.filter(|_| may_refund),
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
