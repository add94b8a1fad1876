//! Builds the application once, for `main` and for tests alike: store, providers, simulator,
//! services and the HTTP server on its listener. The only place implementations are chosen.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use secrecy::ExposeSecret;

use crate::config::{AccountKind, Settings, SIMULATOR_BASE_URL};
use crate::domain::standard_webhooks;
use crate::http;
use crate::http::limits::RateLimits;
use crate::metrics::Metrics;
use crate::providers::govuk_pay::GovukPayClient;
use crate::providers::instrumented::Instrumented;
use crate::providers::redirect_guard::RedirectGuard;
use crate::providers::stripe::StripeClient;
use crate::providers::{PaymentProvider, ProviderRegistry};
use crate::service::audit::AuditService;
use crate::service::data_protection::DataProtectionService;
use crate::service::ledger::{FinanceCodes, LedgerService};
use crate::service::notifications::{DeliverySettings, NotificationService};
use crate::service::payments::{PaymentSettings, PollSettings, ServiceEntry};
use crate::service::reconciliation::ReconciliationService;
use crate::service::refunds::{RefundService, RefundSettings};
use crate::service::{AppServices, Clock, KeyService, PaymentService, SystemClock, WebhookService};
use crate::simulator::govuk_pay::Simulator;
use crate::simulator::stripe::Simulator as StripeSimulator;
use crate::simulator::SimAccount;
use crate::store::{self, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Application {
    address: SocketAddr,
    /// The admin port's address and server, when `server.admin_bind` is set.
    admin: Option<(SocketAddr, Server)>,
    public_url: String,
    server: Server,
    services: AppServices,
    shutdown: watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
    shutdown_deadline: Duration,
}

/// Opens the configured database, migrating it first when the settings say so.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::connect(&settings.database.url, settings.database.max_connections)
        .await
        .context("cannot open the database (database.url)")?;
    if settings.database.migrate_on_start {
        store
            .migrate()
            .await
            .context("cannot migrate the database")?;
    }
    Ok(store)
}

/// Runs the mop-up poller every `interval_seconds` until shutdown.
fn spawn_poller(
    payments: Arc<PaymentService>,
    refunds: Arc<RefundService>,
    settings: &crate::config::PollerSettings,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let poll = PollSettings {
        min_age: Duration::from_secs(settings.min_age_minutes * 60),
        lease: Duration::from_secs(settings.interval_seconds),
        batch_size: settings.batch_size,
    };
    let mut ticker = tokio::time::interval(Duration::from_secs(settings.interval_seconds));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
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
        }
    })
}

/// Delivers CRM notifications until shutdown. A round that has started is finished (its
/// deliveries run to their timeout), so a graceful stop neither loses nor doubles one.
fn spawn_notification_worker(
    notifications: Arc<NotificationService>,
    poll_interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                return;
            }
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
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    })
}

/// Runs the retention sweep every interval on whichever server holds its lease.
fn spawn_retention_sweep(
    privacy: Arc<DataProtectionService>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let holder = crate::domain::refs::new_id("srv_");
    let mut ticker = tokio::time::interval(privacy.sweep_interval());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
            match privacy.lease_sweep(&holder).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "retention sweep: cannot take its lease");
                    continue;
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
        }
    })
}

/// Reconciles each nightly account, every day at `hour` (London), for the day before.
fn spawn_nightly_reconciliation(
    reconciliation: Arc<ReconciliationService>,
    accounts: Vec<String>,
    hour: u32,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let now = clock.now();
            let wait = until_next_london_hour(now, hour);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
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
        }
    })
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

