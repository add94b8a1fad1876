//! The simulated payments API: create, get, cancel and search payments, in GOV.UK Pay's shapes.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::*;

pub(super) fn error(
    status: actix_web::http::StatusCode,
    code: &str,
    description: &str,
    field: Option<&str>,
) -> HttpResponse {
    let mut body = json!({"code": code, "description": description});
    if let Some(field) = field {
        body["field"] = json!(field);
    }
    HttpResponse::build(status).json(body)
}

pub(super) fn unauthorised() -> HttpResponse {
    // GOV.UK Pay answers a missing or wrong key with 401 and no body.
    HttpResponse::Unauthorized().finish()
}

/// Validates a create request the way GOV.UK Pay does (the subset Counterfoil can trip over).
/// Answers with GOV.UK Pay's refusal, or `None` when the request is acceptable.
pub(super) fn refuse_create(body: &Map<String, Value>) -> Option<HttpResponse> {
    use actix_web::http::StatusCode as S;
    const KNOWN: &[&str] = &[
        "amount",
        "reference",
        "description",
        "return_url",
        "email",
        "metadata",
        "language",
        "delayed_capture",
        "moto",
        "prefilled_cardholder_details",
        "authorisation_mode",
    ];
    for field in ["amount", "reference", "description", "return_url"] {
        if !body.contains_key(field) {
            return Some(error(
                S::BAD_REQUEST,
                "P0101",
                &format!("Missing mandatory attribute: {field}"),
                Some(field),
            ));
        }
    }
    if let Some(unknown) = body.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Some(error(
            S::UNPROCESSABLE_ENTITY,
            "P0104",
            &format!("Unexpected attribute: {unknown}"),
            Some(unknown),
        ));
    }
    refuse_values(body).or_else(|| refuse_metadata(body))
}

/// GOV.UK Pay's limits on the amount and the text fields.
fn refuse_values(body: &Map<String, Value>) -> Option<HttpResponse> {
    use actix_web::http::StatusCode as S;
    let invalid = |field: &str, why: &str| {
        error(
            S::UNPROCESSABLE_ENTITY,
            "P0102",
            &format!("Invalid attribute value: {field}. {why}"),
            Some(field),
        )
    };
    match body["amount"].as_i64() {
        Some(a) if (1..=10_000_000).contains(&a) => {}
        Some(a) if a > 10_000_000 => {
            return Some(invalid("amount", "Must be less than or equal to 10000000"))
        }
        _ => return Some(invalid("amount", "Must be greater than or equal to 1")),
    }
    for (field, max) in [
        ("reference", 255),
        ("description", 255),
        ("return_url", 2000),
        ("email", 254),
    ] {
        if let Some(value) = body.get(field) {
            let Some(text) = value.as_str() else {
                return Some(invalid(field, "Must be a string"));
            };
            if text.chars().count() > max {
                return Some(invalid(
                    field,
                    &format!("Must be less than or equal to {max} characters length"),
                ));
            }
            if text.contains(['<', '>', '|']) {
                return Some(invalid(field, "Must not contain any of < > |"));
            }
        }
    }
    None
}

/// GOV.UK Pay's limits on metadata: 1 to 15 keys of up to 30 characters, short plain values.
fn refuse_metadata(body: &Map<String, Value>) -> Option<HttpResponse> {
    use actix_web::http::StatusCode as S;
    if let Some(metadata) = body.get("metadata") {
        let valid = metadata.as_object().is_some_and(|m| {
            (1..=15).contains(&m.len())
                && m.iter().all(|(k, v)| {
                    (1..=30).contains(&k.chars().count())
                        && (v.as_str().is_some_and(|s| s.chars().count() <= 100)
                            || v.is_number()
                            || v.is_boolean())
                })
        });
        if !valid {
            return Some(error(
                S::UNPROCESSABLE_ENTITY,
                "P0102",
                "Invalid attribute value: metadata",
                Some("metadata"),
            ));
        }
    }
    None
}

pub(super) async fn create(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    // The firewall in front of GOV.UK Pay refuses these characters anywhere in a body (P0920).
    let text = String::from_utf8_lossy(&body);
    if text.contains(['<', '>', '\\', '|']) {
        return error(
            actix_web::http::StatusCode::BAD_REQUEST,
            "P0920",
            "Request blocked by security rules",
            None,
        );
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            actix_web::http::StatusCode::BAD_REQUEST,
            "P0197",
            "Unable to parse JSON",
            None,
        );
    };
    if let Some(refused) = refuse_create(&fields) {
        return refused;
    }
    let (fail, delay) = next_create_fault(&sim);
    if fail {
        return error(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "P0198",
            "Downstream system error",
            None,
        );
    }
    let payment = new_payment(owner, &fields);
    let mut representation = sim.representation(&payment);
    // The create answer is the published CreatePaymentResult, which has no authorisation mode.
    if let Some(fields) = representation.as_object_mut() {
        fields.remove("authorisation_mode");
    }
    sim.lock().insert(payment);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    HttpResponse::Created().json(representation)
}

pub(super) async fn get(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let (response, messages) = {
        let mut state = sim.lock();
        if state.owned(&id, &owner).is_none() {
            return error(
                actix_web::http::StatusCode::NOT_FOUND,
                "P0200",
                "Not found",
                None,
            );
        }
        let messages = sim.expire_if_due(&mut state, &id, Utc::now());
        let body = sim.representation(&state.payments[id.as_str()]);
        (HttpResponse::Ok().json(body), messages)
    };
    sim.dispatch(messages);
    response
}

