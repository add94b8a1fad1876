//! Payments: create a hosted payment exactly once per Idempotency-Key, read it (refreshing from the
//! provider while it is not final), list, cancel, and show its status timeline.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};

use super::views::{PaymentEventView, PaymentPage, PaymentView};
use super::{create_failure, Clock, FieldIssue, Principal, ServiceError};
use crate::domain::idempotency::Idempotent;
use crate::domain::{
    decide_transition, CreateOutcome, Email, FieldError, NewPayment, Payment, PaymentId,
    PaymentStatus, RequestRef, ServiceCode, TransitionDecision, TransitionSource,
};
use crate::metrics::Metrics;
use crate::providers::{CreateSession, ProviderError, ProviderPayment, ProviderRegistry};
use crate::store::{
    AuditEntry, ClaimOutcome, IdempotencyClaim, IdempotencySettle, PaymentQuery, StatusChange,
    Store,
};

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
#[derive(Debug, Clone)]
pub enum CreateResponse {
    Created(Box<PaymentView>),
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
        principal: &Principal,
        request: Idempotent,
        new: NewPayment,
    ) -> Result<CreateResponse, ServiceError> {
        let now = self.clock.now();
        let claim = IdempotencyClaim {
            principal: principal.key_id.clone(),
            key: request.key,
            route: request.route,
            fingerprint: request.fingerprint,
            now,
            lease_until: now + self.settings.create_lease,
            expires_at: now + self.settings.idempotency_ttl,
        };
        let service = &self.services[new.service.as_ref()];
        let provider = self
            .providers
            .get(&service.account)
            .expect("startup registers a provider for every configured account");
        let mut payment = Payment {
            id: PaymentId::new(),
            request_ref: new.request_ref.into_inner(),
            service: new.service.into_inner(),
            account: service.account.clone(),
            provider: provider.kind(),
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
        };

        let audit = AuditEntry {
            at: now,
            actor_key_id: principal.key_id.clone(),
            actor_label: principal.label.clone(),
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
            .claim_and_insert_payment(&claim, &payment, &audit)
            .await?
        {
            ClaimOutcome::Claimed => {}
            ClaimOutcome::Replay { status, body } => {
                return Ok(CreateResponse::Replayed { status, body })
            }
            ClaimOutcome::InFlight => return Err(ServiceError::IdempotencyConflict),
            ClaimOutcome::KeyReused => return Err(ServiceError::IdempotencyKeyReused),
            ClaimOutcome::Linked { resource_id } => {
                let payment_id = PaymentId::parse(&resource_id).map_err(|_| {
                    crate::store::StoreError::Corrupt("idempotency_keys.payment_id".into())
                })?;
                return self.answer_from_row(&payment_id).await;
            }
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
                let view = PaymentView::from(&payment);
                let body = serde_json::to_string(&view).expect("views serialise");
                (
                    IdempotencySettle::Completed { status: 201, body },
                    Ok(CreateResponse::Created(Box::new(view))),
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

    /// Answers a repeated create whose first attempt did not complete cleanly, from the row.
    async fn answer_from_row(&self, id: &PaymentId) -> Result<CreateResponse, ServiceError> {
        let payment = self.get(id).await?;
        match payment.create_outcome {
            CreateOutcome::Confirmed => Ok(CreateResponse::Created(Box::new(PaymentView::from(
                &payment,
            )))),
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

    fn refresh_due(&self, payment: &Payment) -> bool {
        let interval =
            chrono::Duration::from_std(self.settings.refresh_interval).unwrap_or_default();
        payment
            .refreshed_at
            .is_none_or(|last| self.clock.now() - last >= interval)
    }

    /// Asks the provider about a payment that is not final. Provider trouble is logged and the
    /// stored state returned: a read never fails because the provider is down.
    async fn refresh(&self, payment: Payment, source: TransitionSource) -> Payment {
        let Some(provider) = self.providers.get(&payment.account) else {
            return payment;
        };
        let now = self.clock.now();
        let outcome = match (
            payment.create_outcome,
            payment.provider_payment_id.as_deref(),
        ) {
            (CreateOutcome::Confirmed, Some(provider_id)) => {
                provider.get_payment(provider_id).await.map(Some)
            }
            (CreateOutcome::Unknown, _) => {
                provider
                    .find_payment(&payment.request_ref, &payment.id, payment.created_at)
                    .await
            }
            _ => return payment,
        };
        if let Err(e) = self.store.mark_refreshed(&payment.id, now).await {
            tracing::warn!(payment_id = %payment.id, error = %e, "could not note refresh time");
        }
        match outcome {
            Ok(Some(reported)) if payment.create_outcome == CreateOutcome::Unknown => {
                self.resolve_unknown_create(payment, reported, source).await
            }
            Ok(Some(reported)) => self
                .apply_reported(payment, reported.status, reported.failure_code, source)
                .await
                .unwrap_or_else(|(payment, e)| {
                    tracing::warn!(payment_id = %payment.id, error = %e, "could not record provider status");
                    payment
                }),
            Ok(None) => payment,
            Err(e) => {
                tracing::warn!(payment_id = %payment.id, error = %e, "provider refresh failed");
                payment
            }
        }
    }

    /// A payment whose create answer was lost has been found at the provider: record it.
    pub(crate) async fn resolve_unknown_create(
        &self,
        mut payment: Payment,
        found: ProviderPayment,
        source: TransitionSource,
    ) -> Payment {
        let at = self.clock.now();
        let previous = payment.status;
        payment.updated_at = at;
        confirm_from_provider(&mut payment, found, at);
        match self
            .store
            .settle_payment_create(&payment, previous, source, true, None)
            .await
        {
            Ok(_) => {
                tracing::info!(payment_id = %payment.id, "resolved a create whose answer was lost");
                self.store
                    .get_payment(&payment.id)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(payment)
            }
            Err(e) => {
                tracing::warn!(payment_id = %payment.id, error = %e, "could not record a resolved create");
                payment
            }
        }
    }

    /// Moves a payment towards a status the provider reported, through the state machine, retrying
    /// if another writer changed it in between.
    pub(crate) async fn apply_reported(
        &self,
        mut payment: Payment,
        reported: PaymentStatus,
        failure_code: Option<String>,
        source: TransitionSource,
    ) -> Result<Payment, (Payment, ServiceError)> {
        for _ in 0..5 {
            let TransitionDecision::Apply { from, to } =
                decide_transition(payment.status, reported)
            else {
                return Ok(payment);
            };
            let change = StatusChange {
                payment_id: payment.id.clone(),
                from,
                to,
                at: self.clock.now(),
                source,
                failure_code: failure_code.clone(),
            };
            let applied = match self.store.record_status_change(&change).await {
                Ok(applied) => applied,
                Err(e) => return Err((payment, e.into())),
            };
            match self.store.get_payment(&payment.id).await {
                Ok(Some(fresh)) => payment = fresh,
                Ok(None) => return Err((payment, ServiceError::PaymentNotFound)),
                Err(e) => return Err((payment, e.into())),
            }
            if applied {
                return Ok(payment);
            }
        }
        Ok(payment)
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
        let provider = self
            .providers
            .get(&payment.account)
            .expect("startup registers a provider for every configured account");
        match provider.cancel_payment(&provider_id).await {
            Ok(()) => self
                .apply_reported(
                    payment,
                    PaymentStatus::Cancelled,
                    Some("P0040".into()),
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

    /// One round of the mop-up poller: asks the provider about every payment still not final some
    /// time after the payer's window closed, and resolves creates whose answer was lost. Rows are
    /// leased first (committed, skipping rows another server holds), so no transaction is open
    /// during the HTTP calls and several servers can poll side by side.
    pub async fn poll_once(&self, poll: &PollSettings) -> Result<PollSummary, ServiceError> {
        let mut summary = PollSummary::default();
        loop {
            let now = self.clock.now();
            let min_age = chrono::Duration::from_std(poll.min_age).unwrap_or_default();
            let lease = chrono::Duration::from_std(poll.lease).unwrap_or_default();
            let batch = self
                .store
                .lease_payments_to_poll(now - min_age, now, now + lease, poll.batch_size)
                .await?;
            let full = batch.len() as u32 == poll.batch_size;
            for payment in batch {
                summary.polled += 1;
                let before = (payment.status, payment.create_outcome);
                let after = match payment.create_outcome {
                    CreateOutcome::Confirmed => self.refresh(payment, TransitionSource::Poll).await,
                    CreateOutcome::Unknown | CreateOutcome::Pending => {
                        self.resolve_or_give_up(payment).await
                    }
                    CreateOutcome::NotCreated => payment,
                };
                if (after.status, after.create_outcome) != before {
                    summary.changed += 1;
                }
            }
            if !full {
                return Ok(summary);
            }
        }
    }

    /// An unresolved create, long past the payer's window: found at the provider, it is recorded;
    /// not found (search has long caught up by now), the provider never made it.
    async fn resolve_or_give_up(&self, payment: Payment) -> Payment {
        let Some(provider) = self.providers.get(&payment.account) else {
            return payment;
        };
        match provider
            .find_payment(&payment.request_ref, &payment.id, payment.created_at)
            .await
        {
            Ok(Some(found)) => {
                self.resolve_unknown_create(payment, found, TransitionSource::Poll)
                    .await
            }
            Ok(None) => {
                let mut given_up = payment.clone();
                let at = self.clock.now();
                given_up.status = PaymentStatus::Error;
                given_up.create_outcome = CreateOutcome::NotCreated;
                given_up.failure_code = Some("not_found_at_provider".into());
                given_up.updated_at = at;
                given_up.finished_at = Some(at);
                match self
                    .store
                    .settle_payment_create(
                        &given_up,
                        payment.status,
                        TransitionSource::Poll,
                        true,
                        None,
                    )
                    .await
                {
                    Ok(_) => {
                        tracing::warn!(payment_id = %payment.id, "unresolved create not found at the provider: recorded as not created");
                        given_up
                    }
                    Err(e) => {
                        tracing::warn!(payment_id = %payment.id, error = %e, "could not record an unresolved create");
                        payment
                    }
                }
            }
            Err(e) => {
                tracing::warn!(payment_id = %payment.id, error = %e, "provider search failed");
                payment
            }
        }
    }

    pub async fn events(&self, id: &PaymentId) -> Result<Vec<PaymentEventView>, ServiceError> {
        if self.store.get_payment(id).await?.is_none() {
            return Err(ServiceError::PaymentNotFound);
        }
        Ok(self
            .store
            .payment_events(id)
            .await?
            .iter()
            .map(PaymentEventView::from)
            .collect())
    }

    /// Lists payments newest first, from query parameters (each bad one is named).
    pub async fn list(
        &self,
        params: &HashMap<String, String>,
    ) -> Result<PaymentPage, ServiceError> {
        let query = parse_list_query(params)?;
        let limit = query.limit as usize;
        let mut rows = self
            .store
            .list_payments(&PaymentQuery {
                limit: query.limit + 1,
                ..query
            })
            .await?;
        let next_cursor = (rows.len() > limit).then(|| {
            rows.truncate(limit);
            let last = rows.last().expect("limit is at least 1");
            encode_cursor(last.created_at, &last.id)
        });
        Ok(PaymentPage {
            items: rows.iter().map(PaymentView::from).collect(),
            next_cursor,
        })
    }
}

/// A metadata object's string pairs (any other value is refused).
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
            payment.finished_at = Some(at);
        }
    }
}

fn encode_cursor(at: DateTime<Utc>, id: &PaymentId) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}|{id}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    ))
}

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, PaymentId)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (at, id) = text.split_once('|')?;
    Some((
        DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
        PaymentId::parse(id).ok()?,
    ))
}