/// The inbound TLS configuration from PEM files (rustls, TLS 1.2 and 1.3, ring).
fn tls_config(tls: &crate::config::TlsSettings) -> anyhow::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "cannot read certificates from {} (server.tls.cert_file)",
                tls.cert_file.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!(
            "no certificate in {} (server.tls.cert_file)",
            tls.cert_file.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file).with_context(|| {
        format!(
            "cannot read a private key from {} (server.tls.key_file)",
            tls.key_file.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key in server.tls do not belong together")
}

/// Waits for SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

/// The delivery worker's settings, with secrets resolved into HMAC keys.
fn delivery_settings(settings: &Settings) -> anyhow::Result<DeliverySettings> {
    let n = &settings.notifications;
    let keys = n
        .secrets
        .iter()
        .map(|source| {
            let secret = source.resolve().map_err(anyhow::Error::msg)?;
            standard_webhooks::secret_key(secret.expose_secret()).map_err(anyhow::Error::msg)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(DeliverySettings {
        default_url: n.default_url.clone(),
        service_urls: settings
            .services
            .iter()
            .filter_map(|(code, s)| s.crm_url.clone().map(|url| (code.clone(), url)))
            .collect(),
        keys,
        timeout: Duration::from_secs(n.timeout_seconds),
        retry_schedule: n
            .retry_schedule_seconds
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect(),
        batch_size: n.batch_size,
        lease: Duration::from_secs(n.lease_seconds),
    })
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.server.bind)
            .with_context(|| format!("cannot listen on {} (server.bind)", settings.server.bind))?;
        let address = listener.local_addr()?;
        let public_url = settings.public_url(address);
        let store = open_store(&settings).await?;

        // The simulators live inside this server; their APIs are called over loopback, their
        // pages are linked at the public URL.
        let loopback = SocketAddr::from(([127, 0, 0, 1], address.port()));
        let mut govuk_simulated = Vec::new();
        let mut stripe_simulated = Vec::new();
        for (name, account) in settings
            .accounts
            .iter()
            .filter(|(_, a)| a.base_url == SIMULATOR_BASE_URL)
        {
            let api_key = account
                .api_key
                .resolve()
                .map_err(anyhow::Error::msg)?
                .expose_secret()
                .to_owned();
            let segment = account.kind.provider().webhook_segment();
            let webhook = match account.webhook_secrets.first() {
                Some(secret) => Some((
                    format!("http://{loopback}/v1/webhooks/{segment}/{name}"),
                    secret
                        .resolve()
                        .map_err(anyhow::Error::msg)?
                        .expose_secret()
                        .to_owned(),
                )),
                None => None,
            };
            match account.kind {
                AccountKind::GovukPay => govuk_simulated.push(SimAccount { api_key, webhook }),
                AccountKind::Stripe => stripe_simulated.push(SimAccount { api_key, webhook }),
            }
        }
        let simulator =
            (!govuk_simulated.is_empty()).then(|| Simulator::new(&public_url, govuk_simulated));
        let stripe_simulator = (!stripe_simulated.is_empty())
            .then(|| StripeSimulator::new(&public_url, stripe_simulated));

        let metrics = Arc::new(Metrics::new());
        let development = settings.environment != crate::config::Environment::Production;
        let public_host = url::Url::parse(&public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let mut providers = ProviderRegistry::default();
        for (name, account) in &settings.accounts {
            let simulated = account.base_url == SIMULATOR_BASE_URL;
            let base_url = match (simulated, account.kind) {
                (true, AccountKind::GovukPay) => {
                    format!("http://{loopback}{}", crate::simulator::govuk_pay::MOUNT)
                }
                (true, AccountKind::Stripe) => {
                    format!("http://{loopback}{}", crate::simulator::stripe::MOUNT)
                }
                (false, _) => account.base_url.clone(),
            };
            let api_key = account.api_key.resolve().map_err(anyhow::Error::msg)?;
            let webhook_secrets = account
                .webhook_secrets
                .iter()
                .map(|s| s.resolve().map_err(anyhow::Error::msg))
                .collect::<Result<Vec<_>, _>>()?;
            let connect_timeout = Duration::from_millis(account.connect_timeout_ms);
            let timeout = Duration::from_millis(account.timeout_ms);
            let provider: Arc<dyn PaymentProvider> = match account.kind {
                AccountKind::GovukPay => Arc::new(
                    GovukPayClient::new(
                        &base_url,
                        api_key,
                        webhook_secrets,
                        connect_timeout,
                        timeout,
                    )
                    .context("cannot build the HTTP client")?,
                ),
                AccountKind::Stripe => Arc::new(
                    StripeClient::new(
                        &base_url,
                        api_key,
                        webhook_secrets,
                        Duration::from_secs(u64::from(account.session_expiry_minutes) * 60),
                        connect_timeout,
                        timeout,
                    )
                    .context("cannot build the HTTP client")?,
                ),
            };
            let hosts = if !account.redirect_hosts.is_empty() {
                account.redirect_hosts.clone()
            } else if simulated {
                vec![public_host.clone()]
            } else {
                account
                    .kind
                    .default_redirect_hosts()
                    .iter()
                    .map(|h| h.to_string())
                    .collect()
            };
            let provider = RedirectGuard::wrap(provider, name, hosts, development);
            providers.insert(
                name.clone(),
                Instrumented::wrap(provider, name, metrics.clone()),
            );
        }
        let service_entries: BTreeMap<_, _> = settings
            .services
            .iter()
            .map(|(code, s)| {
                (
                    code.clone(),
                    ServiceEntry {
                        account: s.account.clone(),
                    },
                )
            })
            .collect();
        let payment_settings = PaymentSettings {
            allow_loopback_http: settings.environment != crate::config::Environment::Production,
            refresh_on_read: settings.payments.refresh_on_read,
            refresh_interval: Duration::from_secs(settings.payments.refresh_interval_seconds),
            create_lease: Duration::from_secs(120),
            idempotency_ttl: Duration::from_secs(24 * 3600),
        };
        let refunds = Arc::new(RefundService::new(
            store.clone(),
            providers.clone(),
            clock.clone(),
            RefundSettings {
                create_lease: Duration::from_secs(120),
                idempotency_ttl: Duration::from_secs(24 * 3600),
                recheck_failed_for: Duration::from_secs(7 * 24 * 3600),
            },
        ));
        let payments = Arc::new(PaymentService::new(
            store.clone(),
            providers.clone(),
            service_entries,
            clock.clone(),
            payment_settings,
            metrics.clone(),
        ));
        let services = AppServices {
            webhooks: Arc::new(WebhookService::new(
                store.clone(),
                providers.clone(),
                clock.clone(),
                refunds.clone(),
                metrics.clone(),
            )),
            refunds: refunds.clone(),
            ledger: Arc::new(LedgerService::new(
                store.clone(),
                settings
                    .services
                    .iter()
                    .map(|(code, s)| {
                        let codes = FinanceCodes {
                            fund_code: s.fund_code.clone(),
                            cost_centre: s.cost_centre.clone(),
                        };
                        (code.clone(), codes)
                    })
                    .collect(),
            )),
            reconciliation: Arc::new(ReconciliationService::new(
                store.clone(),
                providers.clone(),
                payments.clone(),
                clock.clone(),
            )),
            payments,
            notifications: Arc::new(NotificationService::new(
                store.clone(),
                clock.clone(),
                delivery_settings(&settings)?,
                metrics.clone(),
            )),
            keys: Arc::new(KeyService::new(store.clone(), clock.clone())),
            audit: Arc::new(AuditService::new(store.clone(), clock.clone())),
            data_protection: Arc::new(DataProtectionService::new(
                store.clone(),
                clock.clone(),
                settings.retention.clone(),
            )),
            store,
            metrics,
        };

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut background = Vec::new();
        if settings.poller.enabled {
            background.push(spawn_poller(
                services.payments.clone(),
                services.refunds.clone(),
                &settings.poller,
                shutdown_rx.clone(),
            ));
        }
        let has_crm = settings.notifications.default_url.is_some()
            || settings.services.values().any(|s| s.crm_url.is_some());
        if settings.notifications.worker && !has_crm {
            tracing::info!(
                "no CRM URL is configured: notifications are kept in the outbox until one is"
            );
        }
        if settings.notifications.worker && has_crm {
            background.push(spawn_notification_worker(
                services.notifications.clone(),
                Duration::from_millis(settings.notifications.poll_interval_ms),
                shutdown_rx,
            ));
        }
        if settings.retention.sweep {
            background.push(spawn_retention_sweep(
                services.data_protection.clone(),
                shutdown.subscribe(),
            ));
        }
        if !settings.reconciliation.nightly_accounts.is_empty() {
            background.push(spawn_nightly_reconciliation(
                services.reconciliation.clone(),
                settings.reconciliation.nightly_accounts.clone(),
                settings.reconciliation.nightly_hour,
                clock.clone(),
                shutdown.subscribe(),
            ));
        }
        let shutdown_deadline = Duration::from_secs(settings.server.shutdown_deadline_seconds);

        let app_services = services.clone();
        let limits = web::Data::new(RateLimits::new(&settings.rate_limits, &settings.server));
        let admin_listener = match &settings.server.admin_bind {
            Some(bind) => Some(
                TcpListener::bind(bind)
                    .with_context(|| format!("cannot listen on {bind} (server.admin_bind)"))?,
            ),
            None => None,
        };
        // In production /metrics (which names routes, providers and volumes) is served only on
        // the admin port, never on the public one.
        let metrics_on_main = admin_listener.is_none()
            && settings.environment != crate::config::Environment::Production;
        if admin_listener.is_none() && !metrics_on_main {
            tracing::warn!("no server.admin_bind: /metrics is not served (production keeps it off the public port)");
        }
        let server = HttpServer::new(move || {
            let services = app_services.clone();
            let simulator = simulator.clone();
            let stripe_simulator = stripe_simulator.clone();
            let limits = limits.clone();
            App::new()
                .wrap(http::security_headers())
                .wrap(from_fn(http::observe))
                .configure(move |cfg| {
                    http::configure(cfg, services, limits, metrics_on_main);
                    if let Some(simulator) = &simulator {
                        simulator.configure(cfg);
                    }
                    if let Some(simulator) = &stripe_simulator {
                        simulator.configure(cfg);
                    }
                })
                .default_service(web::to(http::not_found))
        });
        let server = match &settings.server.tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls_config(tls)?)?,
            None => server.listen(listener)?,
        };
        // Signals are handled in `run_until_signalled`, which stops the workers too.
        let mut server = server
            .disable_signals()
            .shutdown_timeout(shutdown_deadline.as_secs());
        if let Some(workers) = settings.server.workers {
            server = server.workers(workers);
        }
        let mut admin = None;
        if let Some(listener) = admin_listener {
            let admin_address = listener.local_addr()?;
            let services = services.clone();
            let admin_server = HttpServer::new(move || {
                let services = services.clone();
                App::new()
                    .wrap(http::security_headers())
                    .app_data(web::Data::new(services))
                    .configure(|cfg| http::configure_probes(cfg, true))
                    .default_service(web::to(http::not_found))
            })
            .listen(listener)?
            .disable_signals()
            .workers(1)
            .run();
            admin = Some((admin_address, admin_server));
        }
        Ok(Self {
            address,
            public_url,
            server: server.run(),
            admin,
            services,
            shutdown,
            background,
            shutdown_deadline,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn admin_address(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(address, _)| *address)
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn services(&self) -> AppServices {
        self.services.clone()
    }

    /// Serves until the process is asked to stop (SIGTERM/SIGINT), finishing in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        match self.admin {
            Some((_, admin)) => futures_util::future::try_join(self.server, admin)
                .await
                .map(|_| ()),
            None => self.server.await,
        }
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully within the deadline: stop
    /// accepting, finish in-flight requests and the current delivery round, stop the poller, and
    /// release any notification leases still held so other servers take them over at once.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let Self {
            server,
            admin,
            services,
            shutdown,
            background,
            shutdown_deadline,
            ..
        } = self;
        let handle = server.handle();
        let admin_handle = admin.map(|(_, admin)| {
            let handle = admin.handle();
            tokio::spawn(admin);
            handle
        });
        let mut serving = tokio::spawn(server);
        tokio::select! {
            result = &mut serving => return result.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            _ = shutdown_signal() => {}
        }
        let _ = shutdown.send(true);
        let deadline = tokio::time::Instant::now() + shutdown_deadline;
        let stop_http = async {
            handle.stop(true).await;
            let _ = serving.await;
            if let Some(admin) = admin_handle {
                admin.stop(true).await;
            }
        };
        let stop_background = async {
            for task in background {
                let abort = task.abort_handle();
                if tokio::time::timeout_at(deadline, task).await.is_err() {
                    abort.abort();
                }
            }
        };
        tokio::join!(stop_http, stop_background);
        match services.notifications.release_in_flight().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                released = n,
                "deadline reached: notification leases released"
            ),
            Err(e) => tracing::warn!(error = %e, "could not release notification leases"),
        }
        tracing::info!("stopped");
        Ok(())
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
