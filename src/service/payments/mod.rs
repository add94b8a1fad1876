//! Payments: create a hosted payment exactly once per Idempotency-Key, read it (refreshing from the
//! provider while it is not final), list, cancel, and show its status timeline.

pub mod listing;
mod refresh;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{create_failure, Clock, ServiceError};
use crate::domain::idempotency::Idempotent;
use crate::domain::Actor;
use crate::domain::{
    decide_transition, CreateOutcome, Email, NewPayment, Payment, PaymentId, PaymentStatus,
    ServiceCode, TransitionDecision, TransitionSource,
};
use crate::metrics::Metrics;
use crate::providers::{CreateSession, ProviderError, ProviderPayment, ProviderRegistry};
use crate::store::{AuditEntry, ClaimOutcome, IdempotencyClaim, IdempotencySettle, Store};
use crate::views::PaymentView;

/// A configured council service, as payments need it.
#[derive(Debug, Clone)]
pub struct ServiceEntry {
    pub account: String,
}

#[derive(Debug, Clone)]
pub struct PaymentSettings {
    /// Whether `http://localhost` return URLs are allowed (never in production).
    pub allow_loopback_http: bool,
    pub refresh_on_read: bool,
    pub refresh_interval: Duration,
    /// How long an in-flight create blocks a repeat before it is presumed crashed.
    pub create_lease: Duration,
    /// How long an Idempotency-Key is remembered.
    pub idempotency_ttl: Duration,
}

/// How the mop-up poller picks payments.
#[derive(Debug, Clone)]
pub struct PollSettings {
    /// Only payments older than this (GOV.UK Pay's payer window is 90 minutes).
    pub min_age: Duration,
    /// How long a leased payment is left to the server that leased it.
    pub lease: Duration,
    pub batch_size: u32,
}

/// What one poller round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollSummary {
    pub polled: u32,
    pub changed: u32,
}

/// What a create call answers: a payment made now, or an earlier answer replayed verbatim.
/// One page of a listing, and where the next begins.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub enum CreateResponse {
    Created(Box<Payment>),
    Replayed { status: u16, body: String },
}

pub struct PaymentService {
    store: Arc<dyn Store>,
    providers: ProviderRegistry,
    services: BTreeMap<String, ServiceEntry>,
    clock: Arc<dyn Clock>,
    settings: PaymentSettings,
    metrics: Arc<Metrics>,
}

