//! The SQL of [`StaffSessionStore`](crate::store::StaffSessionStore).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::store::guard::statement;
use crate::store::*;

#[async_trait]
impl<B: Backend> StaffSessionStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store begin_staff_session", otel.kind = "client", db.system = B::SYSTEM))]
    async fn begin_staff_session(&self, session: &StaffSession) -> Result<u64, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let revoked = statement::<B>(
            "UPDATE staff_sessions SET revoked_at = $3, revoked_why = 'roles_changed' \
             WHERE subject = $1 AND roles <> $2 AND revoked_at IS NULL",
        )
        .bind(&session.subject)
        .bind(&session.roles)
        .bind(session.signed_in_at)
        .execute(&mut tx)
        .await?
        .rows_affected();
        // Sessions long over are not kept (sign-ins and sign-outs are in the audit trail).
        statement::<B>(
            "DELETE FROM staff_sessions WHERE last_seen < $1 \
             OR (revoked_at IS NOT NULL AND revoked_at < $2)",
        )
        .bind(session.signed_in_at - chrono::Duration::days(7))
        .bind(session.signed_in_at - chrono::Duration::days(1))
        .execute(&mut tx)
        .await?;
        statement::<B>(
            "INSERT INTO staff_sessions (token_hash, subject, name, roles, signed_in_at, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&session.token_hash)
        .bind(&session.subject)
        .bind(&session.name)
        .bind(&session.roles)
        .bind(session.signed_in_at)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(revoked)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store touch_staff_session", otel.kind = "client", db.system = B::SYSTEM))]
    async fn touch_staff_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
        begun_since: DateTime<Utc>,
        write_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let live = statement::<B>(
            "SELECT last_seen FROM staff_sessions WHERE token_hash = $1 \
             AND revoked_at IS NULL AND last_seen >= $2 AND signed_in_at >= $3",
        )
        .bind(token_hash)
        .bind(idle_since)
        .bind(begun_since)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = live else {
            return Ok(false);
        };
        let last_seen: DateTime<Utc> = row.col("last_seen")?;
        if last_seen >= write_before {
            return Ok(true);
        }
        // Ended since it was read: over.
        Ok(statement::<B>(
            "UPDATE staff_sessions SET last_seen = $2 WHERE token_hash = $1 \
             AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store revoke_staff_session", otel.kind = "client", db.system = B::SYSTEM))]
    async fn revoke_staff_session(
        &self,
        token_hash: &str,
        at: DateTime<Utc>,
        why: &str,
    ) -> Result<bool, StoreError> {
        Ok(statement::<B>(
            "UPDATE staff_sessions SET revoked_at = $2, revoked_why = $3 \
             WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .bind(at)
        .bind(why)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store revoke_staff_sessions_of", otel.kind = "client", db.system = B::SYSTEM))]
    async fn revoke_staff_sessions_of(
        &self,
        subject: &str,
        at: DateTime<Utc>,
        why: &str,
    ) -> Result<u64, StoreError> {
        Ok(statement::<B>(
            "UPDATE staff_sessions SET revoked_at = $2, revoked_why = $3 \
             WHERE subject = $1 AND revoked_at IS NULL",
        )
        .bind(subject)
        .bind(at)
        .bind(why)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store live_staff_sessions", otel.kind = "client", db.system = B::SYSTEM))]
    async fn live_staff_sessions(
        &self,
        idle_since: DateTime<Utc>,
        begun_since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<crate::domain::staff::LiveSession>, StoreError> {
        statement::<B>(
            "SELECT token_hash, subject, name, roles, signed_in_at, last_seen FROM staff_sessions \
             WHERE revoked_at IS NULL AND last_seen >= $1 AND signed_in_at >= $2 \
             ORDER BY last_seen DESC LIMIT $3",
        )
        .bind(idle_since)
        .bind(begun_since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(crate::domain::staff::LiveSession {
                handle: row.col("token_hash")?,
                subject: row.col("subject")?,
                name: row.col("name")?,
                roles: row.col("roles")?,
                signed_in_at: row.col("signed_in_at")?,
                last_seen: row.col("last_seen")?,
            })
        })
        .collect()
    }
}
