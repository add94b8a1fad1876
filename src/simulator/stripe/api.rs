//! The simulated Stripe API: Checkout Sessions and refunds, form-encoded in, Stripe's JSON and errors out.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;

/// Stripe's error body.
pub(super) fn error(
    status: StatusCode,
    kind: &str,
    code: &str,
    message: &str,
    param: Option<&str>,
) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "error": {"type": kind, "code": code, "message": message, "param": param,
                  "doc_url": format!("https://stripe.com/docs/error-codes/{code}")}
    }))
}

/// Stripe's answer to a missing or unknown key.
pub(super) fn unauthorised() -> HttpResponse {
    error(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        "api_key_invalid",
        "Invalid API Key provided.",
        None,
    )
}

pub(super) fn invalid(code: &str, message: &str, param: &str) -> HttpResponse {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        code,
        message,
        Some(param),
    )
}

pub(super) fn form_map(body: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Keys `prefix[name]` of a form, as a map of `name` → value.
pub(super) fn nested(form: &BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, String> {
    form.iter()
        .filter_map(|(k, v)| {
            let inner = k
                .strip_prefix(prefix)?
                .strip_prefix('[')?
                .strip_suffix(']')?;
            Some((inner.to_owned(), v.clone()))
        })
        .collect()
}

pub(super) async fn create_session(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let form = form_map(&body);
    let now = Utc::now().timestamp();
    let SessionRequest {
        amount,
        name,
        success_url,
        expires_at,
    } = match session_request(&form, now) {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    let sim2 = sim.clone();
    let key_owner = owner.clone();
    let response = sim.idempotent(
        &req,
        &key_owner,
        "/v1/checkout/sessions",
        &body,
        move || {
            let mut state = sim2.lock();
            let id = sim2.next_id(&mut state, "cs");
            let session = SimSession {
                id: id.clone(),
                owner,
                amount,
                name,
                cancel_url: form
                    .get("cancel_url")
                    .cloned()
                    .unwrap_or_else(|| success_url.clone()),
                success_url,
                client_reference_id: form.get("client_reference_id").cloned(),
                metadata: nested(&form, "metadata"),
                intent_metadata: nested(&form, "payment_intent_data[metadata]"),
                status: "open",
                payment_status: "unpaid",
                intent: None,
                intent_status: "requires_payment_method",
                created: now,
                expires_at,
            };
            let answer = sim2.session_json(&session, false);
            state.sessions.insert(id, session);
            (200, answer)
        },
    );
    let lose = {
        let mut state = sim.lock();
        let lose = state.control.lose_create_answers > 0;
        if lose {
            state.control.lose_create_answers -= 1;
        }
        lose
    };
    if lose {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "simulated_lost_answer",
            "An error occurred with our connection to Stripe.",
            None,
        );
    }
    response
}

pub(super) fn wants_intent(req: &HttpRequest) -> bool {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "expand[]" && (v == "payment_intent" || v == "data.payment_intent"))
}

/// Updating a session: only its metadata (as Stripe allows).
pub(super) async fn update_session(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let form = form_map(&body);
    let mut state = sim.lock();
    let Some(session) = state
        .sessions
        .get_mut(id.as_str())
        .filter(|s| s.owner == owner)
    else {
        return error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            &format!("No such checkout.session: '{id}'"),
            Some("session"),
        );
    };
    session.metadata.extend(nested(&form, "metadata"));
    let answer = sim.session_json(session, false);
    HttpResponse::Ok().json(answer)
}

pub(super) async fn get_session(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let (answer, events) = {
        let mut state = sim.lock();
        let events = expire_if_due(&sim, &mut state, &id);
        match state.sessions.get(id.as_str()).filter(|s| s.owner == owner) {
            Some(s) => (Some(sim.session_json(s, wants_intent(&req))), events),
            None => (None, events),
        }
    };
    sim.dispatch(events);
    match answer {
        Some(answer) => HttpResponse::Ok().json(answer),
        None => error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            &format!("No such checkout.session: '{id}'"),
            Some("session"),
        ),
    }
}

