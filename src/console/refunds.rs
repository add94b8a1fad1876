//! Refund forms: a refund asked for from the payment page (pounds and pence as typed, a reason,
//! once per form), and the queue where a second person approves or declines the large ones.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::pages::{
    html_with_status, payment_context, FieldProblem, RefundFormState, CARD_NUMBER_REFUSED,
};
use super::render::{layout, money, uk_time, with};
use super::sign_in::see_other;
use super::{Console, ConsoleError, Staff};
use crate::domain::card_guard::contains_card_number;
use crate::domain::refund::{parse_reason, NewRefund};
use crate::domain::staff::{parse_pounds, Permission};
use crate::domain::{AmountPence, IdempotencyKey, PaymentId};
use crate::service::staff_refunds::StaffRefundOutcome;
use crate::service::ServiceError;

#[derive(Deserialize)]
pub struct RefundForm {
    csrf_token: String,
    form_token: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

/// Reads the form: an amount in pounds and pence and a reason, each refused with a message.
fn read(form: &RefundForm) -> Result<NewRefund, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let amount = if form.amount.trim().is_empty() {
        problems.push(FieldProblem {
            field: "amount",
            message: "Enter the amount to refund".into(),
        });
        None
    } else {
        match parse_pounds(&form.amount).map(AmountPence::parse) {
            Ok(Ok(amount)) => Some(amount),
            Ok(Err(_)) => {
                problems.push(FieldProblem {
                    field: "amount",
                    message: "Enter an amount of no more than £100,000".into(),
                });
                None
            }
            Err(e) => {
                problems.push(FieldProblem {
                    field: "amount",
                    message: e.message,
                });
                None
            }
        }
    };
    let reason = match form.reason.trim() {
        text if contains_card_number(text) => {
            problems.push(FieldProblem {
                field: "reason",
                message: CARD_NUMBER_REFUSED.to_owned(),
            });
            None
        }
        "" => {
            problems.push(FieldProblem {
                field: "reason",
                message: "Enter the reason for the refund".into(),
            });
            None
        }
        text => match parse_reason(text) {
            Ok(reason) => Some(reason),
            Err(e) => {
                problems.push(FieldProblem {
                    field: "reason",
                    message: format!("The reason {}", e.message),
                });
                None
            }
        },
    };
    match (amount, reason) {
        (Some(amount), Some(reason)) if problems.is_empty() => Ok(NewRefund { amount, reason }),
        _ => Err(problems),
    }
}

/// Asks for a refund. A form sent twice refunds once: its token is the refund's idempotency key.
pub async fn create(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
    form: web::Form<RefundForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    staff.require(Permission::RequestRefund)?;
    let payment_id = PaymentId::parse(&id).map_err(|_| ConsoleError::NotFound)?;
    let token = IdempotencyKey::parse(&form.form_token).map_err(|_| ConsoleError::Csrf)?;
    let refused = |problems: Vec<FieldProblem>| async {
        // What was typed goes back into the form, but never a card number.
        let typed = |text: &String| {
            if contains_card_number(text) {
                String::new()
            } else {
                text.clone()
            }
        };
        let state = RefundFormState {
            amount: typed(&form.amount),
            reason: typed(&form.reason),
            problems,
        };
        let context = payment_context(&console, &staff, &payment_id, state).await?;
        html_with_status(
            &console,
            "payment.html",
            context,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let new = match read(&form) {
        Ok(new) => new,
        Err(problems) => return refused(problems).await,
    };
    let outcome = console
        .services
        .staff_refunds
        .request(&staff.member, &payment_id, token, new)
        .await;
    let done = match outcome {
        Ok(StaffRefundOutcome::Sent(_)) => "sent",
        Ok(StaffRefundOutcome::AlreadySent) => "again",
        Ok(StaffRefundOutcome::Waiting(_)) => "waiting",
        Err(ServiceError::RefundExceedsCaptured { available }) => {
            let message = format!(
                "Enter an amount of no more than {}, what can still be refunded",
                money(available)
            );
            return refused(vec![FieldProblem {
                field: "amount",
                message,
            }])
            .await;
        }
        Err(ServiceError::NotRefundable) => {
            let message = "This payment cannot be refunded: it has not succeeded".to_owned();
            return refused(vec![FieldProblem {
                field: "amount",
                message,
            }])
            .await;
        }
        Err(e) => return Err(e.into()),
    };
    Ok(see_other(&format!(
        "/console/payments/{payment_id}?done={done}#main"
    )))
}

#[derive(Deserialize)]
pub struct DecisionForm {
    csrf_token: String,
}

/// The queue of refunds waiting for a second person.
pub async fn approvals(
    console: web::Data<Console>,
    staff: Staff,
) -> Result<HttpResponse, ConsoleError> {
    if !staff.member.may(Permission::ApproveRefund) {
        staff.require(Permission::RequestRefund)?;
    }
    queue_page(&console, &staff, None, StatusCode::OK).await
}

async fn queue_page(
    console: &Console,
    staff: &Staff,
    banner: Option<Value>,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let services = &console.services;
    let mut rows = Vec::new();
    for a in services.staff_refunds.waiting().await? {
        let request_ref = services
            .payments
            .get(&a.payment_id)
            .await
            .map(|p| p.request_ref)
            .unwrap_or_default();
        rows.push(json!({
            "id": a.id, "payment_id": a.payment_id.to_string(), "request_ref": request_ref,
            "amount": money(a.amount), "reason": a.reason, "requested_by": a.requested_by_label,
            "requested_at": uk_time(a.requested_at),
        }));
    }
    let context = layout(
        &console.brand,
        Some(staff),
        "approvals",
        "Refunds to approve",
    );
    let context = with(with(context, "approvals", rows), "banner", banner);
    let context = with(
        context,
        "may_approve",
        staff.member.may(Permission::ApproveRefund),
    );
    html_with_status(console, "approvals.html", context, status)
}

/// Approves a waiting refund: it is sent to the provider. The requester cannot approve their own.
pub async fn approve(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, ConsoleError> {
    decide(console, staff, id.into_inner(), form, true).await
}

/// Declines a waiting refund: nothing is refunded.
pub async fn decline(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, ConsoleError> {
    decide(console, staff, id.into_inner(), form, false).await
}

async fn decide(
    console: web::Data<Console>,
    staff: Staff,
    id: String,
    form: web::Form<DecisionForm>,
    approve: bool,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    staff.require(Permission::ApproveRefund)?;
    let refunds = &console.services.staff_refunds;
    let result = if approve {
        refunds.approve(&staff.member, &id).await.map(|_| ())
    } else {
        refunds.decline(&staff.member, &id).await
    };
    let (banner, status) = match result {
        Ok(()) if approve => (
            json!({"title": "Refund approved", "text": "The refund has been sent to the payment provider.", "success": true}),
            StatusCode::OK,
        ),
        Ok(()) => (
            json!({"title": "Refund declined", "text": "Nothing was refunded.", "success": true}),
            StatusCode::OK,
        ),
        Err(ServiceError::SecondPersonRequired) => (
            json!({"title": "You cannot approve your own refund", "text": "A second person with the refund approver role must approve it."}),
            StatusCode::FORBIDDEN,
        ),
        Err(ServiceError::AlreadyDecided) => (
            json!({"title": "Already decided", "text": "Someone else approved or declined this refund first."}),
            StatusCode::CONFLICT,
        ),
        Err(e) => return Err(e.into()),
    };
    queue_page(&console, &staff, Some(banner), status).await
}
