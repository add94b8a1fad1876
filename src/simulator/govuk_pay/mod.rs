//! A GOV.UK Pay-compatible simulator under `/sandbox/govuk-pay/`: the public API's create, get,
//! cancel and search paths with its field names, statuses and error shapes, a hosted test page with
//! no card fields, and a control API for tests to inject faults.

mod api;
mod control;
mod pages;
mod refunds;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::simulator::{accounts_by_key, digest, SimAccount};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub use crate::simulator::delivery::WebhookMode;
use crate::simulator::delivery::{Courier, Message};
use api::*;
use control::*;
use pages::*;
use refunds::*;

/// Where the simulator is mounted inside Counterfoil.
pub const MOUNT: &str = "/sandbox/govuk-pay";

/// How long a payer has before GOV.UK Pay expires the payment (P0020).
const PAYER_WINDOW: chrono::Duration = chrono::Duration::minutes(90);

#[derive(Debug, Clone)]
struct SimPayment {
    id: String,
    owner: String,
    amount: i64,
    reference: String,
    description: String,
    return_url: String,
    email: Option<String>,
    metadata: Map<String, Value>,
    status: &'static str,
    code: Option<&'static str>,
    created: DateTime<Utc>,
    refunds: Vec<SimRefund>,
    /// Every state the payment has been in, with when: its events.
    history: Vec<(&'static str, Option<&'static str>, DateTime<Utc>)>,
    /// What the payer entered on the card page (never a full card number), once they have.
    card_details: Option<Value>,
    /// The day it was paid into the service's bank account (accounts on GOV.UK Pay's
    /// Stripe-backed service), once it has been.
    settled: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone)]
struct SimRefund {
    id: String,
    amount: i64,
    status: String,
    created: DateTime<Utc>,
    /// The day Stripe took it from a payout, once it has.
    settled: Option<chrono::NaiveDate>,
}

impl SimPayment {
    /// Refunded or being refunded (a refund in `error` gave nothing back).
    fn refunds_submitted(&self) -> i64 {
        self.refunds
            .iter()
            .filter(|r| r.status != "error")
            .map(|r| r.amount)
            .sum()
    }

    fn refund_available(&self) -> i64 {
        if self.status == "success" {
            self.amount - self.refunds_submitted()
        } else {
            0
        }
    }

    fn finished(&self) -> bool {
        matches!(self.status, "success" | "failed" | "cancelled" | "error")
    }

    /// Moves the payment to `status`, remembering it as an event.
    fn move_to(&mut self, status: &'static str, code: Option<&'static str>, at: DateTime<Utc>) {
        self.status = status;
        self.code = code;
        self.history.push((status, code, at));
    }

    /// The payment's state in the API's shape.
    fn state_view(status: &str, code: Option<&str>) -> Value {
        let finished = matches!(status, "success" | "failed" | "cancelled" | "error");
        let mut state = json!({"status": status, "finished": finished});
        if let Some(code) = code {
            state["code"] = json!(code);
            state["message"] = json!(match code {
                "P0010" => "Payment method rejected",
                "P0020" => "Payment expired",
                "P0030" => "Payment was cancelled by the user",
                "P0040" => "Payment was cancelled by the service",
                _ => "Payment provider returned an error",
            });
        }
        state
    }
}

/// The card details a simulated payer enters, in GOV.UK Pay's shape: the first six and last four
/// digits only, as the real API gives.
fn sample_card_details() -> Value {
    json!({
        "last_digits_card_number": "4242",
        "first_digits_card_number": "424242",
        "cardholder_name": "Sam Sample",
        "expiry_date": "04/30",
        "billing_address": {"line1": "1 Test Street", "postcode": "AB1 2CD",
                            "city": "Testtown", "country": "GB"},
        "card_brand": "Visa",
        "card_type": "debit"
    })
}

/// What a test asks of the next webhooks: how to deliver them, and what the payer "entered".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookControl {
    #[serde(default)]
    pub mode: WebhookMode,
    /// Wait this long before each delivery.
    #[serde(default)]
    pub delay_ms: u64,
    /// The `card_details` the simulated payer "enters", to be sent in webhooks.
    #[serde(default)]
    pub card_details: Option<Value>,
    /// Also the payer's email in webhook resources.
    #[serde(default)]
    pub email: Option<String>,
}

