//! The simulated refunds API: create, get, list and search a payment's refunds, in GOV.UK Pay's shapes.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;

pub(super) fn refund_view(sim: &Simulator, payment: &SimPayment, refund: &SimRefund) -> Value {
    let href = format!("{}/v1/payments/{}", sim.base_url, payment.id);
    let mut view = json!({
        "refund_id": refund.id,
        "payment_id": payment.id,
        "amount": refund.amount,
        "status": refund.status,
        "created_date": refund.created.to_rfc3339_opts(SecondsFormat::Millis, true),
        "_links": {
            "self": {"href": format!("{href}/refunds/{}", refund.id), "method": "GET"},
            "payment": {"href": href, "method": "GET"}
        }
    });
    if let Some(day) = refund.settled {
        view["settlement_summary"] = json!({"settled_date": day.to_string()});
    }
    view
}

#[derive(Deserialize)]
pub(super) struct RefundRequest {
    amount: Option<i64>,
    refund_amount_available: Option<i64>,
}

pub(super) async fn create_refund(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<RefundRequest>,
) -> HttpResponse {
    use actix_web::http::StatusCode as S;
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let (response, messages) = {
        let mut state = sim.lock();
        let new_status = state
            .refund_status
            .clone()
            .unwrap_or_else(|| "success".into());
        if state.faults.refund_refusals > 0 {
            state.faults.refund_refusals -= 1;
            return error(
                S::BAD_REQUEST,
                "P0941",
                "Card payment service has been disabled for this account",
                None,
            );
        }
        let Some(payment) = state.owned_mut(&id, &owner) else {
            return error(S::NOT_FOUND, "P0600", "Not found", None);
        };
        let Some(amount) = body.amount else {
            return error(
                S::BAD_REQUEST,
                "P0601",
                "Missing mandatory attribute: amount",
                Some("amount"),
            );
        };
        if payment.status != "success" {
            return error(
                S::BAD_REQUEST,
                "P0603",
                "The payment is not available for refund. Payment refund status: unavailable",
                None,
            );
        }
        let available = payment.refund_available();
        if body.refund_amount_available.is_some_and(|a| a != available) {
            return error(
                S::PRECONDITION_FAILED,
                "P0604",
                "Refund amount available mismatch.",
                None,
            );
        }
        if !(1..=available).contains(&amount) {
            return error(S::BAD_REQUEST, "P0602", "Invalid attribute value: amount. Must be less than or equal to the amount available", Some("amount"));
        }
        let refund = SimRefund {
            id: new_payment_id(),
            amount,
            status: new_status,
            created: Utc::now(),
            settled: None,
        };
        payment.refunds.push(refund.clone());
        let payment = payment.clone();
        let messages = if refund.status == "success" {
            sim.webhook(&state, &payment, "card_payment_refunded")
        } else {
            Vec::new()
        };
        (
            HttpResponse::Accepted().json(refund_view(&sim, &payment, &refund)),
            messages,
        )
    };
    sim.dispatch(messages);
    response
}

pub(super) async fn get_refund(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let (id, refund_id) = path.into_inner();
    let state = sim.lock();
    let found = state
        .owned(&id, &owner)
        .and_then(|p| p.refunds.iter().find(|r| r.id == refund_id).map(|r| (p, r)));
    match found {
        Some((payment, refund)) => HttpResponse::Ok().json(refund_view(&sim, payment, refund)),
        None => error(
            actix_web::http::StatusCode::NOT_FOUND,
            "P0700",
            "Not found",
            None,
        ),
    }
}

pub(super) async fn list_refunds(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let state = sim.lock();
    let Some(payment) = state.owned(&id, &owner) else {
        return error(
            actix_web::http::StatusCode::NOT_FOUND,
            "P0800",
            "Not found",
            None,
        );
    };
    let refunds: Vec<Value> = payment
        .refunds
        .iter()
        .map(|r| refund_view(&sim, payment, r))
        .collect();
    HttpResponse::Ok().json(json!({
        "payment_id": payment.id,
        "_links": {"self": {"href": format!("{}/v1/payments/{}/refunds", sim.base_url, payment.id), "method": "GET"}},
        "_embedded": {"refunds": refunds}
    }))
}

#[derive(Deserialize)]
pub(super) struct RefundSearchParams {
    from_date: Option<String>,
    to_date: Option<String>,
    page: Option<String>,
    display_size: Option<String>,
}

pub(super) async fn search_refunds(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    params: web::Query<RefundSearchParams>,
) -> HttpResponse {
    use actix_web::http::StatusCode as S;
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let window = match search_window(
        &params.from_date,
        &params.to_date,
        &params.page,
        &params.display_size,
        "P1101",
    ) {
        Ok(window) => window,
        Err(refusal) => return *refusal,
    };
    let SearchWindow {
        from,
        to,
        page,
        size,
    } = window;
    let state = sim.lock();
    let now = Utc::now();
    let mut all: Vec<(&SimPayment, &SimRefund)> = state
        .payments
        .values()
        .filter(|p| p.owner == owner)
        .flat_map(|p| p.refunds.iter().map(move |r| (p, r)))
        .filter(|(_, r)| from.is_none_or(|f| r.created >= f) && to.is_none_or(|t| r.created < t))
        .filter(|(_, r)| now - r.created >= state.search_delay)
        .collect();
    all.sort_by_key(|(_, r)| std::cmp::Reverse(r.created));
    let total = all.len();
    let results: Vec<Value> = all
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|(p, r)| refund_view(&sim, p, r))
        .collect();
    if page > 1 && results.is_empty() {
        return error(S::NOT_FOUND, "P1100", "Page not found", None);
    }
    HttpResponse::Ok()
        .json(json!({"total": total, "count": results.len(), "page": page, "results": results}))
}
