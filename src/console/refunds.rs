//! Refund forms: a refund asked for from the payment page (pounds and pence as typed, a reason,
//! once per form), and the queue where a second person approves or declines the large ones.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::pages::{html_with_status, FieldProblem, CARD_NUMBER_REFUSED};
use super::payment::{payment_context, RefundFormState};
use super::render::{layout, money, uk_time, with};
use super::sign_in::see_other;
use super::{Console, ConsoleError, Staff};
use crate::domain::approval::{ApprovalStatus, RefundApproval};
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
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
pub struct QueueQuery {
    done: Option<String>,
}

/// The queue of refunds waiting for a second person, and what became of the person's own.
pub async fn approvals(
    console: web::Data<Console>,
    staff: Staff,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, ConsoleError> {
    if !staff.member.may(Permission::ApproveRefund) {
        staff.require(Permission::RequestRefund)?;
    }
    let banner = match query.done.as_deref() {
        Some("approved") => Some(
            json!({"title": "Refund approved", "text": "The refund has been sent to the payment provider. It stays in the name of the person who asked for it, with yours as approver.", "success": true}),
        ),
        Some("declined") => Some(
            json!({"title": "Refund declined", "text": "Nothing was refunded. The person who asked for it sees your reason here and on the payment page.", "success": true}),
        ),
        _ => None,
    };
    queue_page(&console, &staff, banner, StatusCode::OK).await
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
        rows.push(approval_row(console, &a).await);
    }
    let mut own = Vec::new();
    for a in services.staff_refunds.requested_by(&staff.member).await? {
        let mut row = approval_row(console, &a).await;
        let outcome = match (a.status, &a.decline_reason, &a.last_failure) {
            (ApprovalStatus::Declined, reason, _) => format!(
                "Declined by {}: {}",
                a.decided_by_label.clone().unwrap_or_default(),
                reason.clone().unwrap_or_default()
            ),
            (ApprovalStatus::Approved, _, _) => format!(
                "Approved by {} and sent",
                a.decided_by_label.clone().unwrap_or_default()
            ),
            (ApprovalStatus::Waiting, _, Some(code)) => {
                format!("Waiting again: the provider refused the last attempt ({code})")
            }
            (ApprovalStatus::Waiting, _, None) => "Waiting for a refund approver".to_owned(),
        };
        row["outcome"] = outcome.into();
        row["decided_at"] = a.decided_at.map(uk_time).unwrap_or_default().into();
        own.push(row);
    }
    let context = layout(
        &console.brand,
        Some(staff),
        "approvals",
        "Refunds to approve",
    );
    let context = with(with(context, "approvals", rows), "banner", banner);
    let context = with(context, "own", own);
    let context = with(
        context,
        "may_approve",
        staff.member.may(Permission::ApproveRefund),
    );
    html_with_status(console, "approvals.html", context, status)
}

async fn approval_row(console: &Console, a: &RefundApproval) -> Value {
    let request_ref = console
        .services
        .payments
        .get(&a.payment_id)
        .await
        .map(|p| p.request_ref)
        .unwrap_or_default();
    json!({
        "id": a.id, "payment_id": a.payment_id.to_string(), "request_ref": request_ref,
        "amount": money(a.amount), "reason": a.reason, "requested_by": a.requested_by_label,
        "requested_at": uk_time(a.requested_at), "status": a.status.as_str(),
        "last_failure": a.last_failure,
    })
}

/// Approves a waiting refund: it is sent to the provider. The requester cannot approve their own.
pub async fn approve(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    staff.require(Permission::ApproveRefund)?;
    let result = console
        .services
        .staff_refunds
        .approve(&staff.member, &id)
        .await;
    match result {
        Ok(_) => Ok(see_other("/console/approvals?done=approved#main")),
        Err(e) => refused(&console, &staff, e).await,
    }
}

/// Asks the approver to confirm a decline and say why.
pub async fn confirm_decline(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ApproveRefund)?;
    decline_page(&console, &staff, &id, "", Vec::new(), StatusCode::OK).await
}

async fn decline_page(
    console: &Console,
    staff: &Staff,
    id: &str,
    reason: &str,
    problems: Vec<FieldProblem>,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let approval = console.services.staff_refunds.approval(id).await?;
    if approval.status != ApprovalStatus::Waiting {
        return refused(console, staff, ServiceError::AlreadyDecided).await;
    }
    let row = approval_row(console, &approval).await;
    let context = layout(
        &console.brand,
        Some(staff),
        "approvals",
        "Decline this refund",
    );
    let context = with(with(context, "a", row), "reason", reason);
    html_with_status(
        console,
        "decline.html",
        with(context, "errors", problems),
        status,
    )
}

/// Declines a waiting refund, with the reason the requester will see: nothing is refunded.
pub async fn decline(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    staff.require(Permission::ApproveRefund)?;
    let reason = form.reason.trim();
    let problem = if reason.is_empty() {
        Some("Enter why you are declining this refund".to_owned())
    } else if contains_card_number(reason) {
        Some(CARD_NUMBER_REFUSED.to_owned())
    } else {
        parse_reason(reason)
            .err()
            .map(|e| format!("The reason {}", e.message))
    };
    if let Some(message) = problem {
        let typed = if contains_card_number(reason) {
            ""
        } else {
            reason
        };
        let problems = vec![FieldProblem {
            field: "reason",
            message,
        }];
        return decline_page(
            &console,
            &staff,
            &id,
            typed,
            problems,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let result = console
        .services
        .staff_refunds
        .decline(&staff.member, &id, reason)
        .await;
    match result {
        Ok(()) => Ok(see_other("/console/approvals?done=declined#main")),
        Err(e) => refused(&console, &staff, e).await,
    }
}

/// A decision that could not be made, on the queue's page (nothing changed, so no redirect).
async fn refused(
    console: &Console,
    staff: &Staff,
    error: ServiceError,
) -> Result<HttpResponse, ConsoleError> {
    let (banner, status) = match error {
        ServiceError::SecondPersonRequired => (
            json!({"title": "You cannot approve your own refund", "text": "A second person with the refund approver role must approve or decline it."}),
            StatusCode::FORBIDDEN,
        ),
        ServiceError::AlreadyDecided => (
            json!({"title": "Already decided", "text": "Someone else approved or declined this refund first. Check the payment page for what happened."}),
            StatusCode::CONFLICT,
        ),
        ServiceError::RefundExceedsCaptured { available } => (
            json!({"title": "This refund no longer fits", "text": format!("Only {} can still be refunded of this payment. Nothing was refunded; decline it and ask again for less.", money(available))}),
            StatusCode::CONFLICT,
        ),
        ServiceError::NotRefundable => (
            json!({"title": "This payment cannot be refunded", "text": "It has not succeeded. Nothing was refunded; decline the request."}),
            StatusCode::CONFLICT,
        ),
        ServiceError::ProviderRejected { .. } | ServiceError::ProviderUnavailable { .. } => (
            json!({"title": "The provider did not make the refund", "text": "Nothing was refunded. The request is waiting again: approve it to try once more, or decline it."}),
            StatusCode::BAD_GATEWAY,
        ),
        e => return Err(e.into()),
    };
    queue_page(console, staff, Some(banner), status).await
}