fn parse_list_query(params: &HashMap<String, String>) -> Result<PaymentQuery, ServiceError> {
    let mut issues = Vec::new();
    let mut query = PaymentQuery {
        limit: 50,
        ..PaymentQuery::default()
    };
    for (name, value) in params {
        let result: Result<(), FieldError> = match name.as_str() {
            "request_ref" => RequestRef::parse(value).map(|r| query.request_ref = Some(r.into_inner())),
            "service" => ServiceCode::parse(value).map(|s| query.service = Some(s.into_inner())),
            "status" => value
                .parse::<PaymentStatus>()
                .map(|s| query.status = Some(s))
                .map_err(|_| FieldError::new("invalid_value", "must be one of created, in_progress, succeeded, failed, cancelled, expired, error")),
            "created_from" | "created_to" => crate::domain::dates::parse_instant(value)
                .map(|t| {
                    if name == "created_from" { query.created_from = Some(t) } else { query.created_to = Some(t) }
                }),
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => {
                    query.limit = n;
                    Ok(())
                }
                _ => Err(FieldError::new("out_of_range", "must be a whole number from 1 to 100")),
            },
            "cursor" => decode_cursor(value)
                .map(|c| query.before = Some(c))
                .ok_or_else(|| FieldError::new("invalid_format", "is not a cursor this API gave out")),
            _ => Err(FieldError::new("unknown_parameter", "is not a parameter of this listing")),
        };
        if let Err(e) = result {
            issues.push(FieldIssue::new(name.clone(), e));
        }
    }
    if issues.is_empty() {
        Ok(query)
    } else {
        issues.sort_by(|a, b| a.field.cmp(&b.field));
        Err(ServiceError::Validation(issues))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = PaymentId::new();
        let at = Utc::now();
        let (back_at, back_id) = decode_cursor(&encode_cursor(at, &id)).unwrap();
        assert_eq!(back_id, id);
        assert_eq!(back_at.timestamp_micros(), at.timestamp_micros());
        assert!(decode_cursor("not-a-cursor").is_none());
    }

    #[test]
    fn list_parameters_are_each_named_when_wrong() {
        let params: HashMap<String, String> = [
            ("status", "success"),
            ("limit", "0"),
            ("created_from", "yesterday"),
            ("colour", "blue"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let Err(ServiceError::Validation(issues)) = parse_list_query(&params) else {
            panic!("expected validation errors");
        };
        let fields: Vec<_> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["colour", "created_from", "limit", "status"]);
    }
}
