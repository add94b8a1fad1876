//! What needs a person: the kinds of trouble the service could not heal itself, one item each,
//! what happened and what was tried, and what a person may do about it.

use chrono::{DateTime, Utc};

use super::ledger::pounds;
use super::ServiceCode;

super::named::named_enum! {
    /// The kinds of item in the needs-attention queue.
    pub enum AttentionKind {
        /// A payment still not final a while after it was made.
        StuckPayment = "stuck_payment",
        /// A create whose answer was lost: the provider may or may not have made the payment.
        UnknownCreate = "unknown_create",
        /// A CRM notification the service gave up delivering.
        DeadNotification = "dead_notification",
        /// A difference with the provider that a reconciliation run could not heal.
        Discrepancy = "discrepancy",
        /// A refund the provider refused or failed.
        FailedRefund = "failed_refund",
        /// An income batch the income system refused: not tried again until a person acts.
        RefusedBatch = "refused_batch",
    }
}

super::named::named_enum! {
    /// What a person can do about an item.
    pub enum AttentionAction {
        /// Ask the provider for the payment's status now.
        AskProvider = "ask_provider",
        /// Put a notification back in the outbox with a fresh set of attempts.
        RetryNotification = "retry_notification",
        /// Say why it needs nothing more.
        Resolve = "resolve",
    }
}

impl AttentionKind {
    /// What a person reads for the kind, in a list of several.
    pub fn title(self) -> &'static str {
        match self {
            Self::StuckPayment => "Payment not finished",
            Self::UnknownCreate => "Payment may not exist",
            Self::DeadNotification => "CRM not told",
            Self::Discrepancy => "Differs from the provider",
            Self::FailedRefund => "Refund failed",
            Self::RefusedBatch => "Income batch refused",
        }
    }

    /// How the dashboard counts it: "… that need attention".
    pub fn dashboard_label(self) -> &'static str {
        match self {
            Self::StuckPayment => "Payments not finished long after they were made",
            Self::UnknownCreate => "Payments the provider never confirmed making",
            Self::DeadNotification => "CRM notifications that could not be delivered",
            Self::Discrepancy => "Differences with the provider that were not healed",
            Self::FailedRefund => "Failed refunds not yet dealt with",
            Self::RefusedBatch => "Income batches the income system refused",
        }
    }

    /// The actions that fit the kind, the one that usually settles it first.
    pub fn actions(self) -> &'static [AttentionAction] {
        use AttentionAction::*;
        match self {
            Self::StuckPayment | Self::UnknownCreate => &[AskProvider, Resolve],
            Self::DeadNotification => &[RetryNotification, Resolve],
            Self::Discrepancy | Self::FailedRefund => &[Resolve],
            // Settled on the batch's own page: posted again, or marked as posted by hand.
            Self::RefusedBatch => &[],
        }
    }

    pub fn allows(self, action: AttentionAction) -> bool {
        self.actions().contains(&action)
    }
}

/// One item in the queue, as the store reads it from the table that holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionItem {
    pub kind: AttentionKind,
    /// The payment's, notification's, refund's or discrepancy's id.
    pub item_id: String,
    /// When it happened: the payment made, the refund failed, the run or notification begun.
    pub at: DateTime<Utc>,
    pub payment_id: Option<String>,
    pub service: Option<String>,
    pub request_ref: Option<String>,
    /// Pence: the payment's or refund's.
    pub amount: Option<i64>,
    /// The payment's or refund's status, the notification's event type, the discrepancy's kind.
    pub state: String,
    /// When the service last asked the provider (payments) or will next try (nothing for dead).
    pub tried_at: Option<DateTime<Utc>>,
    /// Delivery attempts made (notifications).
    pub attempts: Option<i32>,
    /// The last error, failure code or the run's note.
    pub detail: Option<String>,
    /// What we and the provider hold (discrepancies).
    pub ours: Option<String>,
    pub theirs: Option<String>,
    /// The reconciliation run (discrepancies).
    pub run_id: Option<String>,
}

