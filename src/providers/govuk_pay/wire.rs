//! GOV.UK Pay's JSON shapes, reduced to an allow-list of the fields Counterfoil reads, and the one
//! place its statuses map to ours. Everything else in a body (card details, cardholder name,
//! billing address, email) is never deserialised.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::refund::RefundStatus;
use crate::domain::PaymentStatus;
use crate::providers::{ProviderPayment, ProviderRefund, COUNTERFOIL_ID_KEY};

/// `POST /v1/payments` body (CreateCardPaymentRequest).
#[derive(Debug, Serialize)]
pub struct CreatePaymentRequest<'a> {
    pub amount: i64,
    pub reference: &'a str,
    pub description: &'a str,
    pub return_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    pub metadata: BTreeMap<&'a str, &'a str>,
    pub language: &'static str,
}

/// The fields of a payment resource (CreatePaymentResult / PaymentWithAllLinks) that we read.
#[derive(Debug, Deserialize)]
pub struct PaymentResource {
    pub payment_id: String,
    pub amount: i64,
    pub reference: String,
    pub state: PaymentState,
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(rename = "_links", default)]
    pub links: Option<PaymentLinks>,
    #[serde(default)]
    pub created_date: Option<String>,
    #[serde(default)]
    pub refund_summary: Option<RefundSummary>,
    #[serde(default)]
    pub settlement_summary: Option<SettlementSummary>,
    /// Accounts on GOV.UK Pay's Stripe-backed service: Stripe's fee, and what reached the bank.
    #[serde(default)]
    pub fee: Option<i64>,
    #[serde(default)]
    pub net_amount: Option<i64>,
}

