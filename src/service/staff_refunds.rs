//! Refunds asked for by a person in the console: sent at once up to the service's threshold,
//! above it kept waiting until a second person (a refund approver who is not the requester)
//! approves. Nothing waiting reaches the provider, the ledger or the CRM.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::refunds::{RefundResponse, RefundService};
use super::{Clock, Principal, ServiceError};
use crate::domain::api_key::Role;
use crate::domain::idempotency::Idempotent;
use crate::domain::refund::{refundable_remaining, NewRefund, Refund, RefundStatus};
use crate::domain::staff::{
    may_approve, needs_second_person, ApprovalRefused, Permission, StaffMember,
};
use crate::domain::{AmountPence, IdempotencyKey, PaymentId, PaymentStatus};
use crate::store::{ApprovalDecision, ApprovalStatus, AuditEntry, RefundApproval, Store};

/// What became of a refund asked for in the console.
#[derive(Debug, Clone)]
pub enum StaffRefundOutcome {
    /// Sent to the provider (it may still be pending there).
    Sent(Box<Refund>),
    /// The same form was sent before; its refund stands.
    AlreadySent,
    /// Over the threshold: waiting for a second person.
    Waiting(Box<RefundApproval>),
}

/// What may still be refunded, as the refund form shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refundable {
    /// Taken less every refund not known to have failed and every refund waiting for approval.
    pub available: i64,
    /// Refunds above this need a second person.
    pub threshold: i64,
    /// Only a succeeded payment can be refunded at all.
    pub succeeded: bool,
}

pub struct StaffRefundService {
    store: Arc<dyn Store>,
    refunds: Arc<RefundService>,
    clock: Arc<dyn Clock>,
    thresholds: BTreeMap<String, i64>,
    default_threshold: i64,
}

/// The API's idea of the caller, for the services the console shares with the API: the person's
/// subject as the key id, their name and roles as its label.
pub fn principal_of(member: &StaffMember) -> Principal {
    Principal {
        key_id: member.actor_id(),
        role: Role::Finance,
        label: member.actor_label(),
    }
}

impl StaffRefundService {
    pub fn new(
        store: Arc<dyn Store>,
        refunds: Arc<RefundService>,
        clock: Arc<dyn Clock>,
        thresholds: BTreeMap<String, i64>,
        default_threshold: i64,
    ) -> Self {
        Self {
            store,
            refunds,
            clock,
            thresholds,
            default_threshold,
        }
    }

    fn threshold(&self, service: &str) -> i64 {
        self.thresholds
            .get(service)
            .copied()
            .unwrap_or(self.default_threshold)
    }

    /// What may still be refunded of a payment (nothing unless it succeeded).
    pub async fn refundable(&self, payment_id: &PaymentId) -> Result<Refundable, ServiceError> {
        let payment = self
            .store
            .get_payment(payment_id)
            .await?
            .ok_or(ServiceError::PaymentNotFound)?;
        let threshold = self.threshold(&payment.service);
        if payment.status != PaymentStatus::Succeeded {
            return Ok(Refundable {
                available: 0,
                threshold,
                succeeded: false,
            });
        }
        let refunded: i64 = self
            .store
            .list_refunds(payment_id)
            .await?
            .iter()
            .filter(|r| r.status != RefundStatus::Failed)
            .map(|r| r.amount)
            .sum();
        let waiting: i64 = self
            .store
            .refund_approvals_for_payment(payment_id)
            .await?
            .iter()
            .filter(|a| a.status == ApprovalStatus::Waiting)
            .map(|a| a.amount)
            .sum();
        Ok(Refundable {
            available: refundable_remaining(payment.amount, refunded + waiting),
            threshold,
            succeeded: true,
        })
    }

    /// Asks for a refund as `who`, once per form (`form_token`, the form's own idempotency key).
    pub async fn request(
        &self,
        who: &StaffMember,
        payment_id: &PaymentId,
        form_token: IdempotencyKey,
        new: NewRefund,
    ) -> Result<StaffRefundOutcome, ServiceError> {
        if !who.may(Permission::RequestRefund) {
            return Err(ServiceError::Forbidden);
        }
        let approval_id = format!("apr_{}", form_token.as_ref());
        if let Some(existing) = self.store.get_refund_approval(&approval_id).await? {
            return Ok(StaffRefundOutcome::Waiting(Box::new(existing)));
        }
        let refundable = self.refundable(payment_id).await?;
        let amount = new.amount.pence();
        if !refundable.succeeded {
            return Err(ServiceError::NotRefundable);
        }
        // What waits for a second person is spoken for, whichever way this one goes.
        if amount > refundable.available {
            return Err(ServiceError::RefundExceedsCaptured {
                available: refundable.available,
            });
        }
        if !needs_second_person(amount, refundable.threshold) {
            return self.send(who, payment_id, form_token, new).await;
        }
        let now = self.clock.now();
        let approval = RefundApproval {
            id: approval_id,
            payment_id: payment_id.clone(),
            amount,
            reason: new.reason,
            requested_by: who.actor_id(),
            requested_by_label: who.actor_label(),
            requested_at: now,
            status: ApprovalStatus::Waiting,
            decided_by: None,
            decided_by_label: None,
            decided_at: None,
            refund_id: None,
        };
        let audit = AuditEntry {
            at: now,
            actor_key_id: who.actor_id(),
            actor_label: who.actor_label(),
            action: "refund.approval_requested".into(),
            subject: approval.id.clone(),
            detail: json!({"payment_id": payment_id.as_ref(), "amount": amount}),
        };
        self.store.insert_refund_approval(&approval, &audit).await?;
        let stored = self
            .store
            .get_refund_approval(&approval.id)
            .await?
            .unwrap_or(approval);
        Ok(StaffRefundOutcome::Waiting(Box::new(stored)))
    }

