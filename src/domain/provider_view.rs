//! What a provider says of a payment or a refund, in our one internal model: each connector maps
//! its own shapes into these, reduced to what Counterfoil may keep (no card data).

use chrono::{DateTime, Utc};

use super::card_guard::contains_card_number;
use super::refund::RefundStatus;
use super::PaymentStatus;

/// What a reference that read as a card number is kept as.
pub const WITHHELD: &str = "[withheld: read as a card number]";

impl ProviderPayment {
    /// Makes the provider's view safe to keep when a field of it reads as a card number (a
    /// reference a citizen typed on a payment link, an id that holds a long run of digits): the
    /// field is withheld and the rest kept. False when the payment's own id reads as one, as it
    /// can then be neither kept nor looked up.
    pub fn withhold_card_numbers(&mut self) -> bool {
        if contains_card_number(&self.reference) {
            self.reference = WITHHELD.into();
        }
        if self
            .failure_code
            .as_deref()
            .is_some_and(contains_card_number)
        {
            self.failure_code = None;
        }
        if self.next_url.as_deref().is_some_and(contains_card_number) {
            self.next_url = None;
        }
        if self
            .counterfoil_id
            .as_deref()
            .is_some_and(contains_card_number)
        {
            self.counterfoil_id = None;
        }
        !contains_card_number(&self.provider_payment_id)
    }
}

impl ProviderRefundRecord {
    /// As [`ProviderPayment::withhold_card_numbers`]: false when an id reads as a card number.
    pub fn withhold_card_numbers(&mut self) -> bool {
        if contains_card_number(&self.refund.provider_status) {
            self.refund.provider_status = "withheld".into();
        }
        !contains_card_number(&self.provider_payment_id)
            && !contains_card_number(&self.refund.provider_refund_id)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::card_guard::test_numbers::{grouped, visa};

    fn view(id: &str, reference: &str) -> ProviderPayment {
        ProviderPayment {
            provider_payment_id: id.into(),
            status: PaymentStatus::Succeeded,
            failure_code: Some(visa()),
            next_url: None,
            amount: 100,
            reference: reference.into(),
            counterfoil_id: None,
            created_at: None,
            finished_at: None,
            refund_available: None,
        }
    }

    #[test]
    fn a_field_that_reads_as_a_card_number_is_withheld_and_the_rest_kept() {
        let mut payment = view("abc123", &format!("card {}", grouped(&visa(), " ")));
        assert!(payment.withhold_card_numbers());
        assert_eq!(payment.reference, WITHHELD);
        assert_eq!(payment.failure_code, None);
        assert_eq!(
            (payment.amount, payment.status),
            (100, PaymentStatus::Succeeded)
        );
        let mut named_by_one = view(&visa(), "CRM-1");
        assert!(
            !named_by_one.withhold_card_numbers(),
            "cannot be kept or looked up"
        );
    }
}

/// A payout the provider made to the council's bank account.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderPayout {
    pub id: String,
    /// Pence that reached (or will reach) the bank.
    pub amount: i64,
    /// The day the bank is expected to show it.
    pub arrival_date: chrono::NaiveDate,
    pub created_at: DateTime<Utc>,
    /// The provider's word: `paid`, `in_transit`, `pending`, `failed`, `canceled`.
    pub status: String,
}

/// One item of a payout: a charge, a refund, a fee or anything else that moved the balance.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderPayoutItem {
    /// The provider's id for the item (Stripe: the balance transaction).
    pub id: String,
    /// `charge`, `refund`, `payout` or the provider's other types.
    pub kind: String,
    /// Pence; a refund negative.
    pub amount: i64,
    /// The provider's fee on it, pence.
    pub fee: i64,
    /// `amount - fee`.
    pub net: i64,
    /// For a charge: the payment as the provider names it to us (Stripe: the Checkout Session).
    pub provider_payment_id: Option<String>,
    /// For a refund: the provider's refund id.
    pub provider_refund_id: Option<String>,
}
