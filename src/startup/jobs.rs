//! The background jobs a server runs, each on the one supervisor (`background::Background`):
//! the mop-up poller, CRM notification delivery, income posting, payout reading, the retention
//! sweep and nightly reconciliation.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;

use crate::background::Background;
use crate::config::Settings;
use crate::domain::ProviderKind;
use crate::service::payments::PollSettings;
use crate::service::{AppServices, Clock};

/// Starts every job the settings ask for.
pub(super) fn start(
    background: &Background,
    settings: &Settings,
    services: &AppServices,
    clock: &Arc<dyn Clock>,
) {
    if settings.poller.enabled {
        poller(background, services, &settings.poller);
    }
    let has_crm = settings.notifications.default_url.is_some()
        || settings.services.values().any(|s| s.crm_url.is_some());
    if settings.notifications.worker && !has_crm {
        tracing::info!(
            "no CRM URL is configured: notifications are kept in the outbox until one is"
        );
    }
    if settings.notifications.worker && has_crm {
        let interval = Duration::from_millis(settings.notifications.poll_interval_ms);
        notification_delivery(background, services, interval);
    }
    if settings.income.worker && services.income.enabled() {
        income_posting(background, services);
    }
    let has_payouts = settings
        .accounts
        .values()
        .any(|a| a.kind == ProviderKind::Stripe);
    if settings.income.worker && has_payouts {
        payout_reading(background, services);
    }
    if settings.retention.sweep {
        retention_sweep(background, services);
    }
    if !settings.reconciliation.nightly_accounts.is_empty() {
        nightly_reconciliation(
            background,
            services,
            settings.reconciliation.nightly_accounts.clone(),
            settings.reconciliation.nightly_hour,
            clock.clone(),
        );
    }
}

/// Asks the provider about payments and refunds left unresolved, every `interval_seconds`.
fn poller(
    background: &Background,
    services: &AppServices,
    settings: &crate::config::PollerSettings,
) {
    let interval = Duration::from_secs(settings.interval_seconds);
    let poll = PollSettings {
        min_age: Duration::from_secs(settings.min_age_minutes * 60),
        lease: interval,
        batch_size: settings.batch_size,
    };
    let (payments, refunds) = (services.payments.clone(), services.refunds.clone());
    background.every("poller", Duration::ZERO, move || {
        let (payments, refunds, poll) = (payments.clone(), refunds.clone(), poll.clone());
        async move {
            match payments.poll_once(&poll).await {
                Ok(summary) if summary.polled > 0 => {
                    tracing::info!(
                        polled = summary.polled,
                        changed = summary.changed,
                        "poller round"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "poller round failed"),
            }
            match refunds.poll_once().await {
                Ok(0) => {}
                Ok(changed) => tracing::info!(changed, "refund poller round"),
                Err(e) => tracing::warn!(error = %e, "refund poller round failed"),
            }
            interval
        }
        .boxed()
    });
}

/// Delivers CRM notifications: round after round while there is a full batch, then every
/// `interval`. A round that has started is finished, so a graceful stop neither loses nor
/// doubles a delivery.
fn notification_delivery(background: &Background, services: &AppServices, interval: Duration) {
    let notifications = services.notifications.clone();
    background.every("notifications", Duration::ZERO, move || {
        let notifications = notifications.clone();
        async move {
            let busy = match notifications.run_once().await {
                Ok(round) => {
                    let handled = round.delivered + round.retrying + round.dead;
                    if handled > 0 {
                        tracing::debug!(
                            delivered = round.delivered,
                            retrying = round.retrying,
                            dead = round.dead,
                            "notification round"
                        );
                    }
                    handled == notifications.batch_size()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "notification round failed");
                    false
                }
            };
            if busy {
                Duration::ZERO
            } else {
                interval
            }
        }
        .boxed()
    });
}

/// Builds the income batches that are due and pushes those waiting, every minute, on whichever
/// server holds the job's lease (two servers never build the same day twice: the store refuses
/// the second, but the lease saves the work).
fn income_posting(background: &Background, services: &AppServices) {
    const INTERVAL: Duration = Duration::from_secs(60);
    let (income, store) = (services.income.clone(), services.store.clone());
    let holder = crate::domain::refs::new_id("srv_");
    background.every("income posting", Duration::ZERO, move || {
        let (income, store, holder) = (income.clone(), store.clone(), holder.clone());
        async move {
            let now = chrono::Utc::now();
            let until = now + chrono::Duration::from_std(INTERVAL * 5).unwrap_or_default();
            match store
                .try_lease_job("income posting", &holder, now, until)
                .await
            {
                Ok(true) => {}
                Ok(false) => return INTERVAL,
                Err(e) => {
                    tracing::warn!(error = %e, "income posting: cannot take its lease");
                    return INTERVAL;
                }
            }
            // An account that cannot be built is logged by the service, and tried next round.
            if let Err(e) = income.build_due().await {
                tracing::warn!(error = %e, "income batches could not be built");
            }
            match income.post_due().await {
                Ok(round) if round.posted + round.retrying + round.failed > 0 => tracing::info!(
                    posted = round.posted,
                    retrying = round.retrying,
                    failed = round.failed,
                    "income posting round"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "income posting round failed"),
            }
            INTERVAL
        }
        .boxed()
    });
}

