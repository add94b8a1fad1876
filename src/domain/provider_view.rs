//! What a provider says of a payment or a refund, in our one internal model: each connector maps
//! its own shapes into these, reduced to what Counterfoil may keep (no card data).

use chrono::{DateTime, Utc};

use super::refund::RefundStatus;
use super::PaymentStatus;

/// A provider's view of a payment, reduced to what Counterfoil may keep (no card data).
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderPayment {
    pub provider_payment_id: String,
    pub status: PaymentStatus,
    /// The provider's reason code for a payment that did not succeed (e.g. `P0010`).
    pub failure_code: Option<String>,
    pub next_url: Option<String>,
    pub amount: i64,
    pub reference: String,
    /// Our payment id, when the provider echoes it back (GOV.UK Pay: in metadata).
    pub counterfoil_id: Option<String>,
    /// When the provider created it.
    pub created_at: Option<DateTime<Utc>>,
    /// When the provider took the money, for a succeeded payment, when it says (GOV.UK Pay:
    /// `settlement_summary.capture_submit_time`): the finance day of a payment learnt late.
    pub finished_at: Option<DateTime<Utc>>,
    /// What the provider would still refund (GOV.UK Pay: `refund_summary.amount_available`).
    pub refund_available: Option<i64>,
}

/// A provider's view of a refund.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRefund {
    pub provider_refund_id: String,
    pub status: RefundStatus,
    /// The provider's own word for it (GOV.UK Pay: `submitted`, `success`, `error`).
    pub provider_status: String,
    pub amount: i64,
}

/// A refund as the provider's search lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRefundRecord {
    pub provider_payment_id: String,
    pub refund: ProviderRefund,
}