impl AttentionItem {
    /// One sentence: what happened.
    pub fn what_happened(&self) -> String {
        let amount = self.amount.map(|p| format!("£{}", pounds(p)));
        let amount = amount.as_deref().unwrap_or("");
        match self.kind {
            AttentionKind::StuckPayment => {
                format!(
                    "A {amount} payment is still {}.",
                    self.state.replace('_', " ")
                )
            }
            AttentionKind::UnknownCreate => format!(
                "The answer to creating a {amount} payment was lost: the provider may or may not \
                 have made it."
            ),
            AttentionKind::DeadNotification => format!(
                "The CRM was not told of {} after {} attempts{}.",
                self.state,
                self.attempts.unwrap_or(0),
                self.detail
                    .as_deref()
                    .map(|e| format!(" (last: {e})"))
                    .unwrap_or_default()
            ),
            AttentionKind::Discrepancy => format!(
                "{}: we hold {}, the provider holds {}.",
                self.state
                    .parse::<super::reconciliation::DiscrepancyKind>()
                    .map(|k| k.title())
                    .unwrap_or("A difference"),
                self.ours.as_deref().unwrap_or("nothing"),
                self.theirs.as_deref().unwrap_or("nothing"),
            ),
            AttentionKind::RefusedBatch => format!(
                "The income system refused batch {} ({amount}){}.",
                self.request_ref.as_deref().unwrap_or(""),
                self.detail
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
            AttentionKind::FailedRefund => format!(
                "A {amount} refund failed at the provider{}.",
                self.detail
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ),
        }
    }

    /// One sentence: what the service already did about it.
    pub fn what_was_tried(&self, show: impl Fn(DateTime<Utc>) -> String) -> String {
        match self.kind {
            AttentionKind::StuckPayment | AttentionKind::UnknownCreate => match self.tried_at {
                Some(at) => format!("Last asked the provider {}.", show(at)),
                None => "The provider has not been asked yet.".into(),
            },
            AttentionKind::DeadNotification => format!(
                "Delivery was tried {} times with growing waits, then given up.",
                self.attempts.unwrap_or(0)
            ),
            AttentionKind::Discrepancy => format!(
                "Reconciliation run {} could not heal it{}.",
                self.run_id.as_deref().unwrap_or(""),
                match self.detail.as_deref() {
                    Some(note) if !note.is_empty() => format!(": {note}"),
                    _ => String::new(),
                }
            ),
            AttentionKind::FailedRefund => {
                "The provider's answer was recorded; nothing was refunded.".into()
            }
            AttentionKind::RefusedBatch => format!(
                "Posted {} time{}; it is not sent again until a person puts the cause right and \
                 asks for it to be posted again on the batch's page.",
                self.attempts.unwrap_or(0),
                if self.attempts == Some(1) { "" } else { "s" }
            ),
        }
    }
}

/// Which items the queue lists: newest first, each filter optional.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionQuery {
    pub kind: Option<AttentionKind>,
    pub service: Option<ServiceCode>,
    /// Payments made before this and still not final are stuck.
    pub stuck_before: DateTime<Utc>,
    /// Keyset paging: items before this (at, kind, item id).
    pub before: Option<(DateTime<Utc>, AttentionKind, String)>,
    /// Only this item (to check it is still waiting before acting on it).
    pub item_id: Option<String>,
    pub limit: u32,
}

/// How many items of each kind wait, in [`AttentionKind::ALL`]'s order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttentionCounts(pub Vec<(AttentionKind, i64)>);

impl AttentionCounts {
    /// Counting stops here: a count reads at most this many items of a kind, so it costs the
    /// same however many are waiting, and "1,000 or more" says enough to a person.
    pub const COUNTED_UP_TO: i64 = 1000;

    /// How many of `kind` are waiting, as a person reads it.
    pub fn text_of(&self, kind: AttentionKind) -> String {
        match self.of(kind) {
            n if n >= Self::COUNTED_UP_TO => format!("{} or more", Self::COUNTED_UP_TO_TEXT),
            n => n.to_string(),
        }
    }