    async fn send(
        &self,
        who: &StaffMember,
        payment_id: &PaymentId,
        key: IdempotencyKey,
        new: NewRefund,
    ) -> Result<StaffRefundOutcome, ServiceError> {
        let principal = principal_of(who);
        let route = format!("console refund {payment_id}");
        let body = json!({"amount": new.amount.pence(), "reason": new.reason});
        let request = Idempotent::new(key, route, &principal.key_id, &body);
        match self
            .refunds
            .request(&principal, payment_id, request, new)
            .await?
        {
            RefundResponse::Created(refund) => Ok(StaffRefundOutcome::Sent(refund)),
            RefundResponse::Replayed { .. } => Ok(StaffRefundOutcome::AlreadySent),
        }
    }

    /// Refunds waiting for a second person, oldest first.
    pub async fn waiting(&self) -> Result<Vec<RefundApproval>, ServiceError> {
        Ok(self.store.waiting_refund_approvals(200).await?)
    }

    /// A payment's refunds that needed a second person, oldest first.
    pub async fn approvals_for(
        &self,
        payment_id: &PaymentId,
    ) -> Result<Vec<RefundApproval>, ServiceError> {
        Ok(self.store.refund_approvals_for_payment(payment_id).await?)
    }

    pub async fn approval(&self, id: &str) -> Result<RefundApproval, ServiceError> {
        self.store
            .get_refund_approval(id)
            .await?
            .ok_or(ServiceError::ApprovalNotFound)
    }

    /// The second person approves: the refund is sent to the provider as theirs.
    pub async fn approve(
        &self,
        who: &StaffMember,
        approval_id: &str,
    ) -> Result<StaffRefundOutcome, ServiceError> {
        let approval = self
            .decide(who, approval_id, ApprovalStatus::Approved)
            .await?;
        let amount =
            AmountPence::parse(approval.amount).map_err(|_| ServiceError::NotRefundable)?;
        let key = IdempotencyKey::parse(&approval.id).map_err(|_| ServiceError::NotRefundable)?;
        let new = NewRefund {
            amount,
            reason: approval.reason.clone(),
        };
        let outcome = self.send(who, &approval.payment_id, key, new).await?;
        if let StaffRefundOutcome::Sent(refund) = &outcome {
            self.store
                .link_refund_approval(&approval.id, &refund.id)
                .await?;
        }
        Ok(outcome)
    }

    /// The second person declines: nothing is refunded.
    pub async fn decline(&self, who: &StaffMember, approval_id: &str) -> Result<(), ServiceError> {
        self.decide(who, approval_id, ApprovalStatus::Declined)
            .await
            .map(|_| ())
    }

    async fn decide(
        &self,
        who: &StaffMember,
        approval_id: &str,
        status: ApprovalStatus,
    ) -> Result<RefundApproval, ServiceError> {
        let approval = self.approval(approval_id).await?;
        match may_approve(who, &approval.requested_by) {
            Err(ApprovalRefused::OwnRequest) => return Err(ServiceError::SecondPersonRequired),
            Err(ApprovalRefused::NotAnApprover) => return Err(ServiceError::Forbidden),
            Ok(()) => {}
        }
        let at = self.clock.now();
        let action = match status {
            ApprovalStatus::Approved => "refund.approved",
            _ => "refund.declined",
        };
        let audit = AuditEntry {
            at,
            actor_key_id: who.actor_id(),
            actor_label: who.actor_label(),
            action: action.into(),
            subject: approval.id.clone(),
            detail: json!({
                "payment_id": approval.payment_id.as_ref(),
                "amount": approval.amount,
                "requested_by": approval.requested_by,
            }),
        };
        let decision = ApprovalDecision {
            id: &approval.id,
            status,
            decided_by: &audit.actor_key_id,
            decided_by_label: &audit.actor_label,
            at,
        };
        if !self.store.decide_refund_approval(&decision, &audit).await? {
            return Err(ServiceError::AlreadyDecided);
        }
        Ok(approval)
    }
}
