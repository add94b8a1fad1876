//! The SQL of [`ApiKeyStore`](crate::store::ApiKeyStore).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::statement;
use crate::store::*;

pub(super) fn api_key_from_row(row: &impl ReadRow) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: row.col("id")?,
        role: parse_column(&row.col::<String>("role")?, "api_keys.role")?,
        label: row.col("label")?,
        token_sha256: row.col("token_sha256")?,
        created_at: row.col("created_at")?,
        revoked_at: row.col("revoked_at")?,
        last_used_at: row.col("last_used_at")?,
        expires_at: row.col("expires_at")?,
    })
}

#[async_trait]
impl<B: Backend> ApiKeyStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store touch_api_key", otel.kind = "client", db.system = B::SYSTEM))]
    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        statement::<B>("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store insert_api_key", otel.kind = "client", db.system = B::SYSTEM))]
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        statement::<B>(
            "INSERT INTO api_keys (id, role, label, token_sha256, created_at, revoked_at, last_used_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&key.id)
        .bind(key.role.as_str())
        .bind(&key.label)
        .bind(&key.token_sha256)
        .bind(key.created_at)
        .bind(key.revoked_at)
        .bind(key.last_used_at)
        .bind(key.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store find_api_key", otel.kind = "client", db.system = B::SYSTEM))]
    async fn find_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        statement::<B>("SELECT * FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(api_key_from_row)
            .transpose()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store list_api_keys", otel.kind = "client", db.system = B::SYSTEM))]
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        statement::<B>("SELECT * FROM api_keys ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(api_key_from_row)
            .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store revoke_api_key", otel.kind = "client", db.system = B::SYSTEM))]
    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = statement::<B>(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
