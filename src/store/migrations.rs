//! The SQL migrations of both backends, embedded at build time and handed to sqlx's migrator, and
//! the grants that give PostgreSQL's application role only what the service needs.

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// A list of `(version, description, sql)` compiled into the binary.
#[derive(Debug, Clone, Copy)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

pub(super) async fn postgres() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded(embedded::POSTGRES)).await
}

pub(super) async fn sqlite() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded(embedded::SQLITE)).await
}

pub(super) fn postgres_versions() -> Vec<i64> {
    embedded::POSTGRES.iter().map(|m| m.0).collect()
}

pub(super) fn sqlite_versions() -> Vec<i64> {
    embedded::SQLITE.iter().map(|m| m.0).collect()
}

/// What the application role may do (`deploy/postgres/grants.sql`), for the role named `role`:
/// run by the schema's owner after migrating. The role's name must be a plain identifier.
pub(super) async fn grant_postgres(
    pool: &sqlx::PgPool,
    role: &str,
) -> Result<(), super::StoreError> {
    let plain = role.len() <= 63
        && role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && role
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !plain {
        return Err(super::StoreError::Other(
            "the application role must be a lower-case identifier".into(),
        ));
    }
    let grants = include_str!("../../deploy/postgres/grants.sql").replace("counterfoil_app", role);
    sqlx::raw_sql(&grants).execute(pool).await?;
    Ok(())
}
