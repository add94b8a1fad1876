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
use crate::http;
use crate::providers::govuk_pay::GovukPayClient;
use crate::providers::ProviderRegistry;
use crate::service::payments::{PaymentSettings, PollSettings, ServiceEntry};
use crate::service::{AppServices, Clock, KeyService, PaymentService, SystemClock, WebhookService};
use crate::simulator::govuk_pay::{SimAccount, Simulator};
use crate::store::{self, Store};

pub struct Application {
    address: SocketAddr,
    public_url: String,
    server: Server,
    services: AppServices,
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

/// Runs the mop-up poller every `interval_seconds` in the background.
fn spawn_poller(payments: Arc<PaymentService>, settings: &crate::config::PollerSettings) {
    let poll = PollSettings {
        min_age: Duration::from_secs(settings.min_age_minutes * 60),
        lease: Duration::from_secs(settings.interval_seconds),
        batch_size: settings.batch_size,
    };
    let mut ticker = tokio::time::interval(Duration::from_secs(settings.interval_seconds));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::spawn(async move {
        loop {
            ticker.tick().await;
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
        }
    });
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

        // The simulator lives inside this server; its API is called over loopback, its pages are
        // linked at the public URL.
        let loopback = SocketAddr::from(([127, 0, 0, 1], address.port()));
        let simulator = if settings.uses_simulator() {
            let mut accounts = Vec::new();
            let simulated = settings
                .accounts
                .iter()
                .filter(|(_, a)| a.base_url == SIMULATOR_BASE_URL);
            for (name, account) in simulated {
                let api_key = account.api_key.resolve().map_err(anyhow::Error::msg)?;
                let webhook = match account.webhook_secrets.first() {
                    Some(secret) => Some((
                        format!("http://{loopback}/v1/webhooks/govuk-pay/{name}"),
                        secret
                            .resolve()
                            .map_err(anyhow::Error::msg)?
                            .expose_secret()
                            .to_owned(),
                    )),
                    None => None,
                };
                accounts.push(SimAccount {
                    api_key: api_key.expose_secret().to_owned(),
                    webhook,
                });
            }
            Some(Simulator::new(&public_url, accounts))
        } else {
            None
        };

        let mut providers = ProviderRegistry::default();
        for (name, account) in &settings.accounts {
            let base_url = if account.base_url == SIMULATOR_BASE_URL {
                format!("http://{loopback}{}", crate::simulator::govuk_pay::MOUNT)
            } else {
                account.base_url.clone()
            };
            let api_key = account.api_key.resolve().map_err(anyhow::Error::msg)?;
            let webhook_secrets = account
                .webhook_secrets
                .iter()
                .map(|s| s.resolve().map_err(anyhow::Error::msg))
                .collect::<Result<Vec<_>, _>>()?;
            match account.kind {
                AccountKind::GovukPay => providers.insert(
                    name.clone(),
                    Arc::new(
                        GovukPayClient::new(
                            &base_url,
                            api_key,
                            webhook_secrets,
                            Duration::from_millis(account.connect_timeout_ms),
                            Duration::from_millis(account.timeout_ms),
                        )
                        .context("cannot build the HTTP client")?,
                    ),
                ),
            }
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
        let services = AppServices {
            webhooks: Arc::new(WebhookService::new(
                store.clone(),
                providers.clone(),
                clock.clone(),
            )),
            payments: Arc::new(PaymentService::new(
                store.clone(),
                providers,
                service_entries,
                clock.clone(),
                payment_settings,
            )),
            keys: Arc::new(KeyService::new(store.clone(), clock)),
            store,
        };

        if settings.poller.enabled {
            spawn_poller(services.payments.clone(), &settings.poller);
        }

        let app_services = services.clone();
        let mut server = HttpServer::new(move || {
            let services = app_services.clone();
            let simulator = simulator.clone();
            App::new()
                .wrap(from_fn(http::log_request))
                .configure(move |cfg| {
                    http::configure(cfg, services);
                    if let Some(simulator) = &simulator {
                        simulator.configure(cfg);
                    }
                })
                .default_service(web::to(http::not_found))
        })
        .listen(listener)?;
        if let Some(workers) = settings.server.workers {
            server = server.workers(workers);
        }
        Ok(Self {
            address,
            public_url,
            server: server.run(),
            services,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn services(&self) -> AppServices {
        self.services.clone()
    }

    /// Serves until the process is asked to stop (SIGTERM/SIGINT), finishing in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
