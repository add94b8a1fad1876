//! Keeping payments true to the provider: a read's refresh, the mop-up poller, and creates whose
//! answer was lost, resolved by searching the provider.

use crate::domain::{
    decide_transition, CreateOutcome, Payment, PaymentStatus, TransitionDecision, TransitionSource,
};
use crate::providers::ProviderPayment;
use crate::service::ServiceError;
use crate::store::StatusChange;

use super::*;

impl PaymentService {
    /// Asks the provider about a payment that is not final. Provider trouble is logged and the
    /// stored state returned: a read never fails because the provider is down.
    pub(super) async fn refresh(&self, payment: Payment, source: TransitionSource) -> Payment {
        let Ok(provider) = self.providers.get(&payment.account) else {
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
        // What the provider said is kept only through the card-number guard: a field that reads
        // as one is withheld, the rest applied (an id that reads as one is not this payment's).
        let outcome = outcome.map(|reported| {
            reported.and_then(|mut view| view.withhold_card_numbers().then_some(view))
        });
        if let Err(e) = self.store.mark_refreshed(&payment.id, now).await {
            tracing::warn!(payment_id = %payment.id, error = %e, "could not note refresh time");
        }
        match outcome {
            Ok(Some(reported)) if payment.create_outcome == CreateOutcome::Unknown => {
                self.resolve_unknown_create(payment, reported, source).await
            }
            Ok(Some(reported)) => self
                .apply_reported(
                    payment,
                    reported.status,
                    reported.failure_code,
                    reported.finished_at,
                    source,
                )
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
        provider_at: Option<DateTime<Utc>>,
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
                // Dated by the provider when it says (a payment learnt late counts for the day
                // the money was taken), within the payment's life.
                at: crate::domain::happened_at(provider_at, payment.created_at, self.clock.now()),
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
    pub(super) async fn resolve_or_give_up(&self, payment: Payment) -> Payment {
        let Ok(provider) = self.providers.get(&payment.account) else {
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
}
