//! Stripe's shapes, read through an allow-list: only ids, statuses, amounts, times and our own
//! metadata keys are ever deserialised. Card details (`payment_method_details`, `last4`,
//! fingerprints), `billing_details`, `customer_details`, `last_payment_error` and free-text
//! messages have no field here, so they are skipped unread. The one status mapping lives here.

use serde::Deserialize;

use crate::domain::refund::RefundStatus;
use crate::domain::PaymentStatus;

/// The metadata keys Counterfoil itself sets; any other key is never read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OurMetadata {
    pub counterfoil_payment_id: Option<String>,
    pub request_ref: Option<String>,
    pub checkout_session: Option<String>,
    /// Set by us just before we expire a session: its expiry is then our cancellation.
    pub counterfoil_cancelled: Option<String>,
}

/// A PaymentIntent, as an id or (when expanded) its id and status.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum IntentRef {
    Id(String),
    Expanded(Intent),
}

impl IntentRef {
    pub fn id(&self) -> &str {
        match self {
            Self::Id(id) => id,
            Self::Expanded(intent) => &intent.id,
        }
    }

    pub fn status(&self) -> Option<&str> {
        match self {
            Self::Id(_) => None,
            Self::Expanded(intent) => intent.status.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Intent {
    pub id: String,
    pub status: Option<String>,
}

/// A Checkout Session.
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    pub id: String,
    pub status: Option<String>,
    pub payment_status: Option<String>,
    pub url: Option<String>,
    pub amount_total: Option<i64>,
    pub client_reference_id: Option<String>,
    pub created: Option<i64>,
    #[serde(default)]
    pub metadata: OurMetadata,
    pub payment_intent: Option<IntentRef>,
}

impl Session {
    /// Our status for the session (and its PaymentIntent, when expanded).
    pub fn our_status(&self) -> Option<PaymentStatus> {
        let status = session_status(
            self.status.as_deref()?,
            self.payment_status.as_deref().unwrap_or("unpaid"),
            self.payment_intent.as_ref().and_then(IntentRef::status),
        )?;
        // Stripe cannot cancel a session, only expire it: one we marked first was cancelled.
        Some(match (status, &self.metadata.counterfoil_cancelled) {
            (PaymentStatus::Expired, Some(_)) => PaymentStatus::Cancelled,
            (status, _) => status,
        })
    }
}

/// The one mapping from Stripe's session state to ours: open → created; complete and paid (or
/// nothing to pay) → succeeded; complete but unpaid (a delayed method) → in progress, unless its
/// PaymentIntent was cancelled → failed; expired → expired.
pub fn session_status(
    status: &str,
    payment_status: &str,
    intent_status: Option<&str>,
) -> Option<PaymentStatus> {
    match (status, payment_status) {
        ("open", _) => Some(PaymentStatus::Created),
        ("complete", "paid" | "no_payment_required") => Some(PaymentStatus::Succeeded),
        ("complete", "unpaid") if intent_status == Some("canceled") => Some(PaymentStatus::Failed),
        ("complete", "unpaid") => Some(PaymentStatus::InProgress),
        ("expired", _) => Some(PaymentStatus::Expired),
        _ => None,
    }
}

/// A Refund. (Its `destination_details` hold an ARN, never read.)
#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub status: Option<String>,
    pub payment_intent: Option<String>,
    pub created: Option<i64>,
    #[serde(default)]
    pub metadata: OurMetadata,
}

pub fn refund_status(status: &str) -> Option<RefundStatus> {
    match status {
        "pending" | "requires_action" => Some(RefundStatus::Pending),
        "succeeded" => Some(RefundStatus::Succeeded),
        "failed" | "canceled" => Some(RefundStatus::Failed),
        _ => None,
    }
}

/// A Charge: only which payment it belongs to. Its card and billing details are never read.
#[derive(Debug, Clone, Deserialize)]
pub struct Charge {
    pub id: String,
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub metadata: OurMetadata,
}

/// A list page.
#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

/// An event's envelope, without its object (read in a second pass, typed by `type`).
#[derive(Debug, Clone, Deserialize)]
pub struct EventHead {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created: Option<i64>,
}

/// An event's object, typed.
#[derive(Debug, Clone, Deserialize)]
pub struct EventOf<T> {
    pub data: EventData<T>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventData<T> {
    pub object: T,
}

/// `{"error": {type, code, …}}`: only the type and code are read (a card error's message and
/// embedded payment method are not).
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub code: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_session_state_maps_once() {
        use PaymentStatus as S;
        assert_eq!(session_status("open", "unpaid", None), Some(S::Created));
        assert_eq!(session_status("complete", "paid", None), Some(S::Succeeded));
        assert_eq!(
            session_status("complete", "no_payment_required", None),
            Some(S::Succeeded)
        );
        assert_eq!(
            session_status("complete", "unpaid", Some("processing")),
            Some(S::InProgress)
        );
        assert_eq!(
            session_status("complete", "unpaid", Some("canceled")),
            Some(S::Failed)
        );
        assert_eq!(session_status("expired", "unpaid", None), Some(S::Expired));
        assert_eq!(session_status("something_new", "paid", None), None);
    }

    #[test]
    fn a_session_we_expired_reads_as_cancelled() {
        let session = |metadata: &str| -> Session {
            serde_json::from_str(&format!(
                r#"{{"id":"cs_1","status":"expired","payment_status":"unpaid","metadata":{metadata}}}"#
            ))
            .unwrap()
        };
        assert_eq!(session("{}").our_status(), Some(PaymentStatus::Expired));
        assert_eq!(
            session(r#"{"counterfoil_cancelled":"true"}"#).our_status(),
            Some(PaymentStatus::Cancelled)
        );
    }

    #[test]
    fn card_details_in_a_charge_are_never_read() {
        let charge: Charge = serde_json::from_str(
            r#"{"id":"ch_1","payment_intent":"pi_1","metadata":{"counterfoil_payment_id":"pay_x","note":"free text"},
               "payment_method_details":{"card":{"last4":"4242","exp_month":12,"exp_year":2030,"fingerprint":"Xt5EWLLDS7FJjR1c","iin":"424242"}},
               "billing_details":{"name":"Ottoline Quillfeather","email":"o@example.com"}}"#,
        )
        .unwrap();
        let kept = format!("{charge:?}");
        for never in ["4242", "2030", "Xt5EWLLDS7FJjR1c", "Ottoline", "free text"] {
            assert!(!kept.contains(never), "{never} was read: {kept}");
        }
        assert_eq!(
            charge.metadata.counterfoil_payment_id.as_deref(),
            Some("pay_x")
        );
    }
}