/// Faults a test can ask for, each for a number of upcoming create calls.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Answer this many creates with 500 P0198 without creating anything.
    #[serde(default)]
    pub create_errors: u32,
    /// Create the payment, then wait this long before answering (a lost or slow response).
    #[serde(default)]
    pub create_delay_ms: u64,
    /// How many creates `create_delay_ms` applies to.
    #[serde(default)]
    pub create_delays: u32,
    /// Refuse this many refund requests with 400 P0941 (the account is disabled), making nothing.
    #[serde(default)]
    pub refund_refusals: u32,
}

#[derive(Default)]
struct State {
    payments: HashMap<String, SimPayment>,
    /// Every payment by (owner, created, id): search reads a window of it in order, so a page
    /// costs the same among a million payments as among ten.
    by_created: BTreeSet<(String, DateTime<Utc>, String)>,
    /// Payments that may not be finished: the only ones search has to check for expiry (a
    /// finished one found here is dropped when it is next checked; none ever un-finishes).
    open: HashSet<String>,
    /// The last search's window, the payments there were then and its total: a million-payment
    /// period is counted once, not once a page.
    counted: Option<(SearchKey, usize)>,
    faults: Faults,
    /// The status new refunds get (GOV.UK Pay's sandbox goes straight to `success`).
    refund_status: Option<String>,
    /// Search is eventually consistent: a payment or refund younger than this is not found yet.
    search_delay: chrono::Duration,
    webhooks: WebhookControl,
}

/// A search window as counted: owner, from, to, and how many payments there were in all.
type SearchKey = (String, DateTime<Utc>, DateTime<Utc>, usize);

impl State {
    fn insert(&mut self, payment: SimPayment) {
        if !payment.finished() {
            self.open.insert(payment.id.clone());
        }
        self.by_created
            .insert((payment.owner.clone(), payment.created, payment.id.clone()));
        self.payments.insert(payment.id.clone(), payment);
    }

    /// The payment `id`, if `owner`'s API key made it (another account's is "not found").
    fn owned(&self, id: &str, owner: &str) -> Option<&SimPayment> {
        self.payments.get(id).filter(|p| p.owner == owner)
    }

    fn owned_mut(&mut self, id: &str, owner: &str) -> Option<&mut SimPayment> {
        self.payments.get_mut(id).filter(|p| p.owner == owner)
    }
}

/// The simulator's shared state: which API keys it accepts, its public base URL, its payments.
#[derive(Clone)]
pub struct Simulator {
    base_url: Arc<str>,
    /// API key digest → where that account's webhooks go.
    accounts: Arc<HashMap<String, Option<(String, String)>>>,
    state: Arc<Mutex<State>>,
    courier: Courier,
    journal: super::journal::Journal,
}

impl Simulator {
    /// `public_base` is how browsers reach Counterfoil, e.g. `http://127.0.0.1:8080`.
    pub fn new(public_base: &str, accounts: Vec<SimAccount>) -> Self {
        Self {
            base_url: format!("{}{MOUNT}", public_base.trim_end_matches('/')).into(),
            accounts: Arc::new(accounts_by_key(accounts)),
            state: Arc::default(),
            courier: Courier::default(),
            journal: Default::default(),
        }
    }

