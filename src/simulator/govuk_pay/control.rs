//! The `_control` API tests use to steer the simulator: faults, delays, refund outcomes, webhook release.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SeedControl {
    /// How many payments to add.
    count: u32,
    /// Their creation times, spread evenly over [from, to).
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// Each payment's id is this prefix and its number in hex written with the letters a-p (so no
    /// id holds a run of digits), padded to GOV.UK Pay's 26 characters.
    id_prefix: String,
    amount: i64,
}

/// Adds `count` finished, succeeded payments to the calling account at once (for benchmarks of
/// a period's worth of records: a million creates through the API would take hours).
pub(super) async fn seed(
    sim: web::Data<Simulator>,
    req: actix_web::HttpRequest,
    control: web::Json<SeedControl>,
) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let control = control.into_inner();
    let width = 26usize.saturating_sub(control.id_prefix.len());
    let span = (control.to - control.from)
        .num_microseconds()
        .unwrap_or(0)
        .max(0);
    let mut state = sim.lock();
    for i in 0..control.count {
        let created = control.from
            + chrono::Duration::microseconds(span * i64::from(i) / i64::from(control.count.max(1)));
        state.insert(SimPayment {
            id: format!("{}{}", control.id_prefix, in_letters(i, width)),
            owner: owner.clone(),
            amount: control.amount,
            reference: format!("SEED-{i}"),
            description: "Seeded payment".into(),
            return_url: "https://council.example.gov.uk/done".into(),
            email: None,
            metadata: Map::new(),
            status: "success",
            code: None,
            created,
            refunds: Vec::new(),
            history: vec![("created", None, created), ("success", None, created)],
            card_details: None,
            settled: None,
        });
    }
    HttpResponse::NoContent().finish()
}

/// `n` in hex with the letters a-p for 0-f, padded with `a` to `width`.
fn in_letters(n: u32, width: usize) -> String {
    format!("{n:0width$x}")
        .chars()
        .map(|c| match c.to_digit(16) {
            Some(d) => char::from(b'a' + d as u8),
            None => c,
        })
        .collect()
}

/// Stripe's standard fee for a UK card (1.5% to the nearest penny, + 20p), as GOV.UK Pay reports
/// it for accounts on its Stripe-backed service.
pub(super) fn stripe_fee(amount: i64) -> i64 {
    (amount * 15 + 500) / 1000 + 20
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SettleControl {
    /// The day the payout reaches the bank.
    date: chrono::NaiveDate,
}

/// Pays out every succeeded payment and refund not yet paid out, on `date`: from now on they carry
/// `settlement_summary.settled_date` (and a payment its `fee` and `net_amount`), as on an account
/// of GOV.UK Pay's Stripe-backed service.
pub(super) async fn settle(
    sim: web::Data<Simulator>,
    control: web::Json<SettleControl>,
) -> HttpResponse {
    let mut state = sim.lock();
    for payment in state.payments.values_mut() {
        if payment.status == "success" && payment.settled.is_none() {
            payment.settled = Some(control.date);
        }
        for refund in &mut payment.refunds {
            if refund.status == "success" && refund.settled.is_none() {
                refund.settled = Some(control.date);
            }
        }
    }
    HttpResponse::NoContent().finish()
}
