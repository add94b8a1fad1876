//! What needs a person: the queue, its counts for the dashboard, and the actions a person takes on
//! an item (ask the provider, retry a notification, mark it resolved with a note), each audited
//! under that person.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::notifications::NotificationService;
use super::payments::PaymentService;
use super::{Clock, FieldIssue, ServiceError};
use crate::domain::attention::{
    AttentionAction, AttentionCounts, AttentionItem, AttentionKind, AttentionQuery,
};
use crate::domain::resolution::Resolution;
use crate::domain::{Actor, FieldError, PaymentId, ServiceCode};
use crate::store::{AuditEntry, Store, StoreError};

/// The longest note a person may leave when resolving an item.
pub const NOTE_MAX_CHARS: usize = 1000;

/// What came of an action.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionOutcome {
    /// The item no longer needs a person.
    Settled,
    /// The action was taken and the item still waits (the provider still says "in progress").
    StillWaiting,
}

pub struct AttentionService {
    store: Arc<dyn Store>,
    payments: Arc<PaymentService>,
    notifications: Arc<NotificationService>,
    clock: Arc<dyn Clock>,
    /// A payment not final this long after it was made needs a person.
    stuck_after: chrono::Duration,
}

impl AttentionService {
    pub fn new(
        store: Arc<dyn Store>,
        payments: Arc<PaymentService>,
        notifications: Arc<NotificationService>,
        clock: Arc<dyn Clock>,
        stuck_after: std::time::Duration,
    ) -> Self {
        Self {
            store,
            payments,
            notifications,
            clock,
            stuck_after: chrono::Duration::from_std(stuck_after)
                .unwrap_or(chrono::Duration::hours(2)),
        }
    }

    /// How long a payment may stay not final before it is listed.
    pub fn stuck_after(&self) -> chrono::Duration {
        self.stuck_after
    }

    fn stuck_before(&self) -> DateTime<Utc> {
        self.clock.now() - self.stuck_after
    }

    /// One page of the queue, newest first, after `before`.
    pub async fn page(
        &self,
        kind: Option<AttentionKind>,
        service: Option<ServiceCode>,
        before: Option<(DateTime<Utc>, AttentionKind, String)>,
        limit: u32,
    ) -> Result<Vec<AttentionItem>, ServiceError> {
        let query = AttentionQuery {
            kind,
            service,
            stuck_before: self.stuck_before(),
            before,
            item_id: None,
            limit,
        };
        Ok(self.store.attention_page(&query).await?)
    }

    pub async fn counts(&self) -> Result<AttentionCounts, ServiceError> {
        Ok(self.store.attention_counts(self.stuck_before()).await?)
    }

    /// The item, if it still waits for a person.
    pub async fn waiting(
        &self,
        kind: AttentionKind,
        item_id: &str,
    ) -> Result<Option<AttentionItem>, ServiceError> {
        let query = AttentionQuery {
            kind: Some(kind),
            service: None,
            stuck_before: self.stuck_before(),
            before: None,
            item_id: Some(item_id.to_owned()),
            limit: 1,
        };
        Ok(self.store.attention_page(&query).await?.pop())
    }

    /// Takes `action` on an item that still waits; `note` is what a resolution says.
    pub async fn act(
        &self,
        actor: &Actor,
        kind: AttentionKind,
        item_id: &str,
        action: AttentionAction,
        note: &str,
    ) -> Result<ActionOutcome, ServiceError> {
        if !kind.allows(action) {
            return Err(ServiceError::NotWaiting);
        }
        let item = self
            .waiting(kind, item_id)
            .await?
            .ok_or(ServiceError::NotWaiting)?;
        match action {
            AttentionAction::AskProvider => self.ask_provider(actor, &item).await,
            AttentionAction::RetryNotification => {
                if self.notifications.retry(actor, &item.item_id).await? {
                    Ok(ActionOutcome::Settled)
                } else {
                    Err(ServiceError::NotWaiting)
                }
            }
            AttentionAction::Resolve => self.resolve(actor, &item, note).await,
        }
    }

    async fn ask_provider(
        &self,
        actor: &Actor,
        item: &AttentionItem,
    ) -> Result<ActionOutcome, ServiceError> {
        let id = item
            .payment_id
            .as_deref()
            .and_then(|id| PaymentId::parse(id).ok())
            .ok_or(ServiceError::PaymentNotFound)?;
        let payment = self.payments.ask_provider(actor, &id).await?;
        let settled = match item.kind {
            AttentionKind::UnknownCreate => {
                payment.create_outcome != crate::domain::CreateOutcome::Unknown
            }
            _ => payment.status.is_final(),
        };
        Ok(if settled {
            ActionOutcome::Settled
        } else {
            ActionOutcome::StillWaiting
        })
    }

    async fn resolve(
        &self,
        actor: &Actor,
        item: &AttentionItem,
        note: &str,
    ) -> Result<ActionOutcome, ServiceError> {
        let note = note.trim();
        let problem = if note.is_empty() {
            Some("Enter what was done, or why nothing needs doing")
        } else if note.chars().count() > NOTE_MAX_CHARS {
            Some("The note must be 1000 characters or fewer")
        } else {
            None
        };
        if let Some(message) = problem {
            return Err(ServiceError::Validation(vec![FieldIssue::new(
                "note",
                FieldError::new("invalid_value", message),
            )]));
        }
        let now = self.clock.now();
        let resolution = Resolution {
            at: now,
            by_id: actor.id(),
            by_label: actor.label(),
            note: note.to_owned(),
        };
        let audit = AuditEntry {
            at: now,
            actor_key_id: actor.id(),
            actor_label: actor.label(),
            action: "attention.resolved".into(),
            subject: item.item_id.clone(),
            detail: json!({"kind": item.kind.as_str(), "payment_id": item.payment_id}),
        };
        match self
            .store
            .resolve_attention(item.kind, &item.item_id, &resolution, &audit)
            .await
        {
            Ok(true) => Ok(ActionOutcome::Settled),
            Ok(false) => Err(ServiceError::NotWaiting),
            Err(StoreError::CardData) => Err(ServiceError::Validation(vec![FieldIssue::new(
                "note",
                FieldError::new(
                    "card_number",
                    "The note must not contain a card number: describe the payment by its reference",
                ),
            )])),
            Err(e) => Err(e.into()),
        }
    }
}
