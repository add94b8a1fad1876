//! Refunds asked for by a person in the console: sent at once while what that person has refunded
//! alone stays within the service's threshold, otherwise kept waiting until a second person (a
//! refund approver who is not the requester) approves or declines with a reason. Nothing waiting
//! reaches the provider, the ledger or the CRM.

use std::sync::Arc;

use serde_json::json;

use super::refunds::{RefundChannel, RefundResponse, RefundService};
use super::{Clock, ServiceError};
use crate::domain::idempotency::Idempotent;
use crate::domain::refund::{refundable_remaining, NewRefund, Refund, RefundStatus};
use crate::domain::staff::{may_approve, ApprovalRefused, Permission, StaffMember};
use crate::domain::Actor;
use crate::domain::{IdempotencyKey, PaymentId, PaymentStatus};
use crate::store::{
    ApprovalDecision, ApprovalInsert, ApprovalStatus, AuditEntry, RefundApproval, Store,
};

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
    /// What one person may refund of this payment alone; beyond it a second person approves.
    pub threshold: i64,
    /// Only a succeeded payment can be refunded at all.
    pub succeeded: bool,
}

pub struct StaffRefundService {
    store: Arc<dyn Store>,
    refunds: Arc<RefundService>,
    clock: Arc<dyn Clock>,
}

impl StaffRefundService {
    pub fn new(store: Arc<dyn Store>, refunds: Arc<RefundService>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            refunds,
            clock,
        }
    }

    /// What may still be refunded of a payment (nothing unless it succeeded).
    pub async fn refundable(&self, payment_id: &PaymentId) -> Result<Refundable, ServiceError> {
        let payment = self
            .store
            .get_payment(payment_id)
            .await?
            .ok_or(ServiceError::PaymentNotFound)?;
        let threshold = self.refunds.rule().threshold(&payment.service);
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

    /// Asks for a refund as `who`, once per form (`form_token`, the form's own idempotency key):
    /// sent when it keeps what they refunded alone within the rule, else left waiting.
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
        let actor = Actor::Person(who.clone());
        let route = format!("console refund {payment_id}");
        let body = json!({"amount": new.amount.pence(), "reason": new.reason});
        let request = Idempotent::new(form_token, route, &actor.id(), &body);
        let sent = self
            .refunds
            .request(
                &actor,
                payment_id,
                request,
                new.clone(),
                RefundChannel::Console,
            )
            .await;
        match sent {
            Ok(RefundResponse::Created(refund)) => Ok(StaffRefundOutcome::Sent(refund)),
            Ok(RefundResponse::Replayed { .. }) => Ok(StaffRefundOutcome::AlreadySent),
            Err(ServiceError::NeedsSecondPerson { .. }) => {
                self.wait_for_second_person(who, payment_id, approval_id, new)
                    .await
            }
            Err(e) => Err(e),
        }
    }

    async fn wait_for_second_person(
        &self,
        who: &StaffMember,
        payment_id: &PaymentId,
        approval_id: String,
        new: NewRefund,
    ) -> Result<StaffRefundOutcome, ServiceError> {
        let now = self.clock.now();
        let amount = new.amount.pence();
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
            decline_reason: None,
            last_failure: None,
        };
        let audit = AuditEntry {
            at: now,
            actor_key_id: who.actor_id(),
            actor_label: who.actor_label(),
            action: "refund.approval_requested".into(),
            subject: approval.id.clone(),
            detail: json!({"payment_id": payment_id.as_ref(), "amount": amount}),
        };
        match self.store.insert_refund_approval(&approval, &audit).await? {
            ApprovalInsert::Inserted | ApprovalInsert::Existing => {}
            ApprovalInsert::Exceeds { available } => {
                return Err(ServiceError::RefundExceedsCaptured { available })
            }
            ApprovalInsert::NotRefundable => return Err(ServiceError::NotRefundable),
        }
        let stored = self
            .store
            .get_refund_approval(&approval.id)
            .await?
            .unwrap_or(approval);
        Ok(StaffRefundOutcome::Waiting(Box::new(stored)))
    }

    /// Refunds waiting for a second person, oldest first.
    pub async fn waiting(&self) -> Result<Vec<RefundApproval>, ServiceError> {
        Ok(self.store.waiting_refund_approvals(200).await?)
    }

    /// Refunds sent and refunds waiting for or declined by a second person, newest first.
    pub async fn register(
        &self,
        query: &crate::store::RegisterQuery,
    ) -> Result<Vec<crate::domain::refund::RefundRecord>, ServiceError> {
        Ok(self.store.refund_register(query).await?)
    }

    /// What became of `who`'s own requests that needed a second person, newest first.
    pub async fn requested_by(
        &self,
        who: &StaffMember,
    ) -> Result<Vec<RefundApproval>, ServiceError> {
        Ok(self
            .store
            .refund_approvals_requested_by(&who.actor_id(), 50)
            .await?)
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

    /// The second person approves: the refund is sent to the provider, still the requester's,
    /// with the approver recorded beside them.
    pub async fn approve(
        &self,
        who: &StaffMember,
        approval_id: &str,
    ) -> Result<Refund, ServiceError> {
        let approval = self.approval(approval_id).await?;
        self.second_person(who, &approval)?;
        self.refunds
            .send_approved(&approval, &Actor::Person(who.clone()))
            .await
    }

    /// The second person declines, saying why: nothing is refunded, and the requester sees why.
    pub async fn decline(
        &self,
        who: &StaffMember,
        approval_id: &str,
        reason: &str,
    ) -> Result<(), ServiceError> {
        let approval = self.approval(approval_id).await?;
        self.second_person(who, &approval)?;
        let at = self.clock.now();
        let audit = AuditEntry {
            at,
            actor_key_id: who.actor_id(),
            actor_label: who.actor_label(),
            action: "refund.declined".into(),
            subject: approval.id.clone(),
            detail: json!({
                "payment_id": approval.payment_id.as_ref(),
                "amount": approval.amount,
                "requested_by": approval.requested_by,
            }),
        };
        let decision = ApprovalDecision {
            id: &approval.id,
            status: ApprovalStatus::Declined,
            decided_by: &audit.actor_key_id,
            decided_by_label: &audit.actor_label,
            at,
            decline_reason: Some(reason),
        };
        if !self
            .store
            .decline_refund_approval(&decision, &audit)
            .await?
        {
            return Err(ServiceError::AlreadyDecided);
        }
        Ok(())
    }

    /// The two-person rule: an approver, and not the requester.
    fn second_person(
        &self,
        who: &StaffMember,
        approval: &RefundApproval,
    ) -> Result<(), ServiceError> {
        match may_approve(who, &approval.requested_by) {
            Err(ApprovalRefused::OwnRequest) => Err(ServiceError::SecondPersonRequired),
            Err(ApprovalRefused::NotAnApprover) => Err(ServiceError::Forbidden),
            Ok(()) if approval.status != ApprovalStatus::Waiting => {
                Err(ServiceError::AlreadyDecided)
            }
            Ok(()) => Ok(()),
        }
    }
}