pub(super) async fn expire_session(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let path = format!("/v1/checkout/sessions/{id}/expire");
    let sim2 = sim.clone();
    let mut events = Vec::new();
    let response = sim.idempotent(&req, &owner, &path, &body, || {
        let mut state = sim2.lock();
        let Some(s) = state.sessions.get_mut(id.as_str()).filter(|s| s.owner == owner) else {
            return (404, json!({"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such checkout.session"}}));
        };
        if s.status != "open" {
            return (400, json!({"error": {"type": "invalid_request_error", "code": "checkout_session_not_open",
                "message": format!("This Checkout Session is already in a terminal state ({}).", s.status)}}));
        }
        s.status = "expired";
        let answer = sim2.session_json(s, false);
        events.extend(sim2.event(&mut state, &owner, "checkout.session.expired", answer.clone()));
        (200, answer)
    });
    sim.dispatch(events);
    response
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    #[serde(rename = "created[gte]")]
    created_gte: Option<i64>,
    #[serde(rename = "created[lt]")]
    created_lt: Option<i64>,
    limit: Option<usize>,
    starting_after: Option<String>,
}

pub(super) fn list_query(req: &HttpRequest) -> ListQuery {
    let pairs: BTreeMap<String, String> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .filter(|(k, _)| k != "expand[]")
            .collect();
    ListQuery {
        created_gte: pairs.get("created[gte]").and_then(|v| v.parse().ok()),
        created_lt: pairs.get("created[lt]").and_then(|v| v.parse().ok()),
        limit: pairs.get("limit").and_then(|v| v.parse().ok()),
        starting_after: pairs.get("starting_after").cloned(),
    }
}

/// Stripe lists newest first; `starting_after` continues after the named object.
pub(super) fn page<T: Clone>(mut items: Vec<(i64, String, T)>, q: &ListQuery) -> (Vec<T>, bool) {
    items.retain(|(created, _, _)| {
        q.created_gte.is_none_or(|g| *created >= g) && q.created_lt.is_none_or(|l| *created < l)
    });
    items.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
    let start = match &q.starting_after {
        Some(after) => items
            .iter()
            .position(|(_, id, _)| id == after)
            .map_or(items.len(), |i| i + 1),
        None => 0,
    };
    let limit = q.limit.unwrap_or(10).clamp(1, 100);
    let rest: Vec<T> = items.into_iter().skip(start).map(|(_, _, t)| t).collect();
    let has_more = rest.len() > limit;
    (rest.into_iter().take(limit).collect(), has_more)
}

pub(super) async fn list_sessions(sim: web::Data<Simulator>, req: HttpRequest) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let q = list_query(&req);
    // Stripe lists the session that made a PaymentIntent when asked by `payment_intent`.
    let intent = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "payment_intent")
        .map(|(_, v)| v.into_owned());
    let state = sim.lock();
    let items = state
        .sessions
        .values()
        .filter(|s| s.owner == owner)
        .filter(|s| intent.is_none() || s.intent == intent)
        .map(|s| (s.created, s.id.clone(), s.clone()))
        .collect();
    let (data, has_more) = page(items, &q);
    let expand = wants_intent(&req);
    let data: Vec<Value> = data.iter().map(|s| sim.session_json(s, expand)).collect();
    HttpResponse::Ok().json(json!({"object": "list", "url": "/v1/checkout/sessions", "data": data, "has_more": has_more}))
}

pub(super) async fn create_refund(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let form = form_map(&body);
    let sim2 = sim.clone();
    let mut events = Vec::new();
    let response = sim.idempotent(&req, &owner, "/v1/refunds", &body, || {
        let mut state = sim2.lock();
        let intent = form.get("payment_intent").cloned().unwrap_or_default();
        let Some(session) = state.sessions.values().find(|s| s.owner == owner && s.intent.as_deref() == Some(intent.as_str())).cloned() else {
            return (404, json!({"error": {"type": "invalid_request_error", "code": "resource_missing", "param": "payment_intent", "message": "No such payment_intent"}}));
        };
        let refunded: i64 = state.refunds.values().filter(|r| r.intent == intent && r.status != "failed" && r.status != "canceled").map(|r| r.amount).sum();
        let amount = form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(session.amount - refunded);
        if refunded >= session.amount {
            return (400, json!({"error": {"type": "invalid_request_error", "code": "charge_already_refunded", "message": "Charge has already been refunded."}}));
        }
        if amount <= 0 || refunded + amount > session.amount {
            return (400, json!({"error": {"type": "invalid_request_error", "code": "amount_too_large", "param": "amount",
                "message": "Refund amount is greater than unrefunded amount on charge."}}));
        }
        let id = sim2.next_id(&mut state, "re");
        let refund = SimRefund {
            id: id.clone(),
            session: session.id.clone(),
            intent: intent.clone(),
            amount,
            status: state.control.refund_status.clone().unwrap_or_else(|| "succeeded".into()),
            metadata: nested(&form, "metadata"),
            created: Utc::now().timestamp(),
        };
        let answer = Simulator::refund_json(&refund);
        state.refunds.insert(id, refund);
        let charge = sim2.charge_json(&state, &session, refunded + amount);
        events.extend(sim2.event(&mut state, &owner, "charge.refunded", charge));
        events.extend(sim2.event(&mut state, &owner, "refund.created", answer.clone()));
        (200, answer)
    });
    sim.dispatch(events);
    response
}

