//! The public JSON shapes of Counterfoil's resources, from the domain alone: what the API
//! answers (and replays for a repeated Idempotency-Key), what CRM notifications carry and what a
//! data-protection export holds. One shape per resource, whichever way it leaves.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::domain::refund::Refund;
use crate::domain::{Payment, PaymentEvent};

/// How the API writes every time: UTC, RFC 3339, to the microsecond.
pub(crate) fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The Payment object of the API contract.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PaymentView {
    pub id: String,
    pub request_ref: String,
    pub service: String,
    pub amount: i64,
    pub currency: &'static str,
    /// The sum of succeeded refunds, in pence.
    pub refunded_amount: i64,
    pub description: String,
    pub metadata: std::collections::BTreeMap<String, String>,
    pub status: &'static str,
    /// Where to send the citizen; only while the payment is not final.
    pub next_url: Option<String>,
    pub provider: &'static str,
    pub provider_payment_id: Option<String>,
    /// `confirmed` once the provider has answered the create; `unknown` while a lost answer is
    /// being resolved; `not_created` when the provider certainly made no payment.
    pub create_outcome: &'static str,
    pub failure_code: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

impl From<&Payment> for PaymentView {
    fn from(p: &Payment) -> Self {
        Self {
            id: p.id.to_string(),
            request_ref: p.request_ref.clone(),
            service: p.service.clone(),
            amount: p.amount,
            currency: "GBP",
            refunded_amount: p.refunded_amount,
            description: p.description.clone(),
            metadata: p.metadata.clone(),
            status: p.status.as_str(),
            next_url: p.live_next_url().map(str::to_owned),
            provider: p.provider.as_str(),
            provider_payment_id: p.provider_payment_id.clone(),
            create_outcome: p.create_outcome.as_str(),
            failure_code: p.failure_code.clone(),
            created_at: ts(p.created_at),
            updated_at: ts(p.updated_at),
            finished_at: p.finished_at.map(ts),
        }
    }
}

/// One page of payments.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentPage {
    pub items: Vec<PaymentView>,
    pub next_cursor: Option<String>,
}

/// One entry of a payment's status timeline.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentEventView {
    pub at: String,
    pub from: Option<&'static str>,
    pub to: &'static str,
    pub source: &'static str,
}

impl From<&PaymentEvent> for PaymentEventView {
    fn from(e: &PaymentEvent) -> Self {
        Self {
            at: ts(e.at),
            from: e.from.map(|s| s.as_str()),
            to: e.to.as_str(),
            source: e.source.as_str(),
        }
    }
}

/// The Refund object of the API.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RefundView {
    pub id: String,
    pub payment_id: String,
    pub amount: i64,
    pub status: &'static str,
    pub provider_refund_id: Option<String>,
    pub reason: String,
    /// The label of the API key that asked for it.
    pub requested_by: String,
    pub requested_by_key: String,
    /// The second person who approved it, when the two-person rule needed one.
    pub approved_by: Option<String>,
    pub approved_by_key: Option<String>,
    pub approved_at: Option<String>,
    pub failure_code: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

impl From<&Refund> for RefundView {
    fn from(r: &Refund) -> Self {
        Self {
            id: r.id.clone(),
            payment_id: r.payment_id.to_string(),
            amount: r.amount,
            status: r.status.as_str(),
            provider_refund_id: r.provider_refund_id.clone(),
            reason: r.reason.clone(),
            requested_by: r.requested_by_label.clone(),
            requested_by_key: r.requested_by.clone(),
            approved_by: r.approved.as_ref().map(|a| a.by_label.clone()),
            approved_by_key: r.approved.as_ref().map(|a| a.by.clone()),
            approved_at: r.approved.as_ref().map(|a| ts(a.at)),
            failure_code: r.failure_code.clone(),
            created_at: ts(r.created_at),
            updated_at: ts(r.updated_at),
            finished_at: r.finished_at.map(ts),
        }
    }
}
