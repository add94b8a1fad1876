//! A Stripe Checkout stand-in, served in-process under `/sandbox/stripe/` when an account of kind
//! `stripe` has `base_url = "simulator"`. It follows Stripe's published API for what Counterfoil
//! uses: form-encoded Checkout Sessions (create, retrieve with `expand[]=payment_intent`, expire,
//! list by `created` with `starting_after`), Refunds (create, retrieve, list), `Idempotency-Key`
//! replay (and `idempotency_error` for a reused key), Stripe's error body, a clearly marked hosted
//! page with no card fields, and events signed with `Stripe-Signature`, whose Charge objects carry
//! realistic card and billing details (which Counterfoil must never keep).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{accounts_by_key, digest, escape_html, SimAccount};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::delivery::{Courier, Message, WebhookMode};

/// Where the simulator is mounted.
pub const MOUNT: &str = "/sandbox/stripe";

#[derive(Debug, Clone)]
struct SimSession {
    id: String,
    owner: String,
    amount: i64,
    name: String,
    success_url: String,
    cancel_url: String,
    client_reference_id: Option<String>,
    metadata: BTreeMap<String, String>,
    intent_metadata: BTreeMap<String, String>,
    status: &'static str,
    payment_status: &'static str,
    intent: Option<String>,
    intent_status: &'static str,
    created: i64,
    expires_at: i64,
}

#[derive(Debug, Clone)]
struct SimRefund {
    id: String,
    session: String,
    intent: String,
    amount: i64,
    status: String,
    metadata: BTreeMap<String, String>,
    created: i64,
}

/// How the simulator delivers events, as a test asks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventControl {
    #[serde(default)]
    pub mode: WebhookMode,
    /// The card the simulated payer "enters": `{brand, last4, exp_month, exp_year, fingerprint,
    /// iin}`, sent in Charge objects' `payment_method_details.card`.
    #[serde(default)]
    pub card: Option<Value>,
    /// The payer's `billing_details` (name, email, address), sent in Charge objects.
    #[serde(default)]
    pub billing_details: Option<Value>,
    /// Status new refunds are created with (default `succeeded`).
    #[serde(default)]
    pub refund_status: Option<String>,
    /// Lose the answer to this many session creates: the session is made (and its answer kept
    /// for the Idempotency-Key), but the caller gets a 500.
    #[serde(default)]
    pub lose_create_answers: u32,
}

#[derive(Default)]
struct State {
    sessions: BTreeMap<String, SimSession>,
    refunds: BTreeMap<String, SimRefund>,
    /// (owner, Idempotency-Key) → (request fingerprint, status, body).
    idempotency: HashMap<(String, String), (String, u16, String)>,
    control: EventControl,
    sequence: u64,
}

#[derive(Clone)]
pub struct Simulator {
    base_url: Arc<str>,
    /// API key digest → where that account's events go.
    accounts: Arc<HashMap<String, Option<(String, String)>>>,
    state: Arc<Mutex<State>>,
    courier: Courier,
    journal: super::journal::Journal,
}

/// Stripe's error body.
fn error(
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
fn unauthorised() -> HttpResponse {
    error(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        "api_key_invalid",
        "Invalid API Key provided.",
        None,
    )
}

fn invalid(code: &str, message: &str, param: &str) -> HttpResponse {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        code,
        message,
        Some(param),
    )
}

