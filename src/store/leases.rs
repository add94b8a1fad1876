//! Leases that let several servers share background work: named jobs and payments to poll.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::Payment;

#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes (or renews) the lease on a background job until `until`, unless another holder's
    /// lease is still running.
    async fn try_lease_job(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Who holds a background job's lease, and until when (the job's next turn is then).
    async fn job_lease(&self, name: &str) -> Result<Option<(String, DateTime<Utc>)>, StoreError>;

    /// Leases up to `limit` payments that are not final and were created before `created_before`,
    /// skipping rows another server holds; the lease is committed before this returns.
    async fn lease_payments_to_poll(
        &self,
        created_before: DateTime<Utc>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError>;
}
