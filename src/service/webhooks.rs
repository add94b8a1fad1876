//! Provider webhooks: verify the signature over the raw body first, read it through the provider's
//! allow-list, then apply it through the state machine in one transaction. The body itself is never
//! stored or logged.

use std::sync::Arc;

use super::group_commit::{GroupCommit, GroupCommitSettings};
use super::Clock;
use crate::background::Background;
use crate::domain::{EventOutcome, PaymentId, ProviderKind};
use crate::metrics::Metrics;
use crate::providers::{HeaderLookup, ProviderRegistry, WebhookRejection};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no such provider account")]
    UnknownAccount,
    #[error("webhook refused: {0}")]
    Rejected(WebhookRejection),
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
}

/// A webhook whose signature has been checked; only [`WebhookService::verify`] makes one.
pub struct Verified<'a> {
    kind: ProviderKind,
    account: &'a str,
    provider: Arc<dyn crate::providers::PaymentProvider>,
    body: &'a [u8],
}

pub struct WebhookService {
    store: Arc<dyn Store>,
    providers: ProviderRegistry,
    clock: Arc<dyn Clock>,
    refunds: Arc<super::refunds::RefundService>,
    metrics: Arc<Metrics>,
    /// Owns the refund refresh a webhook starts after its answer, so shutdown drains it.
    background: Background,
    /// Where events are applied: concurrent ones share a transaction.
    group_commit: GroupCommit,
}

impl WebhookService {
    pub fn new(
        store: Arc<dyn Store>,
        providers: ProviderRegistry,
        clock: Arc<dyn Clock>,
        refunds: Arc<super::refunds::RefundService>,
        metrics: Arc<Metrics>,
        background: Background,
        group_commit: GroupCommitSettings,
    ) -> Self {
        Self {
            group_commit: GroupCommit::start(store.clone(), group_commit, metrics.clone()),
            store,
            providers,
            clock,
            refunds,
            metrics,
            background,
        }
    }

    /// What grouping webhooks into shared transactions has done so far.
    pub fn group_commit_counts(&self) -> super::group_commit::GroupCommitCounts {
        self.group_commit.counts()
    }

    /// Whether `account` exists and is of `kind` (checked before the body is read).
    pub fn knows(&self, kind: ProviderKind, account: &str) -> bool {
        self.providers.get(account).is_ok_and(|p| p.kind() == kind)
    }

    /// Handles one webhook: [`verify`](Self::verify), then [`apply`](Self::apply). Returns only
    /// once its effect is committed.
    pub async fn receive(
        &self,
        kind: ProviderKind,
        account: &str,
        header: HeaderLookup<'_>,
        body: &[u8],
    ) -> Result<EventOutcome, WebhookError> {
        let verified = self.verify(kind, account, header, body)?;
        self.apply(verified).await
    }

    /// Checks a webhook's signature over its exact bytes, before anything else is done with it.
    pub fn verify<'a>(
        &self,
        kind: ProviderKind,
        account: &'a str,
        header: HeaderLookup<'_>,
        body: &'a [u8],
    ) -> Result<Verified<'a>, WebhookError> {
        let provider = self
            .providers
            .get(account)
            .ok()
            .filter(|p| p.kind() == kind)
            .ok_or(WebhookError::UnknownAccount)?;
        if let Err(rejection) = provider.verify_webhook(header, body, self.clock.now()) {
            self.metrics
                .webhook(kind.as_str(), account, "bad_signature");
            tracing::warn!(account, reason = %rejection, bytes = body.len(), "webhook refused: bad signature");
            return Err(WebhookError::Rejected(rejection));
        }
        Ok(Verified {
            kind,
            account,
            provider,
            body,
        })
    }

    /// The guard never costs a payment: what in `event` reads as a card number is withheld, the
    /// rest applied, and a person told (by a log line and the `withheld` count). False when the
    /// event names a provider payment id that reads as one: nothing can be written under it, the
    /// poller and reconciliation settle the payment, and the webhook is answered so the provider
    /// does not retry what can never apply.
    fn withhold_card_numbers(
        &self,
        kind: ProviderKind,
        account: &str,
        event: &mut crate::domain::ProviderEvent,
    ) -> bool {
        let withheld = event.withhold_card_numbers();
        if !withheld.fields.is_empty() {
            self.metrics.webhook(kind.as_str(), account, "withheld");
            tracing::warn!(
                account,
                fields = ?withheld.fields,
                "webhook fields withheld: they read as a card number; the rest is applied"
            );
        }
        if withheld.payment_id {
            tracing::error!(
                account,
                "webhook names a provider payment id that reads as a card number: not applied; \
                 the poller and reconciliation settle the payment (needs a person if they cannot)"
            );
        }
        !withheld.payment_id
    }

    /// Applies a verified webhook. Returns only once its effect is committed. In order:
    /// 1. read it through the provider's allow-list (`parse_webhook`), nothing else of it kept;
    /// 2. name the provider's payment id when the event names ours instead;
    /// 3. in one transaction (`ProviderEventStore::apply_provider_events`, shared with concurrent
    ///    webhooks by `group_commit.rs`): the payment locked, the event dated
    ///    (`domain::happened_at`), the move decided (`domain::decide_transition`: forward only,
    ///    final is for ever), its receipt (a duplicate stops here), the status, timeline event and
    ///    CRM notification written together;
    /// 4. counted by outcome;
    /// 5. after the answer, when the event says a refund moved, the payment's open refunds are
    ///    asked about (a background task, drained at shutdown).
    pub async fn apply(&self, verified: Verified<'_>) -> Result<EventOutcome, WebhookError> {
        let Verified {
            kind,
            account,
            provider,
            body,
        } = verified;
        let mut event = provider.parse_webhook(body).map_err(|rejection| {
            self.metrics.webhook(kind.as_str(), account, "malformed");
            tracing::warn!(account, reason = %rejection, "webhook refused: signed but unreadable");
            WebhookError::Rejected(rejection)
        })?;
        if !self.withhold_card_numbers(kind, account, &mut event) {
            return Ok(EventOutcome::Ignored);
        }
        if event.provider_payment_id.is_empty() {
            // The event names our payment, not the provider's: find the provider's id for it.
            if let Some(ours) = event
                .counterfoil_id
                .as_deref()
                .and_then(|id| PaymentId::parse(id).ok())
            {
                if let Some(payment) = self.store.get_payment(&ours).await? {
                    if payment.account == account {
                        event.provider_payment_id = payment.provider_payment_id.unwrap_or_default();
                    }
                }
            }
        }
        let outcome = match self
            .group_commit
            .apply(account, &event, self.clock.now())
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => {
                self.metrics.webhook(kind.as_str(), account, "failed");
                return Err(e.into());
            }
        };
        let counted = match &outcome {
            EventOutcome::Applied { .. } => "accepted",
            EventOutcome::Ignored => "ignored",
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Orphan => "orphan",
        };
        self.metrics.webhook(kind.as_str(), account, counted);
        if event.refund_activity {
            // Ask about this payment's open refunds, after answering (the message's own effect,
            // its receipt, is already committed). GOV.UK Pay's message names no refund at all.
            if let Ok(Some(payment)) = self
                .store
                .find_payment_by_provider_id(account, &event.provider_payment_id)
                .await
            {
                let refunds = self.refunds.clone();
                self.background.spawn("refund refresh", async move {
                    refunds.refresh_open(&payment).await;
                });
            }
        }
        tracing::info!(
            account,
            message_id = %event.message_id,
            event_type = %event.event_type,
            outcome = outcome.as_str(),
            "webhook"
        );
        Ok(outcome)
    }
}