pub(super) async fn cancel(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    use actix_web::http::StatusCode as S;
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let (cancelled, messages) = {
        let mut state = sim.lock();
        if state.owned(&id, &owner).is_none() {
            return error(S::NOT_FOUND, "P0500", "Not found", None);
        }
        let mut messages = sim.expire_if_due(&mut state, &id, Utc::now());
        let payment = state.payments.get_mut(id.as_str()).expect("checked above");
        if payment.finished() {
            (false, messages)
        } else {
            payment.move_to("cancelled", Some("P0040"), Utc::now());
            let payment = payment.clone();
            // A service's cancel arrives as card_payment_failed.
            messages.extend(sim.webhook(&state, &payment, "card_payment_failed"));
            (true, messages)
        }
    };
    sim.dispatch(messages);
    if cancelled {
        HttpResponse::NoContent().finish()
    } else {
        error(
            S::BAD_REQUEST,
            "P0501",
            "Cancellation of payment failed",
            None,
        )
    }
}

#[derive(Deserialize)]
pub(super) struct SearchParams {
    reference: Option<String>,
    from_date: Option<String>,
    to_date: Option<String>,
    state: Option<String>,
    page: Option<String>,
    display_size: Option<String>,
}

pub(super) async fn search(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    params: web::Query<SearchParams>,
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
        "P0401",
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
    let mut state = sim.lock();
    let now = Utc::now();
    let messages = sim.expire_all_due(&mut state, now);
    let (total, results) = search_page(
        &sim,
        &mut state,
        &owner,
        &params,
        (from, to),
        (page, size),
        now,
    );
    drop(state);
    sim.dispatch(messages);
    if page > 1 && results.is_empty() {
        return error(S::NOT_FOUND, "P0402", "Page not found", None);
    }
    HttpResponse::Ok().json(json!({
        "total": total, "count": results.len(), "page": page, "results": results,
        "_links": {"self": {"href": format!("{}/v1/payments?page={page}", sim.base_url)}}
    }))
}

/// One page of `owner`'s payments created in [from, to), newest first, and how many there are in
/// all: read off the ordered index, each payment looked up only when a filter needs more than its
/// creation time.
fn search_page(
    sim: &Simulator,
    state: &mut State,
    owner: &str,
    params: &SearchParams,
    (from, to): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    (page, size): (usize, usize),
    now: DateTime<Utc>,
) -> (usize, Vec<Value>) {
    let visible_before = now - state.search_delay;
    let upper = to.map_or(visible_before, |t| t.min(visible_before));
    let lower = from.unwrap_or(DateTime::<Utc>::MIN_UTC).min(upper);
    let window = state
        .by_created
        .range((owner.to_owned(), lower, String::new())..(owner.to_owned(), upper, String::new()))
        .rev()
        .map(|(_, _, id)| id);
    if params.reference.is_none() && params.state.is_none() {
        // Counted and skipped on the index alone; only the page's payments are read.
        let key = (owner.to_owned(), lower, upper, state.by_created.len());
        let total = match &state.counted {
            Some((counted, total)) if *counted == key => *total,
            _ => window.clone().count(),
        };
        let results = window
            .skip((page - 1) * size)
            .take(size)
            .map(|id| sim.representation(&state.payments[id]))
            .collect();
        state.counted = Some((key, total));
        return (total, results);
    }
    let matches: Vec<&SimPayment> = window
        .map(|id| &state.payments[id])
        .filter(|p| {
            params.reference.as_ref().is_none_or(|r| &p.reference == r)
                && params.state.as_ref().is_none_or(|s| p.status == s)
        })
        .collect();
    let results = matches
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|p| sim.representation(p))
        .collect();
    (matches.len(), results)
}

/// `GET /v1/payments/{id}/events`: every state the payment has been in, oldest first.
pub(super) async fn events(
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
            "P0200",
            "Not found",
            None,
        );
    };
    let payment_url = format!("{}/v1/payments/{}", sim.base_url, payment.id);
    let events: Vec<Value> = payment
        .history
        .iter()
        .map(|(status, code, at)| {
            json!({
                "payment_id": payment.id,
                "state": SimPayment::state_view(status, *code),
                "updated": at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "_links": {"payment_url": {"href": payment_url, "method": "GET"}},
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "payment_id": payment.id,
        "events": events,
        "_links": {"self": {"href": format!("{payment_url}/events"), "method": "GET"}},
    }))
}

/// Whether this create is to fail, or be answered late, as a test asked (`_control/faults`).
fn next_create_fault(sim: &Simulator) -> (bool, Option<Duration>) {
    let mut state = sim.lock();
    if state.faults.create_errors > 0 {
        state.faults.create_errors -= 1;
        (true, None)
    } else if state.faults.create_delays > 0 {
        state.faults.create_delays -= 1;
        (
            false,
            Some(Duration::from_millis(state.faults.create_delay_ms)),
        )
    } else {
        (false, None)
    }
}

/// A payment as GOV.UK Pay records a create: `created`, its first event now.
fn new_payment(owner: String, fields: &Map<String, Value>) -> SimPayment {
    let text_field = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
    let now = Utc::now();
    SimPayment {
        id: new_payment_id(),
        owner,
        amount: fields["amount"].as_i64().unwrap_or_default(),
        reference: text_field("reference").unwrap_or_default(),
        description: text_field("description").unwrap_or_default(),
        return_url: text_field("return_url").unwrap_or_default(),
        email: text_field("email"),
        metadata: fields
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        status: "created",
        code: None,
        created: now,
        refunds: Vec::new(),
        history: vec![("created", None, now)],
        card_details: None,
        settled: None,
    }
}