impl PaymentService {
    pub fn new(
        store: Arc<dyn Store>,
        providers: ProviderRegistry,
        services: BTreeMap<String, ServiceEntry>,
        clock: Arc<dyn Clock>,
        settings: PaymentSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            providers,
            services,
            clock,
            settings,
            metrics,
        }
    }

    /// Whether `service` is one this Counterfoil is configured for.
    pub fn offers(&self, service: &ServiceCode) -> bool {
        self.services.contains_key(service.as_ref())
    }

    /// Whether a return URL may be plain http on loopback (outside production).
    pub fn allows_loopback_return(&self) -> bool {
        self.settings.allow_loopback_http
    }

    /// Creates a hosted payment, at most once per (caller, Idempotency-Key).
    ///
    /// The local row is written before the provider is called. GOV.UK Pay has no idempotency for
    /// card payments, so a create whose answer is lost is never retried: the payment stays
    /// `create_outcome = unknown` until it is found at the provider.
    pub async fn create(
        &self,
        actor: &Actor,
        request: Idempotent,
        new: NewPayment,
    ) -> Result<CreateResponse, ServiceError> {
        let now = self.clock.now();
        let claim = IdempotencyClaim {
            principal: actor.id(),
            key: request.key,
            route: request.route,
            fingerprint: request.fingerprint,
            now,
            lease_until: now + self.settings.create_lease,
            expires_at: now + self.settings.idempotency_ttl,
        };
        let service = &self.services[new.service.as_ref()];
        let provider = self.providers.get(&service.account)?;
        let mut payment = new_row(new, &service.account, provider.kind(), now);

        if let Some(answered) = self.claim(actor, &claim, &payment).await? {
            return Ok(answered);
        }
        let answer = provider
            .create_payment(&CreateSession {
                payment_id: &payment.id,
                reference: &payment.request_ref,
                description: &payment.description,
                amount: payment.amount,
                return_url: &payment.return_url,
                email: payment.email.as_deref(),
                metadata: &payment.metadata,
            })
            .await;
        let at = self.clock.now();
        payment.updated_at = at;
        let (settle, result) = match answer {
            Ok(created) => {
                self.metrics
                    .payment_created(payment.service.as_ref(), provider.kind().as_str());
                confirm_from_provider(&mut payment, created, at);
                // A repeat of this request is answered with exactly this body.
                let body =
                    serde_json::to_string(&PaymentView::from(&payment)).expect("views serialise");
                (
                    IdempotencySettle::Completed { status: 201, body },
                    Ok(CreateResponse::Created(Box::new(payment.clone()))),
                )
            }
            Err(error) => {
                tracing::warn!(payment_id = %payment.id, error = %error, "provider create failed");
                let failure = create_failure(&error);
                payment.create_outcome = failure.outcome;
                if failure.outcome == CreateOutcome::NotCreated {
                    payment.status = PaymentStatus::Error;
                    payment.finished_at = Some(at);
                    payment.failure_code = failure.failure_code;
                }
                let answer = ServiceError::from_provider(&error, Some(payment.id.to_string()));
                (failure.settle, Err(answer))
            }
        };
        self.store
            .settle_payment_create(
                &payment,
                PaymentStatus::Created,
                TransitionSource::Api,
                // The CRM hears how its create went in this very response.
                false,
                Some((&claim, settle)),
            )
            .await?;
        result
    }

    /// Records the payment under its idempotency claim before the provider is asked; or answers
    /// a repeated create without asking again.
    async fn claim(
        &self,
        actor: &Actor,
        claim: &IdempotencyClaim,
        payment: &Payment,
    ) -> Result<Option<CreateResponse>, ServiceError> {
        let audit = AuditEntry {
            at: claim.now,
            actor_key_id: actor.id(),
            actor_label: actor.label(),
            action: "payment.created".into(),
            subject: payment.id.to_string(),
            detail: serde_json::json!({
                "service": payment.service,
                "amount": payment.amount,
                "request_ref": payment.request_ref,
            }),
        };
        match self
            .store
            .claim_and_insert_payment(claim, payment, &audit)
            .await?
        {
            ClaimOutcome::Claimed => Ok(None),
            ClaimOutcome::Replay { status, body } => {
                Ok(Some(CreateResponse::Replayed { status, body }))
            }
            ClaimOutcome::InFlight => Err(ServiceError::IdempotencyConflict),
            ClaimOutcome::KeyReused => Err(ServiceError::IdempotencyKeyReused),
            ClaimOutcome::Linked { resource_id } => {
                let payment_id = PaymentId::parse(&resource_id).map_err(|_| {
                    crate::store::StoreError::Corrupt("idempotency_keys.payment_id".into())
                })?;
                Ok(Some(self.answer_from_row(&payment_id).await?))
            }
        }
    }

    /// Answers a repeated create whose first attempt did not complete cleanly, from the row.
    async fn answer_from_row(&self, id: &PaymentId) -> Result<CreateResponse, ServiceError> {
        let payment = self.get(id).await?;
        match payment.create_outcome {
            CreateOutcome::Confirmed => Ok(CreateResponse::Created(Box::new(payment))),
            CreateOutcome::NotCreated => Err(ServiceError::ProviderRejected {
                payment_id: Some(payment.id.to_string()),
                code: payment.failure_code.clone(),
            }),
            CreateOutcome::Pending | CreateOutcome::Unknown => {
                Err(ServiceError::ProviderUnavailable {
                    payment_id: Some(payment.id.to_string()),
                    certain_nothing_happened: false,
                })
            }
        }
    }

    /// Reads a payment, first asking the provider for news when it is not final and was not
    /// asked recently.
    pub async fn get(&self, id: &PaymentId) -> Result<Payment, ServiceError> {
        let payment = self
            .store
            .get_payment(id)
            .await?
            .ok_or(ServiceError::PaymentNotFound)?;
        if !self.settings.refresh_on_read
            || payment.status.is_final()
            || !self.refresh_due(&payment)
        {
            return Ok(payment);
        }
        Ok(self.refresh(payment, TransitionSource::Api).await)
    }

    /// A person asks the provider about a payment now, whatever the refresh interval; audited
    /// under them before the provider is asked.
    pub async fn ask_provider(
        &self,
        actor: &Actor,
        id: &PaymentId,
    ) -> Result<Payment, ServiceError> {
        let payment = self
            .store
            .get_payment(id)
            .await?
            .ok_or(ServiceError::PaymentNotFound)?;
        self.store
            .append_audit(&crate::store::AuditEntry {
                at: self.clock.now(),
                actor_key_id: actor.id(),
                actor_label: actor.label(),
                action: "payment.provider_asked".into(),
                subject: id.to_string(),
                detail: serde_json::json!({"status": payment.status.as_str(),
                    "create_outcome": payment.create_outcome.as_str()}),
            })
            .await?;
        self.providers.get(&payment.account)?;
        if payment.status.is_final() && payment.create_outcome != CreateOutcome::Unknown {
            return Ok(payment);
        }
        Ok(self.refresh(payment, TransitionSource::Poll).await)
    }

    fn refresh_due(&self, payment: &Payment) -> bool {
        let interval =
            chrono::Duration::from_std(self.settings.refresh_interval).unwrap_or_default();
        payment
            .refreshed_at
            .is_none_or(|last| self.clock.now() - last >= interval)
    }

    /// Cancels a payment the citizen has not finished. Cancelling a cancelled payment is a no-op.
    pub async fn cancel(&self, id: &PaymentId) -> Result<Payment, ServiceError> {
        let payment = self.get(id).await?;
        if payment.status == PaymentStatus::Cancelled {
            return Ok(payment);
        }
        if payment.status.is_final() {
            return Err(ServiceError::NotCancellable {
                reason: "the payment is already final",
            });
        }
        let (CreateOutcome::Confirmed, Some(provider_id)) =
            (payment.create_outcome, payment.provider_payment_id.clone())
        else {
            return Err(ServiceError::NotCancellable {
                reason: "the provider has not confirmed this payment yet",
            });
        };
        let provider = self.providers.get(&payment.account)?;
        match provider.cancel_payment(&provider_id).await {
            Ok(()) => self
                .apply_reported(
                    payment,
                    PaymentStatus::Cancelled,
                    Some("P0040".into()),
                    None,
                    TransitionSource::Api,
                )
                .await
                .map_err(|(_, e)| e),
            Err(ProviderError::Conflict { .. }) => {
                // Too late: the citizen finished first. Record what actually happened.
                let payment = self.refresh(payment, TransitionSource::Api).await;
                if payment.status == PaymentStatus::Cancelled {
                    Ok(payment)
                } else {
                    Err(ServiceError::NotCancellable {
                        reason: "the payment finished at the provider",
                    })
                }
            }
            Err(e) => Err(ServiceError::from_provider(
                &e,
                Some(payment.id.to_string()),
            )),
        }
    }

    pub async fn events(
        &self,
        id: &PaymentId,
    ) -> Result<Vec<crate::domain::PaymentEvent>, ServiceError> {
        if self.store.get_payment(id).await?.is_none() {
            return Err(ServiceError::PaymentNotFound);
        }
        Ok(self.store.payment_events(id).await?)
    }
}

