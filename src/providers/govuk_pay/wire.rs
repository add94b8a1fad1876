//! GOV.UK Pay's JSON shapes, reduced to an allow-list of the fields Counterfoil reads, and the one
//! place its statuses map to ours. Everything else in a body (card details, cardholder name,
//! billing address, email) is never deserialised.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::PaymentStatus;
use crate::providers::{ProviderPayment, COUNTERFOIL_ID_KEY};

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
    pub results: Vec<PaymentResource>,
}

/// GOV.UK Pay's error body (RequestError / ErrorResponse).
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub code: Option<String>,
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
}
