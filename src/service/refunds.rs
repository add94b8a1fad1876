//! Refunds, for finance staff: requested once per Idempotency-Key, never more than was taken (even
//! under concurrent requests), carried out by the provider, and followed until they settle.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{create_failure, Clock, ServiceError};
use crate::domain::idempotency::Idempotent;
use crate::domain::refund::{NewRefund, Refund, RefundStatus, SecondPerson};
use crate::domain::staff::SoloAllowance;
use crate::domain::Actor;
use crate::domain::{CreateOutcome, Payment, PaymentId};
use crate::providers::{ProviderError, ProviderRefund, ProviderRegistry};
use crate::store::{
    ApprovalDecision, ApprovalStatus, AuditEntry, ClaimOutcome, IdempotencyClaim,
    IdempotencySettle, RefundApproval, RefundClaim, SoloCheck, Store,
};
use crate::views::RefundView;

#[derive(Debug, Clone)]
pub enum RefundResponse {
    Created(Box<Refund>),
    Replayed { status: u16, body: String },
}

#[derive(Debug, Clone)]
pub struct RefundSettings {
    pub create_lease: Duration,
    pub idempotency_ttl: Duration,
    /// How long a failed refund is re-checked (GOV.UK Pay's `error` can still become `success`).
    pub recheck_failed_for: Duration,
}

/// The two-person rule: how much one person (or API key) may refund without a second person.
#[derive(Debug, Clone, Default)]
pub struct TwoPersonRule {
    /// Per service code; others use `default_threshold`.
    pub thresholds: BTreeMap<String, i64>,
    pub default_threshold: i64,
    /// What one person may refund alone in a London day, across payments.
    pub daily_limit: Option<i64>,
    /// Whether finance API keys may refund at all (under the same rule).
    pub api_refunds: bool,
}

impl TwoPersonRule {
    pub fn threshold(&self, service: &str) -> i64 {
        self.thresholds
            .get(service)
            .copied()
            .unwrap_or(self.default_threshold)
    }

    pub fn allowance(&self, service: &str) -> SoloAllowance {
        SoloAllowance {
            per_payment: self.threshold(service),
            per_day: self.daily_limit,
        }
    }
}

/// Who a refund request comes from: the API (a finance key) or a person in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundChannel {
    Api,
    Console,
}

pub struct RefundService {
    store: Arc<dyn Store>,
    providers: ProviderRegistry,
    clock: Arc<dyn Clock>,
    settings: RefundSettings,
    rule: TwoPersonRule,
}

impl RefundService {
    pub fn new(
        store: Arc<dyn Store>,
        providers: ProviderRegistry,
        clock: Arc<dyn Clock>,
        settings: RefundSettings,
        rule: TwoPersonRule,
    ) -> Self {
        Self {
            store,
            providers,
            clock,
            settings,
            rule,
        }
    }

    pub fn rule(&self) -> &TwoPersonRule {
        &self.rule
    }

    /// Asks for a refund of a succeeded payment, at most once per (caller, Idempotency-Key):
    /// the refund is recorded (reserving its amount) before the provider is asked, and the
    /// provider's answer settles it. What the caller would then have refunded alone must be
    /// within the two-person rule's allowance ([`ServiceError::NeedsSecondPerson`] otherwise);
    /// API keys refund only where the rule lets them.
    pub async fn request(
        &self,
        actor: &Actor,
        payment_id: &PaymentId,
        request: Idempotent,
        new: NewRefund,
        channel: RefundChannel,
    ) -> Result<RefundResponse, ServiceError> {
        if channel == RefundChannel::Api && !self.rule.api_refunds {
            return Err(ServiceError::ApiRefundsOff);
        }
        let NewRefund { amount, reason } = new;
        let payment = self
            .store
            .get_payment(payment_id)
            .await?
            .ok_or(ServiceError::PaymentNotFound)?;
        // Its provider account must still be configured: nothing is recorded otherwise.
        self.providers.get(&payment.account)?;
        let now = self.clock.now();
        let day = crate::domain::ledger::london_day(now);
        let requester_id = actor.id();
        let solo = SoloCheck {
            requester: &requester_id,
            allowance: self.rule.allowance(&payment.service),
            day_start: crate::domain::ledger::london_days(day, day).0,
        };
        let claim = IdempotencyClaim {
            principal: actor.id(),
            key: request.key,
            fingerprint: request.fingerprint,
            route: request.route,
            now,
            lease_until: now + self.settings.create_lease,
            expires_at: now + self.settings.idempotency_ttl,
        };
        let requester = (actor.id(), actor.label());
        let mut refund = pending_refund(payment_id, amount.pence(), reason, requester, None, now);
        let available = match self.reserve(actor, &claim, &refund, &solo).await? {
            Reserved::Available(available) => available,
            Reserved::Answered(answer) => return Ok(answer),
        };
        let (settle, result) = match self.carry_out(&payment, &mut refund, available).await {
            Ok(()) => {
                // A repeat of this request is answered with exactly this body.
                let body =
                    serde_json::to_string(&RefundView::from(&refund)).expect("views serialise");
                (
                    IdempotencySettle::Completed { status: 201, body },
                    Ok(RefundResponse::Created(Box::new(refund.clone()))),
                )
            }
            Err((answer, settle)) => (settle, Err(answer)),
        };
        self.store
            .settle_refund(&refund, RefundStatus::Pending, Some((&claim, settle)), None)
            .await?;
        result
    }