    const COUNTED_UP_TO_TEXT: &'static str = "1,000";

    /// How many of `kind` are waiting, up to [`Self::COUNTED_UP_TO`].
    pub fn of(&self, kind: AttentionKind) -> i64 {
        self.0
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }

    pub fn total(&self) -> i64 {
        self.0.iter().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_at_its_limit_reads_as_that_many_or_more() {
        let counts = AttentionCounts(vec![
            (AttentionKind::StuckPayment, 999),
            (AttentionKind::FailedRefund, AttentionCounts::COUNTED_UP_TO),
        ]);
        assert_eq!(counts.text_of(AttentionKind::StuckPayment), "999");
        assert_eq!(counts.text_of(AttentionKind::FailedRefund), "1,000 or more");
        assert_eq!(counts.text_of(AttentionKind::DeadNotification), "0");
    }

    fn item(kind: AttentionKind) -> AttentionItem {
        AttentionItem {
            kind,
            item_id: "x".into(),
            at: DateTime::UNIX_EPOCH,
            payment_id: None,
            service: None,
            request_ref: None,
            amount: Some(1250),
            state: "in_progress".into(),
            tried_at: None,
            attempts: Some(8),
            detail: Some("503".into()),
            ours: Some("created".into()),
            theirs: Some("success".into()),
            run_id: Some("rec_1".into()),
        }
    }

    #[test]
    fn each_kind_says_what_happened_in_its_own_terms() {
        assert_eq!(
            item(AttentionKind::StuckPayment).what_happened(),
            "A £12.50 payment is still in progress."
        );
        let dead = AttentionItem {
            state: "payment.succeeded".into(),
            ..item(AttentionKind::DeadNotification)
        };
        assert_eq!(
            dead.what_happened(),
            "The CRM was not told of payment.succeeded after 8 attempts (last: 503)."
        );
        let differs = AttentionItem {
            state: "status_mismatch".into(),
            ..item(AttentionKind::Discrepancy)
        };
        assert_eq!(
            differs.what_happened(),
            "Statuses differ: we hold created, the provider holds success."
        );
        assert_eq!(
            item(AttentionKind::FailedRefund).what_happened(),
            "A £12.50 refund failed at the provider (503)."
        );
        let refused = AttentionItem {
            request_ref: Some("CF-parking-000042".into()),
            detail: Some("HTTP 400: Rows[0].FundCode X is not a fund".into()),
            ..item(AttentionKind::RefusedBatch)
        };
        assert_eq!(
            refused.what_happened(),
            "The income system refused batch CF-parking-000042 (£12.50): HTTP 400: Rows[0].FundCode X is not a fund."
        );
    }

    #[test]
    fn only_payments_can_be_asked_about_and_only_notifications_retried() {
        for kind in AttentionKind::ALL {
            // A refused batch is settled on its own page (posted again, or by hand), never by a
            // note that would leave it refused.
            assert_eq!(
                kind.allows(AttentionAction::Resolve),
                *kind != AttentionKind::RefusedBatch
            );
            assert_eq!(
                kind.allows(AttentionAction::AskProvider),
                matches!(
                    kind,
                    AttentionKind::StuckPayment | AttentionKind::UnknownCreate
                )
            );
            assert_eq!(
                kind.allows(AttentionAction::RetryNotification),
                *kind == AttentionKind::DeadNotification
            );
        }
    }

    #[test]
    fn what_was_tried_names_the_last_ask_or_says_none_was_made() {
        let never = item(AttentionKind::UnknownCreate);
        assert_eq!(
            never.what_was_tried(|_| String::new()),
            "The provider has not been asked yet."
        );
        let asked = AttentionItem {
            tried_at: Some(DateTime::UNIX_EPOCH),
            ..never
        };
        assert_eq!(
            asked.what_was_tried(|_| "at 01:00".into()),
            "Last asked the provider at 01:00."
        );
    }
}