/// Copies what the provider said about a payment it created onto our row. This does not count as
/// a refresh: the first read afterwards always asks the provider (the citizen may be back already).
fn confirm_from_provider(payment: &mut Payment, found: ProviderPayment, at: DateTime<Utc>) {
    payment.create_outcome = CreateOutcome::Confirmed;
    payment.provider_payment_id = Some(found.provider_payment_id);
    payment.next_url = found.next_url;
    if let TransitionDecision::Apply { to, .. } = decide_transition(payment.status, found.status) {
        payment.status = to;
        payment.failure_code = found.failure_code;
        if to.is_final() {
            // Dated by the provider when it says (a create whose answer was lost may be found
            // days later), within the payment's life.
            payment.finished_at = Some(crate::domain::happened_at(
                found.finished_at,
                payment.created_at,
                at,
            ));
        }
    }
}

/// The payment's row as first written, before the provider is asked.
fn new_row(
    new: NewPayment,
    account: &str,
    provider: crate::domain::ProviderKind,
    now: DateTime<Utc>,
) -> Payment {
    Payment {
        id: PaymentId::new(),
        request_ref: new.request_ref.into_inner(),
        service: new.service.into_inner(),
        account: account.to_owned(),
        provider,
        amount: new.amount.pence(),
        description: new.description.into_inner(),
        email: new.email.map(Email::into_inner),
        metadata: new.metadata.pairs().clone(),
        return_url: new.return_url.as_str().to_owned(),
        status: PaymentStatus::Created,
        create_outcome: CreateOutcome::Pending,
        provider_payment_id: None,
        next_url: None,
        failure_code: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
        refreshed_at: None,
        refunded_amount: 0,
    }
}
