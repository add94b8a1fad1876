//! The use-case services, each given the store, providers, clock and settings it needs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;

use crate::background::Background;
use crate::config::Settings;
use crate::domain::standard_webhooks;
use crate::metrics::Metrics;
use crate::providers::income_system::IncomeSystem;
use crate::providers::ProviderRegistry;
use crate::service::attention::AttentionService;
use crate::service::audit::AuditService;
use crate::service::data_protection::DataProtectionService;
use crate::service::income::{IncomePlan, IncomeService};
use crate::service::ledger::{FinanceCodes, LedgerService};
use crate::service::notifications::{DeliverySettings, NotificationService};
use crate::service::payments::{PaymentSettings, ServiceEntry};
use crate::service::payouts::PayoutService;
use crate::service::reconciliation::ReconciliationService;
use crate::service::refunds::{RefundService, RefundSettings, TwoPersonRule};
use crate::service::staff_refunds::StaffRefundService;
use crate::service::staff_sessions::StaffSessionService;
use crate::service::{AppServices, Clock, KeyService, PaymentService, WebhookService};
use crate::store::Store;

/// What every service is built from.
pub(super) struct Parts {
    pub store: Arc<dyn Store>,
    pub providers: ProviderRegistry,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub background: Background,
    pub income_system: Option<Arc<dyn IncomeSystem>>,
}

const REFUND_SETTINGS: RefundSettings = RefundSettings {
    create_lease: Duration::from_secs(120),
    idempotency_ttl: Duration::from_secs(24 * 3600),
    recheck_failed_for: Duration::from_secs(7 * 24 * 3600),
};

pub(super) fn build(settings: &Settings, parts: Parts) -> anyhow::Result<AppServices> {
    let Parts {
        store,
        providers,
        clock,
        metrics,
        background,
        income_system,
    } = parts;
    let refunds = Arc::new(RefundService::new(
        store.clone(),
        providers.clone(),
        clock.clone(),
        REFUND_SETTINGS,
        two_person_rule(settings),
    ));
    let payments = Arc::new(PaymentService::new(
        store.clone(),
        providers.clone(),
        service_entries(settings),
        clock.clone(),
        payment_settings(settings),
        metrics.clone(),
    ));
    let notifications = Arc::new(NotificationService::new(
        store.clone(),
        clock.clone(),
        delivery_settings(settings)?,
        metrics.clone(),
    ));
    Ok(AppServices {
        webhooks: Arc::new(WebhookService::new(
            store.clone(),
            providers.clone(),
            clock.clone(),
            refunds.clone(),
            metrics.clone(),
            background,
            settings.database.group_commit(),
        )),
        staff_sessions: Arc::new(StaffSessionService::new(store.clone(), clock.clone())),
        staff_refunds: Arc::new(StaffRefundService::new(
            store.clone(),
            refunds.clone(),
            clock.clone(),
        )),
        refunds,
        ledger: Arc::new(LedgerService::new(store.clone(), finance_codes(settings))),
        income: income_service(settings, &store, &clock, income_system)?,
        payouts: Arc::new(PayoutService::new(
            store.clone(),
            providers.clone(),
            clock.clone(),
        )),
        reconciliation: Arc::new(ReconciliationService::new(
            store.clone(),
            providers,
            payments.clone(),
            clock.clone(),
            settings.reconciliation.batch_size,
        )),
        attention: attention_service(settings, &store, &payments, &notifications, &clock),
        payments,
        notifications,
        keys: Arc::new(KeyService::new(store.clone(), clock.clone())),
        audit: Arc::new(AuditService::new(store.clone(), clock.clone())),
        data_protection: Arc::new(DataProtectionService::new(
            store.clone(),
            clock,
            settings.retention.clone(),
        )),
        store,
        metrics,
    })
}

fn service_entries(settings: &Settings) -> BTreeMap<String, ServiceEntry> {
    settings
        .services
        .iter()
        .map(|(code, s)| {
            let entry = ServiceEntry {
                account: s.account.clone(),
            };
            (code.clone(), entry)
        })
        .collect()
}

fn payment_settings(settings: &Settings) -> PaymentSettings {
    PaymentSettings {
        allow_loopback_http: settings.environment != crate::config::Environment::Production,
        refresh_on_read: settings.payments.refresh_on_read,
        refresh_interval: Duration::from_secs(settings.payments.refresh_interval_seconds),
        create_lease: Duration::from_secs(120),
        idempotency_ttl: Duration::from_secs(24 * 3600),
    }
}

fn attention_service(
    settings: &Settings,
    store: &Arc<dyn Store>,
    payments: &Arc<PaymentService>,
    notifications: &Arc<NotificationService>,
    clock: &Arc<dyn Clock>,
) -> Arc<AttentionService> {
    let stuck_after = Duration::from_secs(settings.console.stuck_after_minutes.saturating_mul(60));
    Arc::new(AttentionService::new(
        store.clone(),
        payments.clone(),
        notifications.clone(),
        clock.clone(),
        stuck_after,
    ))
}

fn income_service(
    settings: &Settings,
    store: &Arc<dyn Store>,
    clock: &Arc<dyn Clock>,
    system: Option<Arc<dyn IncomeSystem>>,
) -> anyhow::Result<Arc<IncomeService>> {
    let plan = income_plan(settings)?;
    Ok(Arc::new(IncomeService::new(
        store.clone(),
        clock.clone(),
        plan,
        system,
    )))
}

/// What batches are built from, when takings are posted (`income.target`); the codes were
/// checked when the settings were loaded.
fn income_plan(settings: &Settings) -> anyhow::Result<Option<IncomePlan>> {
    let income = &settings.income;
    let (Some((layout, limits)), Some(starts_on)) = (income.layout(), income.starts_on) else {
        return Ok(None);
    };
    let mut accounts: BTreeMap<String, BTreeMap<String, _>> = BTreeMap::new();
    for (code, service) in &settings.services {
        let Some(posting) = &service.posting else {
            continue;
        };
        let provider = settings.accounts[&service.account].kind;
        let key = format!("services.{code}.posting");
        let codes = posting.codes(service, provider, &limits, &key)?;
        accounts
            .entry(service.account.clone())
            .or_default()
            .insert(code.clone(), codes);
    }
    Ok(Some(IncomePlan {
        layout,
        limits,
        starts_on,
        suspense: income.suspense_account_reference.clone(),
        accounts,
        retry_interval: Duration::from_secs(income.retry_interval_seconds),
        build_hour: income.build_hour,
    }))
}

fn finance_codes(settings: &Settings) -> BTreeMap<String, FinanceCodes> {
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
        .collect()
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

/// The two-person rule for refunds, per service and across them.
fn two_person_rule(settings: &Settings) -> TwoPersonRule {
    TwoPersonRule {
        thresholds: settings
            .services
            .iter()
            .filter_map(|(code, s)| Some((code.clone(), s.two_person_threshold_pence?)))
            .collect(),
        default_threshold: settings.console.two_person_threshold_pence,
        daily_limit: settings.console.two_person_daily_limit_pence,
        api_refunds: settings.console.api_refunds_allowed(settings.environment),
    }
}
