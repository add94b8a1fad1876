//! A Stripe Checkout stand-in, served in-process under `/sandbox/stripe/` when an account of kind
//! `stripe` has `base_url = "simulator"`. It follows Stripe's published API for what Counterfoil
//! uses: form-encoded Checkout Sessions (create, retrieve with `expand[]=payment_intent`, expire,
//! list by `created` with `starting_after`), Refunds (create, retrieve, list), `Idempotency-Key`
//! replay (and `idempotency_error` for a reused key), Stripe's error body, a clearly marked hosted
//! page with no card fields, and events signed with `Stripe-Signature`, whose Charge objects carry
//! realistic card and billing details (which Counterfoil must never keep).

mod api;
mod control;
mod pages;
mod payouts;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::simulator::{accounts_by_key, digest, SimAccount};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::simulator::delivery::{Courier, Message, WebhookMode};
use api::*;
use control::*;
use pages::*;

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
    book: payouts::Book,
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
                .route("/v1/payouts", web::get().to(payouts::list_payouts))
                .route(
                    "/v1/balance_transactions",
                    web::get().to(payouts::list_balance_transactions),
                )
                .route("/_control/payouts", web::post().to(payouts::make_payout))
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