    /// A second person approves a refund that waited for them: the approval and the refund it
    /// sends are one outcome. The refund is the requester's (their name stays on it) with the
    /// approver beside it; if the provider certainly did not make it, the approval is waiting
    /// again (with what went wrong), so it can be approved once more.
    pub async fn send_approved(
        &self,
        approval: &RefundApproval,
        approver: &Actor,
    ) -> Result<Refund, ServiceError> {
        let payment = self
            .store
            .get_payment(&approval.payment_id)
            .await?
            .ok_or(ServiceError::PaymentNotFound)?;
        self.providers.get(&payment.account)?;
        let now = self.clock.now();
        let (approver_id, approver_label) = (approver.id(), approver.label());
        let second = SecondPerson {
            approval_id: approval.id.clone(),
            by: approver_id.clone(),
            by_label: approver_label.clone(),
            at: now,
        };
        let requester = (
            approval.requested_by.clone(),
            approval.requested_by_label.clone(),
        );
        let reason = approval.reason.clone();
        let mut refund = pending_refund(
            &approval.payment_id,
            approval.amount,
            reason,
            requester,
            Some(second),
            now,
        );
        let decision = ApprovalDecision {
            id: &approval.id,
            status: ApprovalStatus::Approved,
            decided_by: &approver_id,
            decided_by_label: &approver_label,
            at: now,
            decline_reason: None,
        };
        let audit = AuditEntry {
            at: now,
            actor_key_id: approver_id.clone(),
            actor_label: approver_label.clone(),
            action: "refund.approved".into(),
            subject: approval.id.clone(),
            detail: json!({
                "payment_id": approval.payment_id.as_ref(),
                "amount": approval.amount,
                "refund_id": refund.id,
                "requested_by": approval.requested_by,
            }),
        };
        let available = match self
            .store
            .approve_and_insert_refund(&decision, &refund, &audit)
            .await?
        {
            RefundClaim::Claimed { available } => available,
            RefundClaim::AlreadyDecided => return Err(ServiceError::AlreadyDecided),
            RefundClaim::Exceeds { available } => {
                return Err(ServiceError::RefundExceedsCaptured { available })
            }
            _ => return Err(ServiceError::NotRefundable),
        };
        let result = match self.carry_out(&payment, &mut refund, available).await {
            Ok(()) => Ok(refund.clone()),
            Err((answer, _)) => Err(answer),
        };
        let at = refund.updated_at;
        let reopened = reopened_entry(approval, &refund, at);
        self.store
            .settle_refund(&refund, RefundStatus::Pending, None, Some(&reopened))
            .await?;
        result
    }

    /// Records the refund under its idempotency claim, reserving its amount; or answers a
    /// repeated request, or refuses one that is not refundable.
    async fn reserve(
        &self,
        actor: &Actor,
        claim: &IdempotencyClaim,
        refund: &Refund,
        solo: &SoloCheck<'_>,
    ) -> Result<Reserved, ServiceError> {
        let audit = AuditEntry {
            at: claim.now,
            actor_key_id: actor.id(),
            actor_label: actor.label(),
            action: "refund.requested".into(),
            subject: refund.id.clone(),
            detail: json!({"payment_id": refund.payment_id.as_ref(), "amount": refund.amount}),
        };
        let answered = |answer| Ok(Reserved::Answered(answer));
        match self
            .store
            .claim_and_insert_refund(claim, refund, Some(solo), &audit)
            .await?
        {
            RefundClaim::Claimed { available } => Ok(Reserved::Available(available)),
            RefundClaim::NeedsSecondPerson => Err(ServiceError::NeedsSecondPerson {
                threshold: solo.allowance.per_payment,
            }),
            RefundClaim::AlreadyDecided => Err(ServiceError::AlreadyDecided),
            RefundClaim::NotRefundable => Err(ServiceError::NotRefundable),
            RefundClaim::Exceeds { available } => {
                Err(ServiceError::RefundExceedsCaptured { available })
            }
            RefundClaim::Existing(ClaimOutcome::Replay { status, body }) => {
                answered(RefundResponse::Replayed { status, body })
            }
            RefundClaim::Existing(ClaimOutcome::InFlight) => Err(ServiceError::IdempotencyConflict),
            RefundClaim::Existing(ClaimOutcome::KeyReused) => {
                Err(ServiceError::IdempotencyKeyReused)
            }
            RefundClaim::Existing(ClaimOutcome::Linked { resource_id }) => {
                answered(self.answer_from_row(&resource_id).await?)
            }
            RefundClaim::Existing(ClaimOutcome::Claimed) => {
                unreachable!("a fresh claim is RefundClaim::Claimed")
            }
        }
    }

