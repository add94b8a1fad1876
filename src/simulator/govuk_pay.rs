//! A GOV.UK Pay-compatible simulator under `/sandbox/govuk-pay/`: the public API's create, get,
//! cancel and search paths with its field names, statuses and error shapes, a hosted test page with
//! no card fields, and a control API for tests to inject faults.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{accounts_by_key, digest, escape_html, SimAccount};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub use super::delivery::WebhookMode;
use super::delivery::{Courier, Message};

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
}

#[derive(Debug, Clone)]
struct SimRefund {
    id: String,
    amount: i64,
    status: String,
    created: DateTime<Utc>,
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
}

#[derive(Default)]
struct State {
    payments: HashMap<String, SimPayment>,
    faults: Faults,
    /// The status new refunds get (GOV.UK Pay's sandbox goes straight to `success`).
    refund_status: Option<String>,
    /// Search is eventually consistent: a payment or refund younger than this is not found yet.
    search_delay: chrono::Duration,
    webhooks: WebhookControl,
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
                .route("/v1/refunds", web::get().to(search_refunds))
                .route("/v1/payments/{id}/refunds", web::post().to(create_refund))
                .route("/v1/payments/{id}/refunds", web::get().to(list_refunds))
                .route(
                    "/v1/payments/{id}/refunds/{refund_id}",
                    web::get().to(get_refund),
                )
                .route("/pay/{id}", web::get().to(hosted_page))
                .route("/pay/{id}/{action}", web::post().to(press_button))
                .route("/_control/faults", web::post().to(set_faults))
                .route("/_control/refunds", web::post().to(set_refund_status))
                .route("/_control/search", web::post().to(set_search_delay))
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
        let mut state = json!({"status": p.status, "finished": p.finished()});
        if let Some(code) = p.code {
            state["code"] = json!(code);
            state["message"] = json!(match code {
                "P0010" => "Payment method rejected",
                "P0020" => "Payment expired",
                "P0030" => "Payment was cancelled by the user",
                "P0040" => "Payment was cancelled by the service",
                _ => "Payment provider returned an error",
            });
        }
        let self_href = format!("{}/v1/payments/{}", self.base_url, p.id);
        let mut links = json!({
            "self": {"href": self_href, "method": "GET"},
            "events": {"href": format!("{self_href}/events"), "method": "GET"},
            "refunds": {"href": format!("{self_href}/refunds"), "method": "GET"},
        });
        if !p.finished() {
            links["next_url"] =
                json!({"href": format!("{}/pay/{}", self.base_url, p.id), "method": "GET"});
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
            payment.status = "failed";
            payment.code = Some("P0020");
            let payment = payment.clone();
            return self.webhook(state, &payment, "card_payment_expired", false);
        }
        Vec::new()
    }

    /// Builds a webhook in pay-webhooks' shape. Like the real one, its resource is the payment as
    /// it is now, with the card details and email the payer entered.
    fn webhook(
        &self,
        state: &State,
        payment: &SimPayment,
        event_type: &str,
        with_card: bool,
    ) -> Vec<Message> {
        let Some(Some((url, secret))) = self.accounts.get(&payment.owner) else {
            return Vec::new();
        };
        let mut resource = self.representation(payment);
        if let Some(links) = resource.as_object_mut() {
            links.remove("_links");
        }
        if with_card {
            resource["card_details"] = state.webhooks.card_details.clone().unwrap_or_else(|| {
                json!({
                    "last_digits_card_number": "4242",
                    "first_digits_card_number": "424242",
                    "cardholder_name": "Sam Sample",
                    "expiry_date": "04/30",
                    "billing_address": {"line1": "1 Test Street", "line2": null, "postcode": "AB1 2CD",
                                        "city": "Testtown", "country": "GB"},
                    "card_brand": "Visa",
                    "card_type": "debit"
                })
            });
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

fn error(
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

fn unauthorised() -> HttpResponse {
    // GOV.UK Pay answers a missing or wrong key with 401 and no body.
    HttpResponse::Unauthorized().finish()
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

/// Validates a create request the way GOV.UK Pay does (the subset Counterfoil can trip over).
/// Answers with GOV.UK Pay's refusal, or `None` when the request is acceptable.
fn refuse_create(body: &Map<String, Value>) -> Option<HttpResponse> {
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

async fn create(sim: web::Data<Simulator>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
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
    let (fail, delay) = {
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
    };
    if fail {
        return error(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "P0198",
            "Downstream system error",
            None,
        );
    }
    let text_field = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
    let payment = SimPayment {
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
        created: Utc::now(),
        refunds: Vec::new(),
    };
    let representation = sim.representation(&payment);
    sim.lock().payments.insert(payment.id.clone(), payment);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    HttpResponse::Created().json(representation)
}

async fn get(sim: web::Data<Simulator>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let (response, messages) = {
        let mut state = sim.lock();
        if state
            .payments
            .get(id.as_str())
            .is_none_or(|p| p.owner != owner)
        {
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

async fn cancel(
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
        if state
            .payments
            .get(id.as_str())
            .is_none_or(|p| p.owner != owner)
        {
            return error(S::NOT_FOUND, "P0500", "Not found", None);
        }
        let mut messages = sim.expire_if_due(&mut state, &id, Utc::now());
        let payment = state.payments.get_mut(id.as_str()).expect("checked above");
        if payment.finished() {
            (false, messages)
        } else {
            payment.status = "cancelled";
            payment.code = Some("P0040");
            let payment = payment.clone();
            // A service's cancel arrives as card_payment_failed.
            messages.extend(sim.webhook(&state, &payment, "card_payment_failed", false));
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

#[derive(Deserialize)]
struct SearchParams {
    reference: Option<String>,
    from_date: Option<String>,
    to_date: Option<String>,
    state: Option<String>,
    page: Option<String>,
    display_size: Option<String>,
}

async fn search(
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
    let ids: Vec<String> = state.payments.keys().cloned().collect();
    let mut messages = Vec::new();
    for id in ids {
        messages.extend(sim.expire_if_due(&mut state, &id, now));
    }
    let mut matches: Vec<&SimPayment> = state
        .payments
        .values()
        .filter(|p| p.owner == owner)
        .filter(|p| params.reference.as_ref().is_none_or(|r| &p.reference == r))
        .filter(|p| from.is_none_or(|f| p.created >= f))
        .filter(|p| to.is_none_or(|t| p.created < t))
        .filter(|p| params.state.as_ref().is_none_or(|s| p.status == s))
        .filter(|p| now - p.created >= state.search_delay)
        .collect();
    matches.sort_by_key(|p| std::cmp::Reverse(p.created));
    let total = matches.len();
    let results: Vec<Value> = matches
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|p| sim.representation(p))
        .collect();
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

/// The hosted "payment page". It has no card fields at all: three buttons decide the outcome.
async fn hosted_page(sim: web::Data<Simulator>, id: web::Path<String>) -> HttpResponse {
    let payment = {
        let mut state = sim.lock();
        if !state.payments.contains_key(id.as_str()) {
            return HttpResponse::NotFound()
                .content_type("text/html; charset=utf-8")
                .body("<!doctype html><title>Not found</title><p>No such simulated payment.</p>");
        }
        let mut messages = sim.expire_if_due(&mut state, &id, Utc::now());
        let payment = state.payments.get_mut(id.as_str()).expect("checked above");
        if payment.status == "created" {
            payment.status = "started";
            let payment = payment.clone();
            messages.extend(sim.webhook(&state, &payment, "card_payment_started", false));
        }
        let payment = state.payments[id.as_str()].clone();
        drop(state);
        sim.dispatch(messages);
        payment
    };
    let amount = format!("£{}.{:02}", payment.amount / 100, payment.amount % 100);
    let body = if payment.finished() {
        format!(
            "<p>This payment is finished ({}).</p><p><a href=\"{}\">Return to the service</a></p>",
            payment.status,
            escape_html(&payment.return_url)
        )
    } else {
        let button = |action: &str, label: &str| {
            format!(
                "<form method=\"post\" action=\"{}/pay/{}/{action}\"><button type=\"submit\" name=\"action\" value=\"{action}\">{label}</button></form>",
                sim.base_url, payment.id
            )
        };
        format!(
            "<p><strong>{}</strong></p><p>Amount: {amount}</p>{}{}{}",
            escape_html(&payment.description),
            button("pay", "Pay (simulated success)"),
            button("decline", "Decline"),
            button("cancel", "Cancel"),
        )
    };
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>TEST PAYMENT PAGE – GOV.UK Pay simulator</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}.banner{{background:#d4351c;color:#fff;padding:1em;font-weight:bold}}form{{display:inline-block;margin:.5em}}</style></head>\
         <body><div class=\"banner\" role=\"alert\">TEST PAGE – this is Counterfoil's GOV.UK Pay simulator. No real payment is taken and no card details are asked for.</div>\
         <h1>Simulated payment</h1>{body}</body></html>"
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        // Its own inline style sheet; nothing else loads. (No form-action: the pay button's redirect
        // goes to the service's return URL.)
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ))
        .body(page)
}

/// A button on the hosted page: settles the payment and sends the browser back to `return_url`.
async fn press_button(
    sim: web::Data<Simulator>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let (return_url, messages) = {
        let mut state = sim.lock();
        if !state.payments.contains_key(&id) {
            return HttpResponse::NotFound().finish();
        }
        let mut messages = sim.expire_if_due(&mut state, &id, Utc::now());
        let payment = state.payments.get_mut(&id).expect("checked above");
        if !payment.finished() {
            let (status, code, events): (_, _, &[&str]) = match action.as_str() {
                // A payer who pays is first "succeeded"; then the PSP confirms the capture.
                "pay" => (
                    "success",
                    None,
                    &["card_payment_succeeded", "card_payment_captured"],
                ),
                "decline" => ("failed", Some("P0010"), &["card_payment_failed"]),
                "cancel" => ("failed", Some("P0030"), &["card_payment_failed"]),
                _ => return HttpResponse::NotFound().finish(),
            };
            payment.status = status;
            payment.code = code;
            let payment = payment.clone();
            for event in events {
                // Card details exist once the payer has entered them (not when they cancel).
                messages.extend(sim.webhook(&state, &payment, event, action != "cancel"));
            }
        }
        (state.payments[&id].return_url.clone(), messages)
    };
    sim.dispatch(messages);
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, return_url))
        .finish()
}

fn refund_view(sim: &Simulator, payment: &SimPayment, refund: &SimRefund) -> Value {
    let href = format!("{}/v1/payments/{}", sim.base_url, payment.id);
    json!({
        "refund_id": refund.id,
        "payment_id": payment.id,
        "amount": refund.amount,
        "status": refund.status,
        "created_date": refund.created.to_rfc3339_opts(SecondsFormat::Millis, true),
        "_links": {
            "self": {"href": format!("{href}/refunds/{}", refund.id), "method": "GET"},
            "payment": {"href": href, "method": "GET"}
        }
    })
}

#[derive(Deserialize)]
struct RefundRequest {
    amount: Option<i64>,
    refund_amount_available: Option<i64>,
}

async fn create_refund(
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
        let Some(payment) = state
            .payments
            .get_mut(id.as_str())
            .filter(|p| p.owner == owner)
        else {
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
        };
        payment.refunds.push(refund.clone());
        let payment = payment.clone();
        let messages = if refund.status == "success" {
            sim.webhook(&state, &payment, "card_payment_refunded", false)
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

async fn get_refund(
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
        .payments
        .get(&id)
        .filter(|p| p.owner == owner)
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

async fn list_refunds(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let state = sim.lock();
    let Some(payment) = state.payments.get(id.as_str()).filter(|p| p.owner == owner) else {
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
struct RefundSearchParams {
    from_date: Option<String>,
    to_date: Option<String>,
    page: Option<String>,
    display_size: Option<String>,
}

async fn search_refunds(
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchControl {
    delay_ms: i64,
}

/// Makes search eventually consistent: new payments and refunds appear only after `delay_ms`.
async fn set_search_delay(
    sim: web::Data<Simulator>,
    control: web::Json<SearchControl>,
) -> HttpResponse {
    sim.lock().search_delay = chrono::Duration::milliseconds(control.delay_ms);
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundControl {
    status: String,
}

/// The status new refunds get from now on (`submitted`, `success` or `error`).
async fn set_refund_status(
    sim: web::Data<Simulator>,
    control: web::Json<RefundControl>,
) -> HttpResponse {
    sim.lock().refund_status = Some(control.into_inner().status);
    HttpResponse::NoContent().finish()
}

/// Moves an existing refund on, as the PSP would (e.g. `submitted` → `success`, `error` → `success`).
async fn move_refund(
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
            sim.webhook(&state, &payment, "card_payment_refunded", false)
        } else {
            Vec::new()
        }
    };
    sim.dispatch(messages);
    HttpResponse::NoContent().finish()
}

async fn set_webhooks(
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
struct Release {
    #[serde(default)]
    reverse: bool,
    /// Send each released message twice.
    #[serde(default)]
    duplicate: bool,
}

/// Sends every held webhook, in the order they were made or reversed.
async fn release_webhooks(sim: web::Data<Simulator>, release: web::Json<Release>) -> HttpResponse {
    let count = sim.courier.release(release.reverse, release.duplicate);
    HttpResponse::Ok().json(json!({ "released": count }))
}

/// Every webhook the simulator has sent, with its attempts and last answer.
async fn list_deliveries(sim: web::Data<Simulator>) -> HttpResponse {
    HttpResponse::Ok().json(sim.courier.report())
}

async fn set_faults(sim: web::Data<Simulator>, faults: web::Json<Faults>) -> HttpResponse {
    sim.lock().faults = faults.into_inner();
    HttpResponse::NoContent().finish()
}

fn control_view(p: &SimPayment) -> Value {
    json!({"payment_id": p.id, "reference": p.reference, "status": p.status, "code": p.code, "metadata": p.metadata})
}

/// The simulator's own view of one payment, whoever owns it, for tests.
async fn control_get(sim: web::Data<Simulator>, id: web::Path<String>) -> HttpResponse {
    match sim.lock().payments.get(id.as_str()) {
        Some(p) => HttpResponse::Ok().json(control_view(p)),
        None => HttpResponse::NotFound().finish(),
    }
}

/// Every simulated payment, for tests (e.g. to show a double submit made only one).
async fn control_list(sim: web::Data<Simulator>) -> HttpResponse {
    let state = sim.lock();
    let all: Vec<Value> = state.payments.values().map(control_view).collect();
    HttpResponse::Ok().json(json!({ "payments": all }))
}
