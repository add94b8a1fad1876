//! The `[database]` section.

use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `postgres://…` for production, `sqlite://path` for the embedded default.
    pub url: String,
    pub max_connections: u32,
    /// Apply pending migrations at start-up (`counterfoil migrate` does it on demand).
    pub migrate_on_start: bool,
    /// SQLite in production only when this says so: one file on one machine, with no replicas
    /// and no separate migration role (see deploy/postgres/grants.sql).
    pub allow_sqlite_in_production: bool,
    /// Concurrent webhooks share one transaction, up to this many (1: each its own).
    pub webhook_group_commit_max_events: usize,
    /// Webhook transactions being built or committed at once.
    pub webhook_group_commit_workers: usize,
    /// How long a webhook transaction that is not full waits for more (0: it takes what is queued).
    pub webhook_group_commit_window_micros: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://data/counterfoil.db".into(),
            max_connections: 10,
            migrate_on_start: true,
            allow_sqlite_in_production: false,
            webhook_group_commit_max_events: 64,
            webhook_group_commit_workers: 4,
            webhook_group_commit_window_micros: 0,
        }
    }
}

impl DatabaseSettings {
    /// How webhooks are grouped into transactions.
    pub fn group_commit(&self) -> crate::service::group_commit::GroupCommitSettings {
        crate::service::group_commit::GroupCommitSettings {
            max_events: self.webhook_group_commit_max_events,
            workers: self.webhook_group_commit_workers,
            window: std::time::Duration::from_micros(self.webhook_group_commit_window_micros),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let db = &self.url;
        if !(db.starts_with("postgres://")
            || db.starts_with("postgresql://")
            || db.starts_with("sqlite:"))
        {
            return Err(problem(
                "database.url",
                "must start with postgres:// or sqlite: (e.g. sqlite://data/counterfoil.db)",
            ));
        }
        if self.max_connections == 0 {
            return Err(problem("database.max_connections", "must be at least 1"));
        }
        if self.webhook_group_commit_max_events == 0 || self.webhook_group_commit_max_events > 1000
        {
            return Err(problem(
                "database.webhook_group_commit_max_events",
                "must be from 1 (no grouping) to 1000",
            ));
        }
        if self.webhook_group_commit_workers == 0 {
            return Err(problem(
                "database.webhook_group_commit_workers",
                "must be at least 1",
            ));
        }
        if self.webhook_group_commit_window_micros > 1_000_000 {
            return Err(problem(
                "database.webhook_group_commit_window_micros",
                "must be at most 1000000 (one second)",
            ));
        }
        Ok(())
    }

    /// Production runs on PostgreSQL unless SQLite is asked for in so many words.
    pub(super) fn validate_for_production(&self) -> Result<(), ConfigError> {
        if self.url.starts_with("sqlite:") && !self.allow_sqlite_in_production {
            return Err(problem(
                "database.url",
                "production runs on PostgreSQL; SQLite needs database.allow_sqlite_in_production = true",
            ));
        }
        Ok(())
    }
}