fn form_map(body: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Keys `prefix[name]` of a form, as a map of `name` → value.
fn nested(form: &BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, String> {
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

impl Simulator {
    pub fn new(public_base: &str, accounts: Vec<SimAccount>) -> Self {
        Self {
            base_url: format!("{}{MOUNT}", public_base.trim_end_matches('/')).into(),
            accounts: Arc::new(accounts_by_key(accounts)),
            state: Arc::default(),
            courier: Courier::default(),
            journal: Default::default(),
        }
    }

    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.service(
            web::scope(MOUNT)
                .app_data(web::Data::new(self.journal.clone()))
                .wrap(actix_web::middleware::from_fn(super::journal::record))
                .route("/_control/journal", web::get().to(super::journal::list))
                .app_data(web::Data::new(self.clone()))
                .route("/v1/checkout/sessions", web::post().to(create_session))
                .route("/v1/checkout/sessions", web::get().to(list_sessions))
                .route("/v1/checkout/sessions/{id}", web::get().to(get_session))
                .route("/v1/checkout/sessions/{id}", web::post().to(update_session))
                .route(
                    "/v1/checkout/sessions/{id}/expire",
                    web::post().to(expire_session),
                )
                .route("/v1/refunds", web::post().to(create_refund))
                .route("/v1/refunds", web::get().to(list_refunds))
                .route("/v1/refunds/{id}", web::get().to(get_refund))
                .route("/pay/{id}", web::get().to(hosted_page))
                .route("/pay/{id}/{action}", web::post().to(press_button))
                .route("/_control/events", web::post().to(set_control))
                .route("/_control/events/release", web::post().to(release))
                .route("/_control/events", web::get().to(list_deliveries)),
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The account a request's bearer key belongs to.
    fn owner_of(&self, req: &HttpRequest) -> Option<String> {
        let key = req
            .headers()
            .get("Authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?;
        let owner = digest(key);
        self.accounts.contains_key(&owner).then_some(owner)
    }

    /// Ids shaped like Stripe's: a prefix and base62 characters. A hex tail glued to a decimal
    /// counter (as these once were) now and then made a run of digits that read as a card number.
    fn next_id(&self, state: &mut State, prefix: &str) -> String {
        use rand::Rng;
        const BASE62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        state.sequence += 1;
        let mut rng = rand::thread_rng();
        let random: String = (0..24)
            .map(|_| BASE62[rng.gen_range(0..BASE62.len())] as char)
            .collect();
        format!(
            "{prefix}_test_{random}s{}",
            crate::domain::refs::in_letters(&state.sequence.to_be_bytes())
        )
    }

    fn session_json(&self, s: &SimSession, expand_intent: bool) -> Value {
        let intent = match (&s.intent, expand_intent) {
            (Some(id), true) => {
                json!({"id": id, "object": "payment_intent", "status": s.intent_status,
                                       "amount": s.amount, "metadata": s.intent_metadata})
            }
            (Some(id), false) => json!(id),
            (None, _) => Value::Null,
        };
        json!({
            "id": s.id, "object": "checkout.session", "mode": "payment", "livemode": false,
            "status": s.status, "payment_status": s.payment_status,
            "url": (s.status == "open").then(|| format!("{}/pay/{}", self.base_url, s.id)),
            "amount_subtotal": s.amount, "amount_total": s.amount, "currency": "gbp",
            "client_reference_id": s.client_reference_id, "metadata": s.metadata,
            "success_url": s.success_url, "cancel_url": s.cancel_url,
            "created": s.created, "expires_at": s.expires_at, "payment_intent": intent,
            "customer_details": if s.status == "complete" {
                json!({"email": "payer@example.com", "name": "Simulated Payer", "address": {"postal_code": "ZZ1 1ZZ"}})
            } else { Value::Null },
        })
    }

    fn refund_json(r: &SimRefund) -> Value {
        json!({
            "id": r.id, "object": "refund", "amount": r.amount, "currency": "gbp",
            "payment_intent": r.intent, "charge": format!("ch_{}", &r.intent[3..]),
            "status": r.status, "metadata": r.metadata, "created": r.created,
            "reason": "requested_by_customer",
            "destination_details": {"type": "card", "card": {"reference": "74123456789012345678901", "type": "refund"}},
        })
    }

    /// A Charge as Stripe sends it: full of the card and billing details Counterfoil must drop.
    fn charge_json(&self, state: &State, s: &SimSession, refunded: i64) -> Value {
        let intent = s.intent.clone().unwrap_or_default();
        let card = state.control.card.clone().unwrap_or_else(|| {
            json!({"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034,
                   "fingerprint": "Xt5EWLLDS7FJjR1c", "iin": "424242", "country": "GB", "funding": "debit"})
        });
        let billing = state.control.billing_details.clone().unwrap_or_else(|| {
            json!({"name": "Simulated Payer", "email": "payer@example.com",
                   "address": {"line1": "1 Test Street", "postal_code": "ZZ1 1ZZ"}})
        });
        json!({
            "id": format!("ch_{}", &intent.get(3..).unwrap_or_default()), "object": "charge",
            "amount": s.amount, "amount_refunded": refunded, "refunded": refunded >= s.amount,
            "currency": "gbp", "payment_intent": intent, "metadata": s.intent_metadata,
            "paid": true, "status": "succeeded",
            "billing_details": billing, "receipt_email": billing["email"],
            "payment_method_details": {"type": "card", "card": card},
        })
    }

    fn event(
        &self,
        state: &mut State,
        owner: &str,
        event_type: &str,
        object: Value,
    ) -> Option<Message> {
        let (url, secret) = self.accounts.get(owner)?.clone()?;
        let id = self.next_id(state, "evt");
        let body = json!({
            "id": id, "object": "event", "api_version": crate::providers::stripe::STRIPE_VERSION,
            "created": Utc::now().timestamp(), "livemode": false, "pending_webhooks": 1,
            "type": event_type, "request": {"id": null, "idempotency_key": null},
            "data": {"object": object},
        })
        .to_string();
        Some(Message {
            url,
            id,
            event_type: event_type.into(),
            body,
            // Stripe signs each delivery attempt with its own timestamp.
            sign: Arc::new(move |body| {
                (
                    crate::providers::stripe::SIGNATURE_HEADER,
                    crate::providers::stripe::sign_webhook(&secret, Utc::now().timestamp(), body),
                )
            }),
        })
    }

    fn dispatch(&self, events: Vec<Message>) {
        self.courier.dispatch(events);
    }

    /// Replays an earlier answer to the same key, refuses a reused key with other parameters,
    /// or runs `act` and keeps its answer.
    fn idempotent(
        &self,
        req: &HttpRequest,
        owner: &str,
        path: &str,
        body: &[u8],
        act: impl FnOnce() -> (u16, Value),
    ) -> HttpResponse {
        let key = req
            .headers()
            .get("Idempotency-Key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let fingerprint = digest(&format!("{path}\n{}", String::from_utf8_lossy(body)));
        if let Some(key) = &key {
            let state = self.lock();
            if let Some((seen, status, answer)) =
                state.idempotency.get(&(owner.to_owned(), key.clone()))
            {
                if *seen != fingerprint {
                    return error(StatusCode::BAD_REQUEST, "idempotency_error", "idempotency_key_in_use",
                        "Keys for idempotent requests can only be used with the same parameters they were first used with.", None);
                }
                return HttpResponse::build(
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::OK),
                )
                .insert_header(("Idempotent-Replayed", "true"))
                .content_type("application/json")
                .body(answer.clone());
            }
        }
        let (status, answer) = act();
        let text = answer.to_string();
        // Stripe keeps the answer unless the request was invalid.
        if let (Some(key), true) = (key, !(400..500).contains(&status)) {
            self.lock()
                .idempotency
                .insert((owner.to_owned(), key), (fingerprint, status, text.clone()));
        }
        HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
            .content_type("application/json")
            .body(text)
    }
}

async fn create_session(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let form = form_map(&body);
    let now = Utc::now().timestamp();
    if form.get("mode").map(String::as_str) != Some("payment") {
        return invalid(
            "parameter_invalid",
            "This simulator supports mode=payment.",
            "mode",
        );
    }
    if form
        .get("line_items[0][price_data][currency]")
        .map(String::as_str)
        != Some("gbp")
    {
        return invalid(
            "parameter_invalid",
            "Currency must be gbp.",
            "line_items[0][price_data][currency]",
        );
    }
    let amount: i64 = match form
        .get("line_items[0][price_data][unit_amount]")
        .and_then(|a| a.parse().ok())
    {
        Some(a) if a >= 30 => a,
        _ => {
            return invalid(
                "amount_too_small",
                "Amount must be at least £0.30 gbp.",
                "line_items[0][price_data][unit_amount]",
            )
        }
    };
    let Some(name) = form
        .get("line_items[0][price_data][product_data][name]")
        .cloned()
    else {
        return invalid(
            "parameter_missing",
            "Missing required param: line_items[0][price_data][product_data][name].",
            "line_items[0][price_data][product_data][name]",
        );
    };
    let Some(success_url) = form.get("success_url").cloned() else {
        return invalid(
            "parameter_missing",
            "Missing required param: success_url.",
            "success_url",
        );
    };
    let expires_at = match form.get("expires_at").map(|e| e.parse::<i64>()) {
        None => now + 24 * 3600,
        Some(Ok(e)) if e >= now + 30 * 60 - 60 && e <= now + 24 * 3600 => e,
        _ => return invalid(
            "parameter_invalid",
            "The Checkout Session's expires_at must be between 30 minutes and 24 hours from now.",
            "expires_at",
        ),
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

fn wants_intent(req: &HttpRequest) -> bool {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "expand[]" && (v == "payment_intent" || v == "data.payment_intent"))
}

/// A session past its `expires_at` expires (as Stripe does, within a minute or so).
fn expire_if_due(sim: &Simulator, state: &mut State, id: &str) -> Vec<Message> {
    let now = Utc::now().timestamp();
    let Some(s) = state.sessions.get_mut(id) else {
        return Vec::new();
    };
    if s.status != "open" || s.expires_at > now {
        return Vec::new();
    }
    s.status = "expired";
    let (owner, json) = (s.owner.clone(), sim.session_json(s, false));
    sim.event(state, &owner, "checkout.session.expired", json)
        .into_iter()
        .collect()
}

/// Updating a session: only its metadata (as Stripe allows).
async fn update_session(
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

async fn get_session(
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

async fn expire_session(
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
struct ListQuery {
    #[serde(rename = "created[gte]")]
    created_gte: Option<i64>,
    #[serde(rename = "created[lt]")]
    created_lt: Option<i64>,
    limit: Option<usize>,
    starting_after: Option<String>,
}

fn list_query(req: &HttpRequest) -> ListQuery {
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
fn page<T: Clone>(mut items: Vec<(i64, String, T)>, q: &ListQuery) -> (Vec<T>, bool) {
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

async fn list_sessions(sim: web::Data<Simulator>, req: HttpRequest) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let q = list_query(&req);
    let state = sim.lock();
    let items = state
        .sessions
        .values()
        .filter(|s| s.owner == owner)
        .map(|s| (s.created, s.id.clone(), s.clone()))
        .collect();
    let (data, has_more) = page(items, &q);
    let expand = wants_intent(&req);
    let data: Vec<Value> = data.iter().map(|s| sim.session_json(s, expand)).collect();
    HttpResponse::Ok().json(json!({"object": "list", "url": "/v1/checkout/sessions", "data": data, "has_more": has_more}))
}

async fn create_refund(
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

async fn get_refund(
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

async fn list_refunds(sim: web::Data<Simulator>, req: HttpRequest) -> HttpResponse {
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

/// The hosted "Checkout page": no card fields, three buttons.
async fn hosted_page(sim: web::Data<Simulator>, id: web::Path<String>) -> HttpResponse {
    let (session, events) = {
        let mut state = sim.lock();
        let events = expire_if_due(&sim, &mut state, &id);
        (state.sessions.get(id.as_str()).cloned(), events)
    };
    sim.dispatch(events);
    let Some(s) = session else {
        return HttpResponse::NotFound()
            .content_type("text/html; charset=utf-8")
            .body(
                "<!doctype html><title>Not found</title><p>No such simulated Checkout Session.</p>",
            );
    };
    let amount = format!("£{}.{:02}", s.amount / 100, s.amount % 100);
    let body = if s.status != "open" {
        format!("<p>This Checkout Session is {}.</p>", s.status)
    } else {
        let button = |action: &str, label: &str| {
            format!("<form method=\"post\" action=\"{}/pay/{}/{action}\"><button type=\"submit\">{label}</button></form>", sim.base_url, s.id)
        };
        format!(
            "<p><strong>{}</strong></p><p>Amount: {amount}</p>{}{}{}",
            escape_html(&s.name),
            button("pay", "Pay (simulated success)"),
            button("fail", "Pay by a delayed method that then fails"),
            button("cancel", "Back to the service")
        )
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>TEST CHECKOUT PAGE – Stripe simulator</title>\
             <style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}.banner{{background:#635bff;color:#fff;padding:1em;font-weight:bold}}form{{display:inline-block;margin:.5em}}</style></head>\
             <body><div class=\"banner\" role=\"alert\">TEST PAGE – this is Counterfoil's Stripe Checkout simulator. No real payment is taken and no card details are asked for.</div>\
             <h1>Simulated Checkout</h1>{body}</body></html>"))
}

async fn press_button(
    sim: web::Data<Simulator>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let mut events = Vec::new();
    let redirect = {
        let mut state = sim.lock();
        events.extend(expire_if_due(&sim, &mut state, &id));
        let Some(s) = state.sessions.get(&id).cloned() else {
            return HttpResponse::NotFound().finish();
        };
        if s.status != "open" {
            return HttpResponse::Conflict().body(format!("The session is {}.", s.status));
        }
        match action.as_str() {
            "pay" | "fail" => {
                let intent = sim.next_id(&mut state, "pi");
                let session = state.sessions.get_mut(&id).expect("checked above");
                session.status = "complete";
                session.intent = Some(intent);
                if action == "pay" {
                    session.payment_status = "paid";
                    session.intent_status = "succeeded";
                } else {
                    session.payment_status = "unpaid";
                    session.intent_status = "processing";
                }
                let s = session.clone();
                let completed = sim.session_json(&s, false);
                events.extend(sim.event(
                    &mut state,
                    &s.owner,
                    "checkout.session.completed",
                    completed,
                ));
                if action == "pay" {
                    let charge = sim.charge_json(&state, &s, 0);
                    events.extend(sim.event(&mut state, &s.owner, "charge.succeeded", charge));
                } else {
                    let session = state.sessions.get_mut(&id).expect("checked above");
                    session.intent_status = "canceled";
                    let s = session.clone();
                    let failed = sim.session_json(&s, false);
                    events.extend(sim.event(
                        &mut state,
                        &s.owner,
                        "checkout.session.async_payment_failed",
                        failed,
                    ));
                }
                s.success_url.replace("{CHECKOUT_SESSION_ID}", &s.id)
            }
            "cancel" => s.cancel_url.clone(),
            _ => return HttpResponse::NotFound().finish(),
        }
    };
    sim.dispatch(events);
    HttpResponse::SeeOther()
        .insert_header(("Location", redirect))
        .finish()
}

async fn set_control(sim: web::Data<Simulator>, control: web::Json<EventControl>) -> HttpResponse {
    let control = control.into_inner();
    sim.courier.control(control.mode.clone(), Duration::ZERO);
    sim.lock().control = control;
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Release {
    #[serde(default)]
    reverse: bool,
    #[serde(default)]
    duplicate: bool,
}

async fn release(sim: web::Data<Simulator>, release: web::Json<Release>) -> HttpResponse {
    sim.courier.release(release.reverse, release.duplicate);
    HttpResponse::NoContent().finish()
}

async fn list_deliveries(sim: web::Data<Simulator>) -> HttpResponse {
    HttpResponse::Ok().json(sim.courier.report())
}