    /// The API base URL a provider client should use to reach this simulator.
    pub fn api_base_url(&self) -> &str {
        &self.base_url
    }

    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.service(
            web::scope(MOUNT)
                .app_data(web::Data::new(self.journal.clone()))
                .wrap(actix_web::middleware::from_fn(super::journal::record))
                .route("/_control/journal", web::get().to(super::journal::list))
                .app_data(web::Data::new(self.clone()))
                .app_data(web::JsonConfig::default().error_handler(|err, _| {
                    let body = json!({"code": "P0197", "description": "Unable to parse JSON"});
                    actix_web::error::InternalError::from_response(
                        err,
                        HttpResponse::BadRequest().json(body),
                    )
                    .into()
                }))
                .route("/v1/payments", web::post().to(create))
                .route("/v1/payments", web::get().to(search))
                .route("/v1/payments/{id}", web::get().to(get))
                .route("/v1/payments/{id}/cancel", web::post().to(cancel))
                .route("/v1/payments/{id}/events", web::get().to(events))
                .route("/v1/refunds", web::get().to(search_refunds))
                .route("/v1/payments/{id}/refunds", web::post().to(create_refund))
                .route("/v1/payments/{id}/refunds", web::get().to(list_refunds))
                .route(
                    "/v1/payments/{id}/refunds/{refund_id}",
                    web::get().to(get_refund),
                )
                .route("/pay/{id}", web::get().to(hosted_page))
                .route("/secure", web::post().to(pages::hosted_page_by_post))
                .route("/pay/{id}/{action}", web::post().to(press_button))
                .route("/_control/faults", web::post().to(set_faults))
                .route("/_control/refunds", web::post().to(set_refund_status))
                .route("/_control/search", web::post().to(set_search_delay))
                .route("/_control/settle", web::post().to(control::settle))
                .route("/_control/seed", web::post().to(control::seed))
                .route("/_control/refunds/{refund_id}", web::post().to(move_refund))
                .route("/_control/webhooks", web::post().to(set_webhooks))
                .route("/_control/webhooks", web::get().to(list_deliveries))
                .route(
                    "/_control/webhooks/release",
                    web::post().to(release_webhooks),
                )
                .route("/_control/payments", web::get().to(control_list))
                .route("/_control/payments/{id}", web::get().to(control_get)),
        );
    }

    fn owner_of(&self, req: &HttpRequest) -> Option<String> {
        let key = req
            .headers()
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?;
        let presented = digest(key);
        self.accounts
            .keys()
            .any(|d| {
                use subtle::ConstantTimeEq;
                bool::from(d.as_bytes().ct_eq(presented.as_bytes()))
            })
            .then_some(presented)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn representation(&self, p: &SimPayment) -> Value {
        let state = SimPayment::state_view(p.status, p.code);
        let self_href = format!("{}/v1/payments/{}", self.base_url, p.id);
        let mut links = json!({
            "self": {"href": self_href, "method": "GET"},
            "events": {"href": format!("{self_href}/events"), "method": "GET"},
            "refunds": {"href": format!("{self_href}/refunds"), "method": "GET"},
        });
        if !p.finished() {
            links["next_url"] =
                json!({"href": format!("{}/pay/{}", self.base_url, p.id), "method": "GET"});
            // As GOV.UK Pay gives it: the same page reached by a form post of the charge token.
            links["next_url_post"] = json!({
                "type": "application/x-www-form-urlencoded",
                "params": {"chargeTokenId": p.id},
                "href": format!("{}/secure", self.base_url),
                "method": "POST",
            });
            links["cancel"] = json!({"href": format!("{self_href}/cancel"), "method": "POST"});
        }
        let mut body = json!({
            "payment_id": p.id,
            "amount": p.amount,
            "reference": p.reference,
            "description": p.description,
            "return_url": p.return_url,
            "language": "en",
            "state": state,
            "payment_provider": "sandbox",
            "created_date": p.created.to_rfc3339_opts(SecondsFormat::Millis, true),
            "delayed_capture": false,
            "moto": false,
            "authorisation_mode": "web",
            "refund_summary": {
                "status": match (p.status, p.refund_available()) {
                    ("success", 0) => "full",
                    ("success", _) => "available",
                    ("failed" | "cancelled" | "error", _) => "unavailable",
                    _ => "pending",
                },
                "amount_available": p.refund_available(),
                "amount_submitted": p.refunds_submitted()
            },
            "_links": links,
        });
        if let Some(email) = &p.email {
            body["email"] = json!(email);
        }
        if let Some(card) = &p.card_details {
            // Once the payer has entered a card: its details and the card processor's reference.
            body["card_details"] = card.clone();
            body["card_brand"] = card["card_brand"].clone();
            body["provider_id"] = json!(format!("sim-{}", p.id));
        }
        if p.status == "success" {
            let captured = p.history.last().map(|(_, _, at)| *at).unwrap_or(p.created);
            body["settlement_summary"] = json!({
                "capture_submit_time": captured.to_rfc3339_opts(SecondsFormat::Millis, true),
                "captured_date": captured.date_naive().to_string(),
            });
            if let Some(day) = p.settled {
                // A Stripe-backed account's payment, paid out: its day, and Stripe's fee.
                body["settlement_summary"]["settled_date"] = json!(day.to_string());
                body["fee"] = json!(control::stripe_fee(p.amount));
                body["net_amount"] = json!(p.amount - control::stripe_fee(p.amount));
            }
        }
        if !p.metadata.is_empty() {
            body["metadata"] = Value::Object(p.metadata.clone());
        }
        body
    }

    /// Applies GOV.UK Pay's 90-minute payer window to a payment that is read; an expiry is
    /// announced by webhook like any other change.
    fn expire_if_due(&self, state: &mut State, id: &str, now: DateTime<Utc>) -> Vec<Message> {
        let Some(payment) = state.payments.get_mut(id) else {
            return Vec::new();
        };
        if !payment.finished() && now - payment.created > PAYER_WINDOW {
            payment.move_to("failed", Some("P0020"), now);
            let payment = payment.clone();
            return self.webhook(state, &payment, "card_payment_expired");
        }
        Vec::new()
    }

    /// Expires every payment past its payer's window (only unfinished ones are looked at).
    fn expire_all_due(&self, state: &mut State, now: DateTime<Utc>) -> Vec<Message> {
        let due: Vec<String> = {
            let State { open, payments, .. } = &mut *state;
            open.retain(|id| payments.get(id).is_some_and(|p| !p.finished()));
            open.iter()
                .filter(|id| now - payments[*id].created > PAYER_WINDOW)
                .cloned()
                .collect()
        };
        due.iter()
            .flat_map(|id| self.expire_if_due(state, id, now))
            .collect()
    }

    /// Builds a webhook in pay-webhooks' shape. Like the real one, its resource is the payment as
    /// it is now, with the card details and email the payer entered.
    fn webhook(&self, state: &State, payment: &SimPayment, event_type: &str) -> Vec<Message> {
        let Some(Some((url, secret))) = self.accounts.get(&payment.owner) else {
            return Vec::new();
        };
        let mut resource = self.representation(payment);
        if let Some(links) = resource.as_object_mut() {
            links.remove("_links");
        }
        if payment.card_details.is_some() {
            if let Some(email) = &state.webhooks.email {
                resource["email"] = json!(email);
            }
        }
        let message_id = new_payment_id();
        let body = json!({
            "webhook_message_id": message_id,
            "created_date": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "resource_id": payment.id,
            "api_version": 1,
            "resource_type": "payment",
            "event_type": event_type,
            "resource": resource,
        });
        let secret = secret.clone();
        vec![Message {
            url: url.clone(),
            id: message_id,
            event_type: event_type.to_owned(),
            body: body.to_string(),
            sign: Arc::new(move |body| {
                (
                    crate::providers::govuk_pay::SIGNATURE_HEADER,
                    crate::providers::govuk_pay::sign_webhook(&secret, body),
                )
            }),
        }]
    }

    /// Sends (or drops, duplicates, holds) webhooks as the test asked, outside any lock.
    fn dispatch(&self, messages: Vec<Message>) {
        self.courier.dispatch(messages);
    }
}

