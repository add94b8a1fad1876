//! A payout traced back to what it paid: each item matched to a payment or refund and the income
//! batch that posted it, and the payout's difference from those batches, for a person to look at.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};

use super::provider_view::ProviderPayoutItem;

/// A payout as Counterfoil keeps it: the provider's facts.
#[derive(Debug, Clone, PartialEq)]
pub struct Payout {
    pub id: String,
    pub account: String,
    /// Pence to the bank.
    pub amount: i64,
    pub arrival_date: NaiveDate,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub read_at: DateTime<Utc>,
}

/// One item of a payout, as the provider gave it, with what it is matched to now.
#[derive(Debug, Clone, PartialEq)]
pub struct PayoutLine {
    pub position: i64,
    pub item: ProviderPayoutItem,
    /// Our payment or refund, when one carries the provider's id.
    pub payment_id: Option<String>,
    pub refund_id: Option<String>,
    /// The income batch that posted it, and the amount it posted (pence, refunds negative).
    pub batch_id: Option<String>,
    pub batch_reference: Option<String>,
    pub batched: Option<i64>,
}

impl PayoutLine {
    /// A charge or a refund: money in or out for a payment. (The payout's own item, and the
    /// provider's adjustments, are not.)
    pub fn is_takings(&self) -> bool {
        matches!(self.item.kind.as_str(), "charge" | "payment" | "refund")
    }

    pub fn is_matched(&self) -> bool {
        self.payment_id.is_some() || self.refund_id.is_some()
    }
}

/// What a payout holds, set against the batches that posted it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayoutCheck {
    /// Charges, pence.
    pub charges: i64,
    /// Refunds, pence (negative).
    pub refunds: i64,
    /// The provider's fees on them, pence (positive: taken from the payout).
    pub fees: i64,
    /// Anything else that moved the balance (adjustments, disputes), pence.
    pub other: i64,
    /// Items no payment or refund of ours carries (made outside Counterfoil, or not yet known).
    pub unmatched: Vec<String>,
    /// Items matched to a payment or refund that no batch has posted yet.
    pub unbatched: Vec<String>,
    /// The batches that posted its items.
    pub batches: BTreeSet<String>,
    /// What those batches posted for its items, pence.
    pub batched: i64,
    /// What the payout should be, from the batches: `batched - fees`.
    pub expected: i64,
    /// The payout's amount less `expected`: not zero, a person looks.
    pub difference: i64,
}

impl PayoutCheck {
    pub fn of(amount: i64, lines: &[PayoutLine]) -> Self {
        let mut check = PayoutCheck::default();
        for line in lines.iter().filter(|l| l.item.kind != "payout") {
            let item = &line.item;
            check.fees += item.fee;
            match item.kind.as_str() {
                "charge" | "payment" => check.charges += item.amount,
                "refund" => check.refunds += item.amount,
                _ => check.other += item.amount,
            }
            if !line.is_takings() {
                continue;
            }
            if !line.is_matched() {
                check.unmatched.push(line.item.id.clone());
            } else if let (Some(batch), Some(posted)) = (&line.batch_reference, line.batched) {
                check.batches.insert(batch.clone());
                check.batched += posted;
            } else {
                check.unbatched.push(line.item.id.clone());
            }
        }
        check.expected = check.batched - check.fees;
        check.difference = amount - check.expected;
        check
    }

    /// Whether a person needs to look: money in the payout that no batch accounts for, or the
    /// other way round.
    pub fn needs_a_person(&self) -> bool {
        self.difference != 0 || !self.unmatched.is_empty() || !self.unbatched.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: &str, amount: i64, fee: i64, matched: bool, batched: bool) -> PayoutLine {
        PayoutLine {
            position: 0,
            item: ProviderPayoutItem {
                id: format!("txn_{kind}_{amount}"),
                kind: kind.into(),
                amount,
                fee,
                net: amount - fee,
                provider_payment_id: None,
                provider_refund_id: None,
            },
            payment_id: matched.then(|| "pay_1".into()),
            refund_id: None,
            batch_id: batched.then(|| "bat_1".into()),
            batch_reference: batched.then(|| "CF-x-000001".into()),
            batched: batched.then_some(amount),
        }
    }

    #[test]
    fn a_payout_of_batched_takings_less_fees_needs_nobody() {
        let lines = [
            line("charge", 2500, 58, true, true),
            line("charge", 1000, 35, true, true),
            line("refund", -500, 0, true, true),
            line("payout", -2907, 0, false, false),
        ];
        let check = PayoutCheck::of(2907, &lines);
        assert_eq!((check.charges, check.refunds, check.fees), (3500, -500, 93));
        assert_eq!(
            (check.batched, check.expected, check.difference),
            (3000, 2907, 0)
        );
        assert!(!check.needs_a_person());
    }

    #[test]
    fn a_charge_no_payment_carries_or_no_batch_posted_is_flagged() {
        let lines = [
            line("charge", 2500, 58, true, true),
            line("charge", 700, 31, false, false),
            line("charge", 900, 34, true, false),
        ];
        let check = PayoutCheck::of(2442 + 669 + 866, &lines);
        assert_eq!(check.unmatched, vec!["txn_charge_700"]);
        assert_eq!(check.unbatched, vec!["txn_charge_900"]);
        assert_eq!(check.difference, 669 + 866 + 31 + 34);
        assert!(check.needs_a_person());
    }
}