    /// Asks the provider for `refund` and writes its answer onto it: confirmed, or (when the
    /// provider certainly made nothing) failed with its code. `Err` is what to tell the caller
    /// and how to settle the Idempotency-Key.
    async fn carry_out(
        &self,
        payment: &Payment,
        refund: &mut Refund,
        available: i64,
    ) -> Result<(), (ServiceError, IdempotencySettle)> {
        let answer = self.send_to_provider(payment, refund, available).await;
        let at = self.clock.now();
        refund.updated_at = at;
        match answer {
            Ok(confirmed) => {
                apply_provider_refund(refund, confirmed, at);
                Ok(())
            }
            Err(error) => {
                tracing::warn!(refund_id = %refund.id, error = %error, "provider refund failed");
                let failure = create_failure(&error);
                refund.create_outcome = failure.outcome;
                if failure.outcome == CreateOutcome::NotCreated {
                    refund.status = RefundStatus::Failed;
                    refund.finished_at = Some(at);
                    refund.failure_code = failure.failure_code;
                }
                let answer =
                    ServiceError::from_provider(&error, Some(refund.payment_id.to_string()));
                Err((answer, failure.settle))
            }
        }
    }

    /// Asks the provider for the refund. Our claim reserved the amount; GOV.UK Pay also checks
    /// what it believes is available. Two refunds decided one after the other here can reach it
    /// in the other order and get 412 P0604, which certainly made nothing: read what it now has
    /// available and ask again.
    async fn send_to_provider(
        &self,
        payment: &crate::domain::Payment,
        refund: &Refund,
        mut available: i64,
    ) -> Result<crate::providers::ProviderRefund, ProviderError> {
        let Ok(provider) = self.providers.get(&payment.account) else {
            // Checked before the refund was recorded; removed since: nothing is sent.
            return Err(ProviderError::Unreachable(
                "the payment's provider account is not configured".into(),
            ));
        };
        let provider_id = payment.provider_payment_id.clone().unwrap_or_default();
        let mut answer = provider
            .refund(&provider_id, refund.amount, available, &refund.id)
            .await;
        for _ in 0..3 {
            let stale = matches!(&answer, Err(ProviderError::Rejected { status: 412, .. }));
            let now_available = match stale {
                true => provider
                    .get_payment(&provider_id)
                    .await
                    .ok()
                    .and_then(|p| p.refund_available),
                false => None,
            };
            match now_available {
                // Even the same figure: it may have become right since the refusal.
                Some(now) if now >= refund.amount => {
                    available = now;
                    answer = provider
                        .refund(&provider_id, refund.amount, available, &refund.id)
                        .await;
                }
                _ => break,
            }
        }
        answer
    }

    async fn answer_from_row(&self, refund_id: &str) -> Result<RefundResponse, ServiceError> {
        let refund = self
            .store
            .get_refund(refund_id)
            .await?
            .ok_or(ServiceError::RefundNotFound)?;
        match refund.create_outcome {
            CreateOutcome::Confirmed => Ok(RefundResponse::Created(Box::new(refund))),
            CreateOutcome::NotCreated => Err(ServiceError::ProviderRejected {
                payment_id: Some(refund.payment_id.to_string()),
                code: refund.failure_code.clone(),
            }),
            CreateOutcome::Pending | CreateOutcome::Unknown => {
                Err(ServiceError::ProviderUnavailable {
                    payment_id: Some(refund.payment_id.to_string()),
                    certain_nothing_happened: false,
                })
            }
        }
    }