/// Reads the providers' payouts every hour (a payout is made once a day at most).
fn payout_reading(background: &Background, services: &AppServices) {
    const INTERVAL: Duration = Duration::from_secs(3600);
    let payouts = services.payouts.clone();
    background.every("payout reading", Duration::ZERO, move || {
        let payouts = payouts.clone();
        async move {
            match payouts.read_all().await {
                Ok(reading) => {
                    if reading.changed > 0 {
                        tracing::info!(changed = reading.changed, "payouts read");
                    }
                    for (account, why) in &reading.unread {
                        tracing::warn!(account, error = %why, "payouts could not be read");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "payouts could not be read"),
            }
            INTERVAL
        }
        .boxed()
    });
}

/// Runs the retention sweep every interval on whichever server holds its lease.
fn retention_sweep(background: &Background, services: &AppServices) {
    let privacy = services.data_protection.clone();
    let holder = crate::domain::refs::new_id("srv_");
    let interval = privacy.sweep_interval();
    background.every("retention sweep", Duration::ZERO, move || {
        let (privacy, holder) = (privacy.clone(), holder.clone());
        async move {
            match privacy.lease_sweep(&holder).await {
                Ok(true) => {}
                Ok(false) => return interval,
                Err(e) => {
                    tracing::warn!(error = %e, "retention sweep: cannot take its lease");
                    return interval;
                }
            }
            let sweep = crate::service::data_protection::SWEEP;
            match privacy.sweep(&sweep, false).await {
                Ok(report) => tracing::info!(
                    pseudonymised = report.payments_pseudonymised,
                    refund_reasons = report.refund_reasons_pseudonymised,
                    removed = report.payments_removed,
                    idempotency_keys = report.idempotency_keys_removed,
                    "retention sweep"
                ),
                Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
            }
            interval
        }
        .boxed()
    });
}

/// Reconciles each nightly account, every day at `hour` (London), for the day before.
fn nightly_reconciliation(
    background: &Background,
    services: &AppServices,
    accounts: Vec<String>,
    hour: u32,
    clock: Arc<dyn Clock>,
) {
    let reconciliation = services.reconciliation.clone();
    let first_wait = until_next_london_hour(clock.now(), hour);
    background.every("nightly reconciliation", first_wait, move || {
        let (reconciliation, accounts, clock) =
            (reconciliation.clone(), accounts.clone(), clock.clone());
        async move {
            for account in &accounts {
                match reconciliation.nightly(account, clock.now()).await {
                    Ok(Some(run)) => {
                        tracing::info!(account, run = %run.id, found = run.discrepancies.len(), "nightly reconciliation")
                    }
                    Ok(None) => tracing::info!(
                        account,
                        "nightly reconciliation already run by another server"
                    ),
                    Err(e) => tracing::warn!(account, error = %e, "nightly reconciliation failed"),
                }
            }
            until_next_london_hour(clock.now(), hour)
        }
        .boxed()
    });
}

/// How long from `now` until the next `hour`:00 in London.
fn until_next_london_hour(now: chrono::DateTime<chrono::Utc>, hour: u32) -> Duration {
    use chrono::TimeZone;
    let london = now.with_timezone(&chrono_tz::Europe::London);
    let mut day = london.date_naive();
    loop {
        let at = chrono_tz::Europe::London
            .from_local_datetime(&day.and_hms_opt(hour, 0, 0).expect("a valid hour"))
            .earliest();
        if let Some(at) = at.filter(|at| *at > london) {
            return (at.with_timezone(&chrono::Utc) - now)
                .to_std()
                .unwrap_or_default();
        }
        day = day.succ_opt().expect("not the end of time");
    }
}

#[cfg(test)]
mod tests {
    use super::until_next_london_hour;
    use chrono::{DateTime, Utc};
    use std::time::Duration;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_nightly_run_waits_for_two_in_the_morning_london_time() {
        // Summer: 02:00 London is 01:00 UTC.
        assert_eq!(
            until_next_london_hour(utc("2026-07-01T00:30:00Z"), 2),
            Duration::from_secs(30 * 60)
        );
        assert_eq!(
            until_next_london_hour(utc("2026-07-01T01:30:00Z"), 2),
            Duration::from_secs(23 * 3600 + 30 * 60)
        );
        // Winter: London is on UTC.
        assert_eq!(
            until_next_london_hour(utc("2026-01-15T01:00:00Z"), 2),
            Duration::from_secs(3600)
        );
        // The night the clocks go forward (29 March 2026), 02:00 London is 01:00 UTC.
        assert_eq!(
            until_next_london_hour(utc("2026-03-28T23:00:00Z"), 2),
            Duration::from_secs(2 * 3600)
        );
    }
}
