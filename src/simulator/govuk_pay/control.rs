//! The `_control` API tests use to steer the simulator: faults, delays, refund outcomes, webhook release.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchControl {
    delay_ms: i64,
}

/// Makes search eventually consistent: new payments and refunds appear only after `delay_ms`.
pub(super) async fn set_search_delay(
    sim: web::Data<Simulator>,
    control: web::Json<SearchControl>,
) -> HttpResponse {
    sim.lock().search_delay = chrono::Duration::milliseconds(control.delay_ms);
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RefundControl {
    status: String,
}

/// The status new refunds get from now on (`submitted`, `success` or `error`).
pub(super) async fn set_refund_status(
    sim: web::Data<Simulator>,
    control: web::Json<RefundControl>,
) -> HttpResponse {
    sim.lock().refund_status = Some(control.into_inner().status);
    HttpResponse::NoContent().finish()
}

/// Moves an existing refund on, as the PSP would (e.g. `submitted` → `success`, `error` → `success`).
pub(super) async fn move_refund(
    sim: web::Data<Simulator>,
    refund_id: web::Path<String>,
    control: web::Json<RefundControl>,
) -> HttpResponse {
    let messages = {
        let mut state = sim.lock();
        let found = state.payments.values_mut().find_map(|p| {
            p.refunds
                .iter()
                .position(|r| r.id == *refund_id)
                .map(|i| (p, i))
        });
        let Some((payment, index)) = found else {
            return HttpResponse::NotFound().finish();
        };
        payment.refunds[index].status = control.into_inner().status;
        let succeeded = payment.refunds[index].status == "success";
        let payment = payment.clone();
        if succeeded {
            sim.webhook(&state, &payment, "card_payment_refunded")
        } else {
            Vec::new()
        }
    };
    sim.dispatch(messages);
    HttpResponse::NoContent().finish()
}

pub(super) async fn set_webhooks(
    sim: web::Data<Simulator>,
    control: web::Json<WebhookControl>,
) -> HttpResponse {
    let control = control.into_inner();
    sim.courier.control(
        control.mode.clone(),
        Duration::from_millis(control.delay_ms),
    );
    sim.lock().webhooks = control;
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Release {
    #[serde(default)]
    reverse: bool,
    /// Send each released message twice.
    #[serde(default)]
    duplicate: bool,
}

/// Sends every held webhook, in the order they were made or reversed.
pub(super) async fn release_webhooks(
    sim: web::Data<Simulator>,
    release: web::Json<Release>,
) -> HttpResponse {
    let count = sim.courier.release(release.reverse, release.duplicate);
    HttpResponse::Ok().json(json!({ "released": count }))
}

/// Every webhook the simulator has sent, with its attempts and last answer.
pub(super) async fn list_deliveries(sim: web::Data<Simulator>) -> HttpResponse {
    HttpResponse::Ok().json(sim.courier.report())
}

pub(super) async fn set_faults(
    sim: web::Data<Simulator>,
    faults: web::Json<Faults>,
) -> HttpResponse {
    sim.lock().faults = faults.into_inner();
    HttpResponse::NoContent().finish()
}

pub(super) fn control_view(p: &SimPayment) -> Value {
    json!({"payment_id": p.id, "reference": p.reference, "status": p.status, "code": p.code, "metadata": p.metadata})
}

/// The simulator's own view of one payment, whoever owns it, for tests.
pub(super) async fn control_get(sim: web::Data<Simulator>, id: web::Path<String>) -> HttpResponse {
    match sim.lock().payments.get(id.as_str()) {
        Some(p) => HttpResponse::Ok().json(control_view(p)),
        None => HttpResponse::NotFound().finish(),
    }
}

/// Every simulated payment, for tests (e.g. to show a double submit made only one).
pub(super) async fn control_list(sim: web::Data<Simulator>) -> HttpResponse {
    let state = sim.lock();
    let all: Vec<Value> = state.payments.values().map(control_view).collect();
    HttpResponse::Ok().json(json!({ "payments": all }))
}
