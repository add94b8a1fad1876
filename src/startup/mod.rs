//! Builds the application once, for `main` and for tests alike: store, providers and
//! simulators (`providers.rs`), services (`services.rs`), background jobs (`jobs.rs`) and the
//! HTTP servers (`server.rs`). The only place implementations are chosen.

mod jobs;
mod providers;
mod server;
mod services;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use anyhow::Context;

use crate::background::Background;
use crate::config::Settings;
use crate::console::ConsoleMount;
use crate::metrics::Metrics;
use crate::service::{AppServices, Clock, SystemClock};
use crate::store::{self, Store};

pub struct Application {
    address: SocketAddr,
    /// The admin port's address and server, when `server.admin_bind` is set.
    admin: Option<(SocketAddr, Server)>,
    /// The console's own address and server, when `console.bind` is set.
    console: Option<(SocketAddr, Server)>,
    public_url: String,
    server: Server,
    services: AppServices,
    background: Background,
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
        let loopback = SocketAddr::from(([127, 0, 0, 1], address.port()));
        let store = open_store(&settings).await?;

        let metrics = Arc::new(Metrics::new());
        let simulators = providers::simulators(&settings, &public_url, loopback)?;
        let providers = providers::registry(&settings, &public_url, loopback, &metrics)?;
        let background = Background::new();
        let services = services::build(
            &settings,
            services::Parts {
                store,
                providers,
                clock: clock.clone(),
                metrics,
                background: background.clone(),
                income_system: providers::income_system(&settings, loopback)?,
            },
        )?;
        jobs::start(&background, &settings, &services, &clock);

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
        let (console_mount, console) = console(&settings, &public_url, &services, &clock)?;
        let server = server::public(
            &settings,
            listener,
            &services,
            simulators,
            metrics_on_main,
            console_mount,
        )?;
        let admin = admin_listener
            .map(|listener| server::admin(listener, &services))
            .transpose()?;
        Ok(Self {
            address,
            public_url,
            server,
            admin,
            console,
            services,
            background,
            shutdown_deadline: Duration::from_secs(settings.server.shutdown_deadline_seconds),
        })
    }

    /// The console's own listener's address, when `console.bind` is set.
    pub fn console_address(&self) -> Option<SocketAddr> {
        self.console.as_ref().map(|(address, _)| *address)
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
        let side = [self.admin, self.console]
            .into_iter()
            .flatten()
            .map(|(_, s)| s);
        futures_util::future::try_join(self.server, futures_util::future::try_join_all(side))
            .await
            .map(|_| ())
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully within the deadline: stop
    /// accepting, finish in-flight requests and the current delivery round, stop the poller, and
    /// release any notification leases still held so other servers take them over at once.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let Self {
            server,
            admin,
            console,
            services,
            background,
            shutdown_deadline,
            ..
        } = self;
        let handle = server.handle();
        let side_handles: Vec<_> = [admin, console]
            .into_iter()
            .flatten()
            .map(|(_, side)| {
                let handle = side.handle();
                tokio::spawn(side);
                handle
            })
            .collect();
        let mut serving = tokio::spawn(server);
        tokio::select! {
            result = &mut serving => return result.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            _ = server::shutdown_signal() => {}
        }
        let stop_http = async {
            handle.stop(true).await;
            let _ = serving.await;
            for side in side_handles {
                side.stop(true).await;
            }
        };
        let stop_background = async {
            let aborted = background.shut_down(shutdown_deadline).await;
            if aborted > 0 {
                tracing::warn!(aborted, "deadline reached: background tasks stopped");
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

/// The staff console and, in development, the test identity provider it signs in with: startup
/// chooses it (the console only knows an issuer's address).
#[derive(Clone)]
pub(crate) struct ConsoleSite {
    console: ConsoleMount,
    identity: Option<crate::simulator::identity::IdentitySimulator>,
}

impl ConsoleSite {
    fn new(
        settings: &Settings,
        public_url: &str,
        services: &AppServices,
        clock: &Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let console = ConsoleMount::new(settings, public_url, services.clone(), clock.clone())?;
        let oidc = &settings.console.oidc;
        let identity = match oidc.is_builtin() {
            false => None,
            true => Some(crate::simulator::identity::IdentitySimulator::new(
                public_url,
                &oidc.client_id,
                secrecy::ExposeSecret::expose_secret(
                    &oidc.client_secret().map_err(anyhow::Error::msg)?,
                ),
                &crate::console::callback_url(public_url),
            )),
        };
        Ok(Self { console, identity })
    }

    pub(crate) fn configure(&self, cfg: &mut actix_web::web::ServiceConfig) {
        if let Some(provider) = &self.identity {
            provider.configure(cfg);
        }
        self.console.configure(cfg);
    }
}

/// The staff console: mounted on the public server, or on its own listener when `console.bind`
/// is set (then its own address is where browsers reach it).
type ConsoleParts = (Option<ConsoleSite>, Option<(SocketAddr, Server)>);

fn console(
    settings: &Settings,
    public_url: &str,
    services: &AppServices,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<ConsoleParts> {
    if !settings.console.enabled {
        return Ok((None, None));
    }
    let Some(bind) = &settings.console.bind else {
        let site = ConsoleSite::new(settings, public_url, services, clock)?;
        return Ok((Some(site), None));
    };
    let listener = TcpListener::bind(bind)
        .with_context(|| format!("cannot listen on {bind} (console.bind)"))?;
    let address = listener.local_addr()?;
    let scheme = if settings.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let url = settings
        .console
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{address}"));
    let site = ConsoleSite::new(settings, &url, services, clock)?;
    Ok((
        None,
        Some((address, server::console(settings, listener, site)?)),
    ))
}
