//! The Stripe client (reqwest + rustls): Checkout Sessions for payments, Refunds, list endpoints
//! for reconciliation, and `Stripe-Signature` verification for webhooks.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::{
    transport_error, CreateSession, HeaderLookup, PaymentProvider, ProviderError, ProviderPayment,
    ProviderPayout, ProviderPayoutItem, ProviderRefund, ProviderRefundRecord, SearchPage,
    WebhookRejection, COUNTERFOIL_ID_KEY,
};
use crate::domain::{PaymentId, ProviderEvent, ProviderKind};
use crate::outbound::OutboundClient;

mod payouts;
pub mod wire;

/// The API version every request pins, so Stripe's answers keep the shapes `wire` reads.
pub const STRIPE_VERSION: &str = "2026-10-28.endive";
/// The header Stripe signs webhooks with: `t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…]`.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";
/// How far a signed timestamp may be from now, either way.
pub const TOLERANCE: chrono::Duration = chrono::Duration::seconds(300);
/// Stripe's largest list page.
const LIST_LIMIT: u32 = 100;
/// Attempts at a write whose answer was lost: safe, as Stripe replays an Idempotency-Key.
const WRITE_ATTEMPTS: u32 = 3;

/// The `Stripe-Signature` value for `body` signed with `secret` at `timestamp`: what Stripe
/// sends (and its libraries' `generate_signature_header` makes for tests).
pub fn sign_webhook(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(signature(secret, timestamp, body))
    )
}

