//! The background jobs' sections: `[poller]`, `[reconciliation]` and `[retention]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;

/// How long personal data and payment records are kept (the councils' privacy notices).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Run the retention sweep in this process (one server at a time holds its lease).
    pub sweep: bool,
    /// Days after a payment is final before its personal fields (email, description, metadata
    /// values, return URL, refund reasons) are pseudonymised.
    pub personal_data_days: u32,
    /// Whole years after the end of a payment's financial year (31 March) before its record is
    /// removed, keeping only daily totals per service and fund.
    pub keep_years_after_financial_year: u32,
    /// How often the sweep runs.
    pub sweep_interval_seconds: u64,
    /// Payments handled per transaction. Small, so that each of the sweep's commits is short
    /// and the money path's commits never queue behind a large one.
    pub batch_size: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            sweep: true,
            personal_data_days: 90,
            keep_years_after_financial_year: 6,
            sweep_interval_seconds: 3_600,
            batch_size: 50,
        }
    }
}

/// The mop-up poller: asks the provider about payments that are still not final well after the
/// payer's window, in case their webhook was lost, and resolves lost creates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollerSettings {
    pub enabled: bool,
    pub interval_seconds: u64,
    /// GOV.UK Pay gives the payer 90 minutes; poll only payments older than this.
    pub min_age_minutes: u64,
    pub batch_size: u32,
}

impl Default for PollerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_seconds: 900,
            min_age_minutes: 95,
            batch_size: 100,
        }
    }
}

/// The nightly reconciliation: each listed account, for the previous Europe/London day.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconciliationSettings {
    /// Provider accounts to reconcile every night (none by default).
    pub nightly_accounts: Vec<String>,
    /// The London hour (0-23) at which to reconcile the day before; late enough for the
    /// provider's search to have caught up.
    pub nightly_hour: u32,
    /// Records compared per step. A run holds one step's records at a time (the provider's
    /// pages are staged in the database), so its memory does not grow with the period.
    pub batch_size: u32,
}

impl Default for ReconciliationSettings {
    fn default() -> Self {
        Self {
            nightly_accounts: Vec::new(),
            nightly_hour: 2,
            batch_size: 500,
        }
    }
}

impl RetentionSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.personal_data_days == 0 {
            return Err(problem(
                "retention.personal_data_days",
                "must be at least 1 (refunds and disputes need the payment's details for a while)",
            ));
        }
        if self.sweep_interval_seconds == 0 || self.batch_size == 0 {
            return Err(problem(
                "retention.sweep_interval_seconds",
                "interval and batch size must be above zero",
            ));
        }
        Ok(())
    }
}

impl PollerSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.interval_seconds == 0 || self.batch_size == 0 {
            return Err(problem(
                "poller.interval_seconds",
                "interval and batch size must be above zero",
            ));
        }
        Ok(())
    }
}

impl ReconciliationSettings {
    pub(super) fn validate(
        &self,
        accounts: &BTreeMap<String, AccountSettings>,
    ) -> Result<(), ConfigError> {
        if let Some(account) = self
            .nightly_accounts
            .iter()
            .find(|a| !accounts.contains_key(*a))
        {
            return Err(problem(
                "reconciliation.nightly_accounts",
                &format!("no provider account named {account}"),
            ));
        }
        if self.nightly_hour > 23 {
            return Err(problem(
                "reconciliation.nightly_hour",
                "must be an hour, 0 to 23",
            ));
        }
        if !(1..=10_000).contains(&self.batch_size) {
            return Err(problem(
                "reconciliation.batch_size",
                "must be 1 to 10000 records",
            ));
        }
        Ok(())
    }
}