    /// A payment's refunds, after asking the provider about any still open.
    pub async fn list(&self, payment_id: &PaymentId) -> Result<Vec<Refund>, ServiceError> {
        let payment = self
            .store
            .get_payment(payment_id)
            .await?
            .ok_or(ServiceError::PaymentNotFound)?;
        self.refresh_open(&payment).await;
        Ok(self.store.list_refunds(payment_id).await?)
    }

    /// Asks the provider about this payment's refunds that are pending or failed recently.
    pub async fn refresh_open(&self, payment: &Payment) {
        let Ok(refunds) = self.store.list_refunds(&payment.id).await else {
            return;
        };
        let recheck_since = self.clock.now()
            - chrono::Duration::from_std(self.settings.recheck_failed_for).unwrap_or_default();
        for refund in refunds.iter().filter(|r| is_open(r, recheck_since)) {
            self.refresh_one(payment, refund).await;
        }
    }

    /// One poller round for refunds: every open refund, whichever payment it belongs to.
    pub async fn poll_once(&self) -> Result<u32, ServiceError> {
        let now = self.clock.now();
        let since =
            now - chrono::Duration::from_std(self.settings.recheck_failed_for).unwrap_or_default();
        let mut changed = 0;
        for refund in self.store.open_refunds(since, 500).await? {
            if let Some(payment) = self.store.get_payment(&refund.payment_id).await? {
                changed += u32::from(self.refresh_one(&payment, &refund).await);
            }
        }
        Ok(changed)
    }

    async fn refresh_one(&self, payment: &Payment, refund: &Refund) -> bool {
        let (Some(provider), Some(provider_payment_id), Some(provider_refund_id)) = (
            self.providers.get(&payment.account).ok(),
            payment.provider_payment_id.as_deref(),
            refund.provider_refund_id.as_deref(),
        ) else {
            return false;
        };
        match provider.get_refund(provider_payment_id, provider_refund_id).await {
            Ok(now) if now.status != refund.status => self
                .store
                .record_refund_status(&refund.id, refund.status, now.status, &now.provider_status, self.clock.now())
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(refund_id = %refund.id, error = %e, "could not record a refund's status");
                    false
                }),
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(refund_id = %refund.id, error = %e, "provider refund check failed");
                false
            }
        }
    }
}

/// The audit entry of an approval put back to waiting because the provider refused its refund.
fn reopened_entry(approval: &RefundApproval, refund: &Refund, at: DateTime<Utc>) -> AuditEntry {
    AuditEntry {
        at,
        actor_key_id: Actor::COUNTERFOIL.id(),
        actor_label: Actor::COUNTERFOIL.label(),
        action: "refund.approval_reopened".into(),
        subject: approval.id.clone(),
        detail: json!({
            "payment_id": approval.payment_id.as_ref(),
            "refund_id": refund.id,
            "failure_code": refund.failure_code,
        }),
    }
}

/// A refund about to be asked of the provider: `requester` (id, label) asked for it, `approved`
/// is the second person who approved it, if one was needed.
fn pending_refund(
    payment_id: &PaymentId,
    amount: i64,
    reason: String,
    requester: (String, String),
    approved: Option<SecondPerson>,
    now: DateTime<Utc>,
) -> Refund {
    Refund {
        id: crate::domain::refs::new_id("rfd_"),
        payment_id: payment_id.clone(),
        amount,
        status: RefundStatus::Pending,
        create_outcome: CreateOutcome::Pending,
        provider_refund_id: None,
        provider_status: None,
        reason,
        requested_by: requester.0,
        requested_by_label: requester.1,
        approved,
        failure_code: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
    }
}

/// Pending, or failed recently enough that the provider may yet make it succeed.
fn is_open(refund: &Refund, recheck_failed_since: DateTime<Utc>) -> bool {
    refund.provider_refund_id.is_some()
        && (refund.status == RefundStatus::Pending
            || (refund.status == RefundStatus::Failed && refund.updated_at >= recheck_failed_since))
}

fn apply_provider_refund(refund: &mut Refund, confirmed: ProviderRefund, at: DateTime<Utc>) {
    refund.create_outcome = CreateOutcome::Confirmed;
    refund.provider_refund_id = Some(confirmed.provider_refund_id);
    refund.provider_status = Some(confirmed.provider_status);
    refund.status = confirmed.status;
    if confirmed.status != RefundStatus::Pending {
        refund.finished_at = Some(at);
    }
}

/// What recording a refund request came to.
enum Reserved {
    /// Recorded; this much was available to refund before it.
    Available(i64),
    /// A repeat of an earlier request, answered without asking the provider again.
    Answered(RefundResponse),
}
