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
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://data/counterfoil.db".into(),
            max_connections: 10,
            migrate_on_start: true,
            allow_sqlite_in_production: false,
        }
    }
}

impl DatabaseSettings {
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