fn signature(secret: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    mac(secret, timestamp, body)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// HMAC-SHA256 over `{t}.{body}`, keyed with the secret's UTF-8 bytes (the whole `whsec_…`
/// string: unlike Standard Webhooks, Stripe does not base64-decode it).
/// The most a `Stripe-Signature` header may hold before anything is computed: Stripe sends a
/// timestamp and one `v1` per signing secret (two during a rotation), and perhaps a `v0`.
const MAX_SIGNATURE_HEADER_BYTES: usize = 1024;
const MAX_SIGNATURE_ENTRIES: usize = 8;

/// Reads `t=<unix seconds>,v1=<hex>[,v1=…]` within the caps: the timestamp and the `v1`
/// signatures (other schemes, such as the test-mode `v0`, are ignored to prevent a downgrade).
fn read_signature_header(value: &str) -> Result<(i64, Vec<Vec<u8>>), WebhookRejection> {
    if value.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(WebhookRejection::BadSignature);
    }
    let mut timestamp: Option<i64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for (n, item) in value.split(',').enumerate() {
        if n >= MAX_SIGNATURE_ENTRIES {
            return Err(WebhookRejection::BadSignature);
        }
        match item.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse().ok(),
            Some(("v1", sig)) => {
                if let Ok(bytes) = hex::decode(sig) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    Ok((timestamp.ok_or(WebhookRejection::BadSignature)?, signatures))
}

#[cfg(test)]
thread_local! {
    /// How many HMACs this thread has computed (tests count the work a header causes).
    pub(crate) static HMACS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    #[cfg(test)]
    HMACS.with(|n| n.set(n.get() + 1));
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

pub struct StripeClient {
    http: OutboundClient,
    base_url: String,
    api_key: SecretString,
    webhook_secrets: Vec<SecretString>,
    session_expiry: Duration,
}

impl StripeClient {
    pub fn new(
        base_url: &str,
        api_key: SecretString,
        webhook_secrets: Vec<SecretString>,
        session_expiry: Duration,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = OutboundClient::new(connect_timeout, timeout)?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            webhook_secrets,
            session_expiry,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(self.api_key.expose_secret())
            .header("Stripe-Version", STRIPE_VERSION)
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ProviderError> {
        let response = self
            .http
            .send(self.request(reqwest::Method::GET, path).query(query))
            .await
            .map_err(transport_error)?;
        read(response).await
    }

    /// A form-encoded POST with an Idempotency-Key, retried on a lost or 5xx answer: Stripe
    /// answers a repeated key with the first request's result, so a retry never acts twice.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<T, ProviderError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match self
                .http
                .send(
                    self.request(reqwest::Method::POST, path)
                        .header("Idempotency-Key", idempotency_key)
                        .form(form),
                )
                .await
            {
                Ok(response) => read(response).await,
                Err(e) => Err(transport_error(e)),
            };
            match result {
                Err(ProviderError::Unavailable(_) | ProviderError::Unreachable(_))
                    if attempt < WRITE_ATTEMPTS =>
                {
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                other => return other,
            }
        }
    }

    async fn session(&self, id: &str) -> Result<wire::Session, ProviderError> {
        self.get(
            &format!("/v1/checkout/sessions/{id}"),
            &[("expand[]", "payment_intent".to_owned())],
        )
        .await
    }

    fn secrets(&self) -> impl Iterator<Item = &str> {
        self.webhook_secrets.iter().map(|s| s.expose_secret())
    }
}

/// Reads a success into `T`; maps a failure by status: 5xx, 429 and 409 (a concurrent request
/// with the same key) are "unavailable" (retryable), 404 "not found", other 4xx a refusal with
/// Stripe's error code (never its message, which may echo card details).
async fn read<T: serde::de::DeserializeOwned>(response: Response) -> Result<T, ProviderError> {
    let status = response.status();
    if status.is_success() {
        return response
            .json()
            .await
            .map_err(|e| ProviderError::InvalidResponse(e.without_url().to_string()));
    }
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::CONFLICT
    {
        return Err(ProviderError::Unavailable(format!(
            "HTTP {}",
            status.as_u16()
        )));
    }
    let code = response
        .json::<wire::ErrorBody>()
        .await
        .ok()
        .and_then(|b| b.error.code.or(b.error.kind));
    Err(match status {
        StatusCode::NOT_FOUND => ProviderError::NotFound,
        _ => ProviderError::Rejected {
            status: status.as_u16(),
            code,
        },
    })
}

fn from_unix(seconds: Option<i64>) -> Option<DateTime<Utc>> {
    seconds.and_then(|s| DateTime::from_timestamp(s, 0))
}

fn provider_payment(session: wire::Session) -> Result<ProviderPayment, ProviderError> {
    let status = session
        .our_status()
        .ok_or_else(|| ProviderError::InvalidResponse("unknown session status".into()))?;
    Ok(ProviderPayment {
        status,
        // Stripe reports no reason code for a session; a failed delayed payment is "failed".
        failure_code: None,
        next_url: session.url.clone(),
        amount: session.amount_total.unwrap_or_default(),
        reference: session.metadata.request_ref.clone().unwrap_or_default(),
        counterfoil_id: session
            .client_reference_id
            .clone()
            .or(session.metadata.counterfoil_payment_id.clone()),
        created_at: from_unix(session.created),
        // A session says when it was created, not when it was paid.
        finished_at: None,
        refund_available: None,
        provider_payment_id: session.id,
    })
}

fn provider_refund(refund: wire::Refund) -> Result<ProviderRefund, ProviderError> {
    let provider_status = refund.status.unwrap_or_else(|| "pending".into());
    let status = wire::refund_status(&provider_status)
        .ok_or_else(|| ProviderError::InvalidResponse("unknown refund status".into()))?;
    Ok(ProviderRefund {
        provider_refund_id: refund.id,
        status,
        provider_status,
        amount: refund.amount,
    })
}

fn created_range(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(&'static str, String)> {
    vec![
        ("created[gte]", from.timestamp().to_string()),
        ("created[lt]", to.timestamp().to_string()),
        ("limit", LIST_LIMIT.to_string()),
    ]
}

#[async_trait]
impl PaymentProvider for StripeClient {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Stripe
    }

    async fn create_payment(
        &self,
        request: &CreateSession<'_>,
    ) -> Result<ProviderPayment, ProviderError> {
        let id = request.payment_id.to_string();
        let expires_at = Utc::now()
            + chrono::Duration::from_std(self.session_expiry).unwrap_or(chrono::Duration::hours(1));
        let mut form: Vec<(String, String)> = [
            ("mode", "payment".to_owned()),
            ("line_items[0][price_data][currency]", "gbp".to_owned()),
            (
                "line_items[0][price_data][unit_amount]",
                request.amount.to_string(),
            ),
            (
                "line_items[0][price_data][product_data][name]",
                request.description.to_owned(),
            ),
            ("line_items[0][quantity]", "1".to_owned()),
            ("success_url", request.return_url.to_owned()),
            ("cancel_url", request.return_url.to_owned()),
            ("client_reference_id", id.clone()),
            ("metadata[counterfoil_payment_id]", id.clone()),
            ("metadata[request_ref]", request.reference.to_owned()),
            (
                "payment_intent_data[metadata][counterfoil_payment_id]",
                id.clone(),
            ),
            ("expires_at", expires_at.timestamp().to_string()),
            ("locale", "en-GB".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(email) = request.email {
            form.push(("customer_email".into(), email.to_owned()));
        }
        debug_assert_eq!(COUNTERFOIL_ID_KEY, "counterfoil_payment_id");
        let session: wire::Session = self
            .post("/v1/checkout/sessions", &form, &format!("create-{id}"))
            .await?;
        provider_payment(session)
    }

    async fn get_payment(
        &self,
        provider_payment_id: &str,
    ) -> Result<ProviderPayment, ProviderError> {
        provider_payment(self.session(provider_payment_id).await?)
    }

    /// Stripe cannot cancel a Checkout Session's payment; expiring the session stops it. The
    /// session is marked first, so its expiry reads as our cancellation (and its
    /// `checkout.session.expired` event says so) rather than as the payer running out of time.
    async fn cancel_payment(&self, provider_payment_id: &str) -> Result<(), ProviderError> {
        let _marked: wire::Session = self
            .post(
                &format!("/v1/checkout/sessions/{provider_payment_id}"),
                &[(
                    "metadata[counterfoil_cancelled]".to_owned(),
                    "true".to_owned(),
                )],
                &format!("mark-cancel-{provider_payment_id}"),
            )
            .await?;
        let expired: Result<wire::Session, _> = self
            .post(
                &format!("/v1/checkout/sessions/{provider_payment_id}/expire"),
                &[],
                &format!("expire-{provider_payment_id}"),
            )
            .await;
        match expired {
            Ok(_) => Ok(()),
            // Only an open session can be expired.
            Err(ProviderError::Rejected { status: 400, code }) => {
                Err(ProviderError::Conflict { code })
            }
            Err(e) => Err(e),
        }
    }

    async fn refund(
        &self,
        provider_payment_id: &str,
        amount: i64,
        // Stripe's own guard is the remaining charge; ours is the refund claim.
        _amount_available: i64,
        refund_id: &str,
    ) -> Result<ProviderRefund, ProviderError> {
        let session = self.session(provider_payment_id).await?;
        let Some(intent) = session.payment_intent.as_ref() else {
            return Err(ProviderError::Conflict {
                code: Some("no_payment_intent".into()),
            });
        };
        let ours = session.client_reference_id.clone().unwrap_or_default();
        let form: Vec<(String, String)> = [
            ("payment_intent", intent.id().to_owned()),
            ("amount", amount.to_string()),
            ("reason", "requested_by_customer".to_owned()),
            ("metadata[counterfoil_payment_id]", ours),
            ("metadata[checkout_session]", provider_payment_id.to_owned()),
            ("metadata[counterfoil_refund_id]", refund_id.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let refund: wire::Refund = self
            .post("/v1/refunds", &form, &format!("refund-{refund_id}"))
            .await?;
        provider_refund(refund)
    }

    async fn get_refund(
        &self,
        _provider_payment_id: &str,
        provider_refund_id: &str,
    ) -> Result<ProviderRefund, ProviderError> {
        provider_refund(
            self.get(&format!("/v1/refunds/{provider_refund_id}"), &[])
                .await?,
        )
    }

    async fn search_payments(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayment>, ProviderError> {
        let mut query = created_range(from, to);
        query.push(("expand[]", "data.payment_intent".into()));
        if let Some(after) = cursor {
            query.push(("starting_after", after.to_owned()));
        }
        let page: wire::List<wire::Session> = self.get("/v1/checkout/sessions", &query).await?;
        let next = page
            .has_more
            .then(|| page.data.last().map(|s| s.id.clone()))
            .flatten();
        Ok(SearchPage {
            items: page
                .data
                .into_iter()
                .filter_map(|s| provider_payment(s).ok())
                .collect(),
            next,
        })
    }

    async fn search_refunds(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderRefundRecord>, ProviderError> {
        let mut query = created_range(from, to);
        if let Some(after) = cursor {
            query.push(("starting_after", after.to_owned()));
        }
        let page: wire::List<wire::Refund> = self.get("/v1/refunds", &query).await?;
        let next = page
            .has_more
            .then(|| page.data.last().map(|r| r.id.clone()))
            .flatten();
        Ok(SearchPage {
            items: page
                .data
                .into_iter()
                .filter_map(|r| {
                    // Refunds we asked for name their session; others (made in Stripe's
                    // dashboard) only their PaymentIntent, and show up as unmatched.
                    let provider_payment_id = r
                        .metadata
                        .checkout_session
                        .clone()
                        .or(r.payment_intent.clone())?;
                    Some(ProviderRefundRecord {
                        provider_payment_id,
                        refund: provider_refund(r).ok()?,
                    })
                })
                .collect(),
            next,
        })
    }

    async fn search_payouts(
        &self,
        since: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayout>, ProviderError> {
        self.payouts_page(since, cursor).await
    }

    async fn payout_items(
        &self,
        payout_id: &str,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayoutItem>, ProviderError> {
        self.payout_items_page(payout_id, cursor).await
    }

    fn verify_webhook(
        &self,
        header: HeaderLookup<'_>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), WebhookRejection> {
        let value = header(SIGNATURE_HEADER).ok_or(WebhookRejection::MissingSignature)?;
        let (timestamp, signatures) = read_signature_header(&value)?;
        // One HMAC per secret, however many signatures the header carries; each signature is
        // then compared with it in constant time.
        let matched = self.secrets().fold(false, |any, secret| {
            let expected = mac(secret, timestamp, body).finalize().into_bytes();
            let found = signatures.iter().fold(false, |hit, sig| {
                hit | bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &sig[..]))
            });
            any | found
        });
        if !matched {
            return Err(WebhookRejection::BadSignature);
        }
        let signed_at =
            DateTime::from_timestamp(timestamp, 0).ok_or(WebhookRejection::BadSignature)?;
        if (now - signed_at).abs() > TOLERANCE {
            return Err(WebhookRejection::StaleTimestamp);
        }
        Ok(())
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<ProviderEvent, WebhookRejection> {
        let head: wire::EventHead = super::read_message(body)?;
        let mut event = ProviderEvent {
            message_id: head.id,
            occurred_at: from_unix(head.created),
            provider_payment_id: String::new(),
            reported: None,
            failure_code: None,
            counterfoil_id: None,
            refund_activity: false,
            event_type: head.event_type,
        };
        match event.event_type.as_str() {
            kind @ ("checkout.session.completed"
            | "checkout.session.async_payment_succeeded"
            | "checkout.session.async_payment_failed"
            | "checkout.session.expired") => {
                let session: wire::EventOf<wire::Session> = super::read_message(body)?;
                let session = session.data.object;
                event.reported = match kind {
                    "checkout.session.async_payment_succeeded" => {
                        Some(crate::domain::PaymentStatus::Succeeded)
                    }
                    "checkout.session.async_payment_failed" => {
                        Some(crate::domain::PaymentStatus::Failed)
                    }
                    _ => session.our_status(),
                };
                event.counterfoil_id = session.client_reference_id.clone();
                event.provider_payment_id = session.id;
            }
            "charge.refunded" => {
                let charge: wire::EventOf<wire::Charge> = super::read_message(body)?;
                event.counterfoil_id = charge.data.object.metadata.counterfoil_payment_id;
                event.refund_activity = true;
            }
            "refund.created" | "refund.updated" | "refund.failed" => {
                let refund: wire::EventOf<wire::Refund> = super::read_message(body)?;
                let metadata = refund.data.object.metadata;
                event.provider_payment_id = metadata.checkout_session.unwrap_or_default();
                event.counterfoil_id = metadata.counterfoil_payment_id;
                event.refund_activity = true;
            }
            // Any other type is acknowledged and recorded as ignored; its object is not read.
            _ => {}
        }
        Ok(event)
    }

    /// A create whose answer was lost: Stripe keeps our Idempotency-Key's answer, but looking
    /// for a session that names our payment needs no second POST.
    async fn find_payment(
        &self,
        _reference: &str,
        payment_id: &PaymentId,
        created_from: DateTime<Utc>,
    ) -> Result<Option<ProviderPayment>, ProviderError> {
        let wanted = payment_id.to_string();
        let mut cursor: Option<String> = None;
        let until = Utc::now() + chrono::Duration::minutes(5);
        loop {
            let page = self
                .search_payments(
                    created_from - chrono::Duration::minutes(5),
                    until,
                    cursor.as_deref(),
                )
                .await?;
            if let Some(found) = page
                .items
                .into_iter()
                .find(|p| p.counterfoil_id.as_deref() == Some(wanted.as_str()))
            {
                return Ok(Some(found));
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests;