/// When the payment was captured (the provider's own time for when the money was taken) and,
/// on GOV.UK Pay's Stripe-backed service, the day it was paid into the service's bank account.
#[derive(Debug, Deserialize)]
pub struct SettlementSummary {
    #[serde(default)]
    pub capture_submit_time: Option<String>,
    #[serde(default)]
    pub settled_date: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RefundSummary {
    #[serde(default)]
    pub amount_available: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct PaymentState {
    pub status: String,
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PaymentLinks {
    #[serde(default)]
    pub next_url: Option<Link>,
}

#[derive(Debug, Deserialize)]
pub struct Link {
    pub href: String,
}

/// `GET /v1/payments` (search) result page.
#[derive(Debug, Deserialize)]
pub struct SearchResults {
    #[serde(default)]
    pub total: u64,
    pub results: Vec<PaymentResource>,
}

/// `GET /v1/refunds` (search) result page.
#[derive(Debug, Deserialize)]
pub struct RefundSearchResults {
    #[serde(default)]
    pub total: u64,
    pub results: Vec<RefundSearchResult>,
}

#[derive(Debug, Deserialize)]
pub struct RefundSearchResult {
    pub payment_id: String,
    #[serde(flatten)]
    pub refund: RefundResource,
}

/// GOV.UK Pay's error body (RequestError / ErrorResponse).
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub code: Option<String>,
}

/// A webhook message (pay-webhooks' WebhookMessageBody), allow-listed: ids, type, time and the
/// payment's state. `card_details`, `email`, `metadata`, cardholder name and address are never read.
#[derive(Debug, Deserialize)]
pub struct WebhookMessage {
    pub webhook_message_id: String,
    #[serde(default)]
    pub created_date: Option<String>,
    pub resource_id: String,
    #[serde(default)]
    pub resource_type: Option<String>,
    pub event_type: String,
    #[serde(default)]
    pub resource: Option<WebhookResource>,
}

#[derive(Debug, Deserialize)]
pub struct WebhookResource {
    #[serde(default)]
    pub state: Option<PaymentState>,
}

/// The status a known GOV.UK Pay event type implies, when the resource carries no usable state.
fn event_status(event_type: &str) -> Option<PaymentStatus> {
    Some(match event_type {
        "card_payment_started" => PaymentStatus::InProgress,
        "card_payment_succeeded" | "card_payment_captured" => PaymentStatus::Succeeded,
        "card_payment_failed" => PaymentStatus::Failed,
        "card_payment_expired" => PaymentStatus::Expired,
        _ => return None,
    })
}

/// Event types Counterfoil acts on. Anything else (the list is open-ended) is acknowledged and
/// recorded as ignored.
pub const KNOWN_EVENT_TYPES: &[&str] = &[
    "card_payment_started",
    "card_payment_succeeded",
    "card_payment_captured",
    "card_payment_failed",
    "card_payment_expired",
    "card_payment_refunded",
];

impl WebhookMessage {
    /// The status this message reports. The resource is a snapshot that may already be ahead of
    /// the event type, so its state wins when we understand it (forward-only rules make that safe).
    pub fn reported(&self) -> (Option<PaymentStatus>, Option<String>) {
        let is_payment = self
            .resource_type
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case("payment"));
        if !is_payment || !KNOWN_EVENT_TYPES.contains(&self.event_type.as_str()) {
            return (None, None);
        }
        let state = self.resource.as_ref().and_then(|r| r.state.as_ref());
        let code = state.and_then(|s| s.code.clone());
        let from_state = state.and_then(|s| map_status(&s.status, s.code.as_deref()));
        (from_state.or_else(|| event_status(&self.event_type)), code)
    }
}

/// `POST /v1/payments/{id}/refunds` body.
#[derive(Debug, Serialize)]
pub struct RefundRequest {
    pub amount: i64,
    pub refund_amount_available: i64,
}

/// The fields of a Refund resource that we read.
#[derive(Debug, Deserialize)]
pub struct RefundResource {
    pub refund_id: String,
    pub amount: i64,
    pub status: String,
    /// The day Stripe took it from a payout (Stripe-backed accounts), once it has.
    #[serde(default)]
    pub settlement_summary: Option<SettlementSummary>,
}

/// GOV.UK Pay refund status → ours. `error` is not quite final at GOV.UK Pay (it can still turn
/// into `success`), so failed refunds are re-checked for a while.
pub fn map_refund_status(status: &str) -> Option<RefundStatus> {
    Some(match status {
        "submitted" => RefundStatus::Pending,
        "success" => RefundStatus::Succeeded,
        "error" => RefundStatus::Failed,
        _ => return None,
    })
}

impl RefundResource {
    pub fn into_provider_refund(self) -> Option<ProviderRefund> {
        Some(ProviderRefund {
            status: map_refund_status(&self.status)?,
            provider_refund_id: self.refund_id,
            provider_status: self.status,
            amount: self.amount,
        })
    }
}

/// GOV.UK Pay status (and failure code) → Counterfoil status. The only place this mapping lives.
/// Also accepts the ledger spellings webhooks may carry (`declined`, `timedout`).
pub fn map_status(status: &str, code: Option<&str>) -> Option<PaymentStatus> {
    Some(match status {
        "created" => PaymentStatus::Created,
        "started" | "submitted" | "capturable" => PaymentStatus::InProgress,
        "success" => PaymentStatus::Succeeded,
        "failed" => match code {
            Some("P0020") => PaymentStatus::Expired,
            Some("P0030") | Some("P0040") => PaymentStatus::Cancelled,
            _ => PaymentStatus::Failed,
        },
        "declined" => PaymentStatus::Failed,
        "timedout" => PaymentStatus::Expired,
        "cancelled" => PaymentStatus::Cancelled,
        "error" => PaymentStatus::Error,
        _ => return None,
    })
}

/// An RFC 3339 time as GOV.UK Pay writes them.
fn instant(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

impl PaymentResource {
    /// Maps to the provider-neutral model; `None` when the status is one we do not know.
    pub fn into_provider_payment(self) -> Option<ProviderPayment> {
        let status = map_status(&self.state.status, self.state.code.as_deref())?;
        let counterfoil_id = self
            .metadata
            .as_ref()
            .and_then(|m| m.get(COUNTERFOIL_ID_KEY))
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        Some(ProviderPayment {
            provider_payment_id: self.payment_id,
            failure_code: (status != PaymentStatus::Succeeded)
                .then_some(self.state.code)
                .flatten(),
            status,
            next_url: self.links.and_then(|l| l.next_url).map(|l| l.href),
            amount: self.amount,
            reference: self.reference,
            counterfoil_id,
            created_at: self.created_date.as_deref().and_then(instant),
            finished_at: self
                .settlement_summary
                .and_then(|s| s.capture_submit_time)
                .filter(|_| status == PaymentStatus::Succeeded)
                .as_deref()
                .and_then(instant),
            refund_available: self.refund_summary.and_then(|r| r.amount_available),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus::*;

    #[test]
    fn status_mapping_follows_the_contract() {
        let cases = [
            ("created", None, Created),
            ("started", None, InProgress),
            ("submitted", None, InProgress),
            ("capturable", None, InProgress),
            ("success", None, Succeeded),
            ("failed", Some("P0010"), Failed),
            ("failed", Some("P0020"), Expired),
            ("failed", Some("P0030"), Cancelled),
            ("failed", Some("P0040"), Cancelled),
            ("cancelled", Some("P0040"), Cancelled),
            ("error", Some("P0050"), Error),
            ("declined", None, Failed),
            ("timedout", None, Expired),
        ];
        for (status, code, expected) in cases {
            assert_eq!(
                map_status(status, code),
                Some(expected),
                "{status} {code:?}"
            );
        }
        assert_eq!(map_status("teleported", None), None);
    }

    #[test]
    fn webhook_state_wins_over_the_event_type_and_unknown_types_report_nothing() {
        let message = |event: &str, state: &str| -> WebhookMessage {
            serde_json::from_str(&format!(
                r#"{{"webhook_message_id": "m1", "resource_id": "p1", "resource_type": "payment",
                    "event_type": "{event}", "created_date": "2019-07-11T10:36:26.988Z",
                    "resource": {{"state": {state}}}}}"#
            ))
            .unwrap()
        };
        assert_eq!(
            message("card_payment_started", r#"{"status": "success"}"#)
                .reported()
                .0,
            Some(Succeeded)
        );
        assert_eq!(
            message(
                "card_payment_failed",
                r#"{"status": "failed", "code": "P0030"}"#
            )
            .reported(),
            (Some(Cancelled), Some("P0030".into()))
        );
        assert_eq!(
            message("card_payment_failed", r#"{"status": "declined"}"#)
                .reported()
                .0,
            Some(Failed)
        );
        assert_eq!(
            message("card_payment_expired", r#"{"status": "teleported"}"#)
                .reported()
                .0,
            Some(Expired)
        );
        assert_eq!(
            message("card_payment_settled", r#"{"status": "success"}"#)
                .reported()
                .0,
            None
        );
        assert_eq!(
            message("brand_new_event", r#"{"status": "success"}"#)
                .reported()
                .0,
            None
        );
    }

    #[test]
    fn card_details_in_a_response_are_never_read() {
        let body = r#"{
            "payment_id": "hu20sqlact5260q2nanm0q8u93", "amount": 1200, "reference": "CRM-1",
            "state": {"status": "success", "finished": true},
            "email": "citizen@example.org",
            "card_details": {"last_digits_card_number": "1234", "first_digits_card_number": "424242",
              "cardholder_name": "Ms Distinctive Name", "expiry_date": "04/29",
              "billing_address": {"line1": "1 Secret Street", "postcode": "ZZ1 1ZZ"}},
            "metadata": {"counterfoil_payment_id": "pay_1"},
            "_links": {"next_url": {"href": "https://card.example/secure/1", "method": "GET"}}
        }"#;
        let resource: PaymentResource = serde_json::from_str(body).unwrap();
        let mapped = resource.into_provider_payment().unwrap();
        let kept = format!("{mapped:?}");
        for secret in [
            "Distinctive",
            "424242",
            "04/29",
            "Secret Street",
            "ZZ1",
            "citizen@",
        ] {
            assert!(!kept.contains(secret), "{secret} leaked into {kept}");
        }
        assert_eq!(mapped.status, Succeeded);
        assert_eq!(mapped.counterfoil_id.as_deref(), Some("pay_1"));
    }

    #[test]
    fn a_succeeded_payment_is_dated_by_its_capture_and_no_other_is() {
        let payment = |status: &str| -> PaymentResource {
            serde_json::from_str(&format!(
                r#"{{"payment_id": "p1", "amount": 100, "reference": "R1",
                    "state": {{"status": "{status}", "finished": true}},
                    "settlement_summary": {{"capture_submit_time": "2026-03-01T09:30:00.000Z",
                                            "captured_date": "2026-03-01"}}}}"#
            ))
            .unwrap()
        };
        let captured = payment("success").into_provider_payment().unwrap();
        assert_eq!(
            captured.finished_at.map(|t| t.to_rfc3339()),
            Some("2026-03-01T09:30:00+00:00".to_owned())
        );
        assert_eq!(
            payment("cancelled")
                .into_provider_payment()
                .unwrap()
                .finished_at,
            None
        );
    }
}