pub(super) async fn get_refund(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let state = sim.lock();
    match state.refunds.get(id.as_str()).filter(|r| {
        state
            .sessions
            .get(&r.session)
            .is_some_and(|s| s.owner == owner)
    }) {
        Some(r) => HttpResponse::Ok().json(Simulator::refund_json(r)),
        None => error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            &format!("No such refund: '{id}'"),
            Some("id"),
        ),
    }
}

pub(super) async fn list_refunds(sim: web::Data<Simulator>, req: HttpRequest) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let q = list_query(&req);
    let state = sim.lock();
    let items = state
        .refunds
        .values()
        .filter(|r| {
            state
                .sessions
                .get(&r.session)
                .is_some_and(|s| s.owner == owner)
        })
        .map(|r| (r.created, r.id.clone(), r.clone()))
        .collect();
    let (data, has_more) = page(items, &q);
    let data: Vec<Value> = data.iter().map(Simulator::refund_json).collect();
    HttpResponse::Ok()
        .json(json!({"object": "list", "url": "/v1/refunds", "data": data, "has_more": has_more}))
}

/// What a Checkout Session create asks for, once Stripe's checks pass.
struct SessionRequest {
    amount: i64,
    name: String,
    success_url: String,
    expires_at: i64,
}

/// Checks a create the way Stripe does (the subset Counterfoil can trip over).
#[allow(clippy::result_large_err)]
fn session_request(
    form: &BTreeMap<String, String>,
    now: i64,
) -> Result<SessionRequest, HttpResponse> {
    if form.get("mode").map(String::as_str) != Some("payment") {
        return Err(invalid(
            "parameter_invalid",
            "This simulator supports mode=payment.",
            "mode",
        ));
    }
    if form
        .get("line_items[0][price_data][currency]")
        .map(String::as_str)
        != Some("gbp")
    {
        return Err(invalid(
            "parameter_invalid",
            "Currency must be gbp.",
            "line_items[0][price_data][currency]",
        ));
    }
    let amount: i64 = match form
        .get("line_items[0][price_data][unit_amount]")
        .and_then(|a| a.parse().ok())
    {
        Some(a) if a >= 30 => a,
        _ => {
            return Err(invalid(
                "amount_too_small",
                "Amount must be at least £0.30 gbp.",
                "line_items[0][price_data][unit_amount]",
            ))
        }
    };
    let Some(name) = form
        .get("line_items[0][price_data][product_data][name]")
        .cloned()
    else {
        return Err(invalid(
            "parameter_missing",
            "Missing required param: line_items[0][price_data][product_data][name].",
            "line_items[0][price_data][product_data][name]",
        ));
    };
    let Some(success_url) = form.get("success_url").cloned() else {
        return Err(invalid(
            "parameter_missing",
            "Missing required param: success_url.",
            "success_url",
        ));
    };
    let expires_at = match form.get("expires_at").map(|e| e.parse::<i64>()) {
        None => now + 24 * 3600,
        Some(Ok(e)) if e >= now + 30 * 60 - 60 && e <= now + 24 * 3600 => e,
        _ => return Err(invalid(
            "parameter_invalid",
            "The Checkout Session's expires_at must be between 30 minutes and 24 hours from now.",
            "expires_at",
        )),
    };
    Ok(SessionRequest {
        amount,
        name,
        success_url,
        expires_at,
    })
}