/// Payment ids look like GOV.UK Pay's: 26 lowercase base32 characters.
fn new_payment_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..26)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A search's created-date window and page, as GOV.UK Pay reads them; `code` is the error code
/// its refusals carry (P0401 for payments, P1101 for refunds).
struct SearchWindow {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    page: usize,
    size: usize,
}

fn search_window(
    from_date: &Option<String>,
    to_date: &Option<String>,
    page: &Option<String>,
    display_size: &Option<String>,
    code: &str,
) -> Result<SearchWindow, Box<HttpResponse>> {
    use actix_web::http::StatusCode as S;
    let date = |d: &Option<String>| -> Result<Option<DateTime<Utc>>, ()> {
        d.as_deref()
            .map(|d| {
                DateTime::parse_from_rfc3339(d)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| ())
            })
            .transpose()
    };
    let (Ok(from), Ok(to)) = (date(from_date), date(to_date)) else {
        return Err(Box::new(error(S::UNPROCESSABLE_ENTITY, code, "Invalid parameters: from_date, to_date. See Public API documentation for the correct data formats", None)));
    };
    let page: usize = page.as_deref().unwrap_or("1").parse().unwrap_or(0);
    let size: usize = display_size
        .as_deref()
        .unwrap_or("500")
        .parse()
        .unwrap_or(0);
    if page == 0 || !(1..=500).contains(&size) {
        return Err(Box::new(error(S::UNPROCESSABLE_ENTITY, code, "Invalid parameters: page, display_size. See Public API documentation for the correct data formats", None)));
    }
    Ok(SearchWindow {
        from,
        to,
        page,
        size,
    })
}
