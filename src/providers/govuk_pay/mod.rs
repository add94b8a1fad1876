//! The GOV.UK Pay API client (reqwest + rustls): create, get, cancel and search payments.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{
    transport_error, CreateSession, HeaderLookup, PaymentProvider, ProviderError, ProviderPayment,
    ProviderPayout, ProviderPayoutItem, ProviderRefund, ProviderRefundRecord, SearchPage,
    WebhookRejection, COUNTERFOIL_ID_KEY,
};

/// GOV.UK Pay's largest search page.
const SEARCH_PAGE: u32 = 500;

fn search_date(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}
use crate::domain::{PaymentId, ProviderEvent, ProviderKind};
use crate::outbound::OutboundClient;

/// GOV.UK Pay signs each webhook body with HMAC-SHA256, sent as lowercase hex in this header.
pub const SIGNATURE_HEADER: &str = "Pay-Signature";

/// The `Pay-Signature` value for `body` signed with `secret`.
pub fn sign_webhook(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

mod settlements;
pub mod wire;

pub struct GovukPayClient {
    http: OutboundClient,
    base_url: String,
    api_key: SecretString,
    webhook_secrets: Vec<SecretString>,
}

impl GovukPayClient {
    pub fn new(
        base_url: &str,
        api_key: SecretString,
        webhook_secrets: Vec<SecretString>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = OutboundClient::new(connect_timeout, timeout)?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            webhook_secrets,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// One page of a GOV.UK Pay search over created dates [from, to); `None` past the last page.
    async fn search<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: u32,
    ) -> Result<Option<T>, ProviderError> {
        let response = self
            .http
            .send(self.request(reqwest::Method::GET, path).query(&[
                ("from_date", search_date(from)),
                ("to_date", search_date(to)),
                ("page", page.to_string()),
                ("display_size", SEARCH_PAGE.to_string()),
            ]))
            .await
            .map_err(transport_error)?;
        if response.status() == StatusCode::NOT_FOUND {
            // P0402 / P1100: past the last page.
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(status_error(response).await);
        }
        response
            .json()
            .await
            .map(Some)
            .map_err(|e| ProviderError::InvalidResponse(e.without_url().to_string()))
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(self.api_key.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
    }
}

/// GOV.UK Pay's search pages are numbered from 1; our cursor is that number.
fn page_number(cursor: Option<&str>) -> Result<u32, ProviderError> {
    match cursor {
        None => Ok(1),
        Some(text) => text
            .parse()
            .map_err(|_| ProviderError::InvalidResponse("not a GOV.UK Pay page number".into())),
    }
}

async fn error_code(response: Response) -> Option<String> {
    response
        .json::<wire::ErrorBody>()
        .await
        .ok()
        .and_then(|b| b.code)
}

/// Maps a non-success answer: 5xx and 429 are "unavailable", 404 is "not found", 409 a state
/// conflict, any other 4xx a refusal.
async fn status_error(response: Response) -> ProviderError {
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return ProviderError::Unavailable(format!("HTTP {}", status.as_u16()));
    }
    let code = error_code(response).await;
    match status {
        StatusCode::NOT_FOUND => ProviderError::NotFound,
        StatusCode::CONFLICT => ProviderError::Conflict { code },
        _ => ProviderError::Rejected {
            status: status.as_u16(),
            code,
        },
    }
}

async fn read_payment(response: Response) -> Result<ProviderPayment, ProviderError> {
    let resource: wire::PaymentResource = response
        .json()
        .await
        .map_err(|e| ProviderError::InvalidResponse(e.without_url().to_string()))?;
    resource
        .into_provider_payment()
        .ok_or_else(|| ProviderError::InvalidResponse("unknown payment status".into()))
}

async fn read_refund(response: Response) -> Result<ProviderRefund, ProviderError> {
    let resource: wire::RefundResource = response
        .json()
        .await
        .map_err(|e| ProviderError::InvalidResponse(e.without_url().to_string()))?;
    resource
        .into_provider_refund()
        .ok_or_else(|| ProviderError::InvalidResponse("unknown refund status".into()))
}

#[async_trait]
impl PaymentProvider for GovukPayClient {
    fn kind(&self) -> ProviderKind {
        ProviderKind::GovukPay
    }

    async fn create_payment(
        &self,
        request: &CreateSession<'_>,
    ) -> Result<ProviderPayment, ProviderError> {
        let mut metadata: BTreeMap<&str, &str> = request
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        metadata.insert(COUNTERFOIL_ID_KEY, request.payment_id.as_ref());
        let body = wire::CreatePaymentRequest {
            amount: request.amount,
            reference: request.reference,
            description: request.description,
            return_url: request.return_url,
            email: request.email,
            metadata,
            language: "en",
        };
        let response = self
            .http
            .send(
                self.request(reqwest::Method::POST, "/v1/payments")
                    .json(&body),
            )
            .await
            .map_err(transport_error)?;
        if response.status() != StatusCode::CREATED {
            return Err(status_error(response).await);
        }
        match read_payment(response).await {
            // A 201 whose body we cannot read still created a payment: the outcome is unknown.
            Err(ProviderError::InvalidResponse(why)) => Err(ProviderError::Unavailable(format!(
                "created, but the answer was unreadable: {why}"
            ))),
            other => other,
        }
    }

    async fn get_payment(
        &self,
        provider_payment_id: &str,
    ) -> Result<ProviderPayment, ProviderError> {
        let response = self
            .http
            .send(self.request(
                reqwest::Method::GET,
                &format!("/v1/payments/{provider_payment_id}"),
            ))
            .await
            .map_err(transport_error)?;
        if !response.status().is_success() {
            return Err(status_error(response).await);
        }
        read_payment(response).await
    }

    async fn cancel_payment(&self, provider_payment_id: &str) -> Result<(), ProviderError> {
        let response = self
            .http
            .send(
                self.request(
                    reqwest::Method::POST,
                    &format!("/v1/payments/{provider_payment_id}/cancel"),
                )
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                // GOV.UK Pay's firewall refuses empty POST bodies.
                .body("{}"),
            )
            .await
            .map_err(transport_error)?;
        match response.status() {
            StatusCode::NO_CONTENT => Ok(()),
            // 400 P0501: there is no cancel link any more, i.e. the payment cannot be cancelled.
            StatusCode::BAD_REQUEST => Err(ProviderError::Conflict {
                code: error_code(response).await,
            }),
            _ => Err(status_error(response).await),
        }
    }

    async fn search_payments(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayment>, ProviderError> {
        let page = page_number(cursor)?;
        let Some(results) = self
            .search::<wire::SearchResults>("/v1/payments", from, to, page)
            .await?
        else {
            return Ok(SearchPage::default());
        };
        Ok(SearchPage {
            next: next_page(page, results.total),
            items: results
                .results
                .into_iter()
                .filter_map(wire::PaymentResource::into_provider_payment)
                .collect(),
        })
    }

    async fn search_payouts(
        &self,
        since: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayout>, ProviderError> {
        self.settlements_page(since, cursor).await
    }

    async fn payout_items(
        &self,
        payout_id: &str,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayoutItem>, ProviderError> {
        self.settlement_items_page(payout_id, cursor).await
    }

    async fn search_refunds(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderRefundRecord>, ProviderError> {
        let page = page_number(cursor)?;
        let Some(results) = self
            .search::<wire::RefundSearchResults>("/v1/refunds", from, to, page)
            .await?
        else {
            return Ok(SearchPage::default());
        };
        Ok(SearchPage {
            next: next_page(page, results.total),
            items: results
                .results
                .into_iter()
                .filter_map(|r| {
                    Some(ProviderRefundRecord {
                        provider_payment_id: r.payment_id,
                        refund: r.refund.into_provider_refund()?,
                    })
                })
                .collect(),
        })
    }

    async fn refund(
        &self,
        provider_payment_id: &str,
        amount: i64,
        amount_available: i64,
        // GOV.UK Pay takes no idempotency key; its guard is `refund_amount_available`.
        _refund_id: &str,
    ) -> Result<ProviderRefund, ProviderError> {
        let response = self
            .http
            .send(
                self.request(
                    reqwest::Method::POST,
                    &format!("/v1/payments/{provider_payment_id}/refunds"),
                )
                .json(&wire::RefundRequest {
                    amount,
                    refund_amount_available: amount_available,
                }),
            )
            .await
            .map_err(transport_error)?;
        if !response.status().is_success() {
            return Err(status_error(response).await);
        }
        match read_refund(response).await {
            // Accepted, but unreadable: whether a refund exists is unknown.
            Err(ProviderError::InvalidResponse(why)) => Err(ProviderError::Unavailable(format!(
                "refund accepted, but the answer was unreadable: {why}"
            ))),
            other => other,
        }
    }

    async fn get_refund(
        &self,
        provider_payment_id: &str,
        provider_refund_id: &str,
    ) -> Result<ProviderRefund, ProviderError> {
        let response = self
            .http
            .send(self.request(
                reqwest::Method::GET,
                &format!("/v1/payments/{provider_payment_id}/refunds/{provider_refund_id}"),
            ))
            .await
            .map_err(transport_error)?;
        if !response.status().is_success() {
            return Err(status_error(response).await);
        }
        read_refund(response).await
    }

    fn verify_webhook(
        &self,
        header: HeaderLookup<'_>,
        body: &[u8],
        // GOV.UK Pay signs no timestamp.
        _now: DateTime<Utc>,
    ) -> Result<(), WebhookRejection> {
        let signature = header(SIGNATURE_HEADER).ok_or(WebhookRejection::MissingSignature)?;
        // One HMAC-SHA256 in hex is 64 characters: anything much longer is refused unread.
        if signature.len() > 128 {
            return Err(WebhookRejection::BadSignature);
        }
        let signature =
            hex::decode(signature.trim()).map_err(|_| WebhookRejection::BadSignature)?;
        let matches = |secret: &SecretString| {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
                .expect("HMAC takes any key length");
            mac.update(body);
            mac.verify_slice(&signature).is_ok()
        };
        // Every secret is tried, so timing does not reveal which one matched.
        let matched = self
            .webhook_secrets
            .iter()
            .fold(false, |any, secret| matches(secret) | any);
        if matched {
            Ok(())
        } else {
            Err(WebhookRejection::BadSignature)
        }
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<ProviderEvent, WebhookRejection> {
        let message: wire::WebhookMessage = super::read_message(body)?;
        let (reported, failure_code) = message.reported();
        Ok(ProviderEvent {
            occurred_at: message
                .created_date
                .as_deref()
                .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                .map(|d| d.with_timezone(&Utc)),
            refund_activity: message.event_type == "card_payment_refunded",
            message_id: message.webhook_message_id,
            event_type: message.event_type,
            provider_payment_id: message.resource_id,
            reported,
            failure_code,
            // GOV.UK Pay's messages always name the payment by its own id.
            counterfoil_id: None,
        })
    }

    async fn find_payment(
        &self,
        reference: &str,
        payment_id: &PaymentId,
        created_from: DateTime<Utc>,
    ) -> Result<Option<ProviderPayment>, ProviderError> {
        // Search by our reference from a little before our row was written (clock skew).
        let from = (created_from - chrono::Duration::minutes(5))
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let response = self
            .http
            .send(self.request(reqwest::Method::GET, "/v1/payments").query(&[
                ("reference", reference),
                ("from_date", &from),
                ("display_size", "500"),
            ]))
            .await
            .map_err(transport_error)?;
        if !response.status().is_success() {
            return Err(status_error(response).await);
        }
        let page: wire::SearchResults = response
            .json()
            .await
            .map_err(|e| ProviderError::InvalidResponse(e.without_url().to_string()))?;
        Ok(page
            .results
            .into_iter()
            .filter_map(wire::PaymentResource::into_provider_payment)
            .find(|p| p.counterfoil_id.as_deref() == Some(payment_id.as_ref())))
    }
}
/// The cursor of the page after `page` (GOV.UK Pay numbers them from 1), if there is one.
fn next_page(page: u32, total: u64) -> Option<String> {
    (u64::from(page) * u64::from(SEARCH_PAGE) < total).then(|| (page + 1).to_string())
}
