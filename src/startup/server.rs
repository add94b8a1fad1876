//! The HTTP side of startup: the public server (API, webhooks, simulators) on its listener,
//! the admin server (probes and metrics) when `server.admin_bind` is set, and inbound TLS.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;

use super::providers::Simulators;
use super::ConsoleSite;
use crate::config::Settings;
use crate::http;
use crate::http::limits::RateLimits;
use crate::service::AppServices;

/// The public server, not yet running.
pub(super) fn public(
    settings: &Settings,
    listener: TcpListener,
    services: &AppServices,
    simulators: Simulators,
    serve_metrics: bool,
    console: Option<ConsoleSite>,
) -> anyhow::Result<Server> {
    let services = services.clone();
    let limits = web::Data::new(RateLimits::new(&settings.rate_limits, &settings.server));
    let server = HttpServer::new(move || {
        let services = services.clone();
        let simulators = simulators.clone();
        let limits = limits.clone();
        let console = console.clone();
        App::new()
            .wrap(http::security_headers())
            .wrap(from_fn(http::observe))
            .configure(move |cfg| {
                http::configure(cfg, services, limits, serve_metrics);
                simulators.configure(cfg);
                if let Some(console) = &console {
                    console.configure(cfg);
                }
            })
            .default_service(web::to(http::not_found))
    });
    let server = match &settings.server.tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls_config(tls)?)?,
        None => server.listen(listener)?,
    };
    // Signals are handled by `Application::run_until_signalled`, which stops the jobs too.
    let mut server = server
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_deadline_seconds);
    if let Some(workers) = settings.server.workers {
        server = server.workers(workers);
    }
    Ok(server.run())
}

/// The console on a listener of its own (`console.bind`), e.g. on the staff network only.
pub(super) fn console(
    settings: &Settings,
    listener: TcpListener,
    console: ConsoleSite,
) -> anyhow::Result<Server> {
    let server = HttpServer::new(move || {
        let console = console.clone();
        App::new()
            .wrap(http::security_headers())
            .wrap(from_fn(http::observe))
            .configure(move |cfg| console.configure(cfg))
            .default_service(web::to(http::not_found))
    });
    let server = match &settings.server.tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls_config(tls)?)?,
        None => server.listen(listener)?,
    };
    Ok(server
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_deadline_seconds)
        .workers(2)
        .run())
}

/// The admin server: probes and `/metrics`, for operators' networks only.
pub(super) fn admin(
    listener: TcpListener,
    services: &AppServices,
) -> anyhow::Result<(SocketAddr, Server)> {
    let address = listener.local_addr()?;
    let services = services.clone();
    let server = HttpServer::new(move || {
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
    Ok((address, server))
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
pub(super) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
