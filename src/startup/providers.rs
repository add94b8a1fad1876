//! The provider side of startup: the simulators this server hosts (for accounts whose
//! `base_url` is `simulator`), and one client per account, each wrapped in the redirect guard
//! and instrumentation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::config::{AccountSettings, IncomeTarget, Settings, SIMULATOR_BASE_URL};
use crate::domain::ProviderKind;
use crate::metrics::Metrics;
use crate::outbound::OutboundClient;
use crate::providers::govuk_pay::GovukPayClient;
use crate::providers::income_system::localgov_ims::LocalGovIms;
use crate::providers::income_system::IncomeSystem;
use crate::providers::instrumented::Instrumented;
use crate::providers::redirect_guard::RedirectGuard;
use crate::providers::stripe::StripeClient;
use crate::providers::{PaymentProvider, ProviderRegistry};
use crate::simulator::govuk_pay::Simulator as GovukPaySimulator;
use crate::simulator::stripe::Simulator as StripeSimulator;
use crate::simulator::SimAccount;

/// The simulators this server hosts, if any account uses them.
#[derive(Clone, Default)]
pub(super) struct Simulators {
    pub govuk_pay: Option<GovukPaySimulator>,
    pub stripe: Option<StripeSimulator>,
    pub localgov_ims: Option<crate::simulator::localgov_ims::Simulator>,
}

impl Simulators {
    pub fn configure(&self, cfg: &mut actix_web::web::ServiceConfig) {
        if let Some(simulator) = &self.govuk_pay {
            simulator.configure(cfg);
        }
        if let Some(simulator) = &self.stripe {
            simulator.configure(cfg);
        }
        if let Some(simulator) = &self.localgov_ims {
            simulator.configure(cfg);
        }
    }
}

/// The simulators live inside this server: their APIs are called over `loopback`, their pages
/// are linked at `public_url`, and they send webhooks back to this server's own routes.
pub(super) fn simulators(
    settings: &Settings,
    public_url: &str,
    loopback: SocketAddr,
) -> anyhow::Result<Simulators> {
    let mut govuk_pay = Vec::new();
    let mut stripe = Vec::new();
    for (name, account) in settings
        .accounts
        .iter()
        .filter(|(_, a)| a.base_url == SIMULATOR_BASE_URL)
    {
        let simulated = simulated_account(name, account, loopback)?;
        match account.kind {
            ProviderKind::GovukPay => govuk_pay.push(simulated),
            ProviderKind::Stripe => stripe.push(simulated),
        }
    }
    Ok(Simulators {
        govuk_pay: (!govuk_pay.is_empty()).then(|| GovukPaySimulator::new(public_url, govuk_pay)),
        stripe: (!stripe.is_empty()).then(|| StripeSimulator::new(public_url, stripe)),
        localgov_ims: settings
            .income
            .localgov_ims
            .as_ref()
            .filter(|ims| {
                settings.income.target == IncomeTarget::LocalgovIms
                    && ims.base_url == SIMULATOR_BASE_URL
            })
            .map(|_| crate::simulator::localgov_ims::Simulator::new()),
    })
}

fn simulated_account(
    name: &str,
    account: &AccountSettings,
    loopback: SocketAddr,
) -> anyhow::Result<SimAccount> {
    let api_key = account
        .api_key
        .resolve()
        .map_err(anyhow::Error::msg)?
        .expose_secret()
        .to_owned();
    let segment = account.kind.webhook_segment();
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
    Ok(SimAccount { api_key, webhook })
}

/// One client per account, guarded and instrumented.
pub(super) fn registry(
    settings: &Settings,
    public_url: &str,
    loopback: SocketAddr,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<ProviderRegistry> {
    let development = settings.environment != crate::config::Environment::Production;
    let public_host = url::Url::parse(public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let mut providers = ProviderRegistry::default();
    for (name, account) in &settings.accounts {
        let simulated = account.base_url == SIMULATOR_BASE_URL;
        let provider = client(account, loopback)?;
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
    Ok(providers)
}

/// The account's own client, talking to the provider (or this server's simulator).
fn client(
    account: &AccountSettings,
    loopback: SocketAddr,
) -> anyhow::Result<Arc<dyn PaymentProvider>> {
    let base_url = match (account.base_url == SIMULATOR_BASE_URL, account.kind) {
        (true, ProviderKind::GovukPay) => {
            format!("http://{loopback}{}", crate::simulator::govuk_pay::MOUNT)
        }
        (true, ProviderKind::Stripe) => {
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
    Ok(match account.kind {
        ProviderKind::GovukPay => Arc::new(
            GovukPayClient::new(
                &base_url,
                api_key,
                webhook_secrets,
                connect_timeout,
                timeout,
            )
            .context("cannot build the HTTP client")?,
        ),
        ProviderKind::Stripe => Arc::new(
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
    })
}

/// The income system batches are pushed to, when `income.target = "localgov_ims"`.
pub(super) fn income_system(
    settings: &Settings,
    loopback: SocketAddr,
) -> anyhow::Result<Option<Arc<dyn IncomeSystem>>> {
    let Some(ims) = settings
        .income
        .localgov_ims
        .as_ref()
        .filter(|_| settings.income.target == IncomeTarget::LocalgovIms)
    else {
        return Ok(None);
    };
    let base_url = if ims.base_url == SIMULATOR_BASE_URL {
        format!("http://{loopback}{}", crate::simulator::localgov_ims::MOUNT)
    } else {
        ims.base_url.clone()
    };
    let api_key = ims
        .api_key
        .as_ref()
        .map(|key| key.resolve().map_err(anyhow::Error::msg))
        .transpose()?;
    let http = OutboundClient::new(
        Duration::from_millis(ims.connect_timeout_ms),
        Duration::from_millis(ims.timeout_ms),
    )
    .context("cannot build the income system's HTTP client")?;
    Ok(Some(Arc::new(LocalGovIms::new(&base_url, api_key, http))))
}
