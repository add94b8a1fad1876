//! Console sessions held on the server: begun at sign-in, checked and touched on every request,
//! ended by sign-out, an administrator, a change of roles or a timeout.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;

/// A session as begun at sign-in (its token only as a hash).
#[derive(Debug, Clone, PartialEq)]
pub struct StaffSession {
    pub token_hash: String,
    pub subject: String,
    /// The person's name, as the identity provider gave it.
    pub name: String,
    pub roles: String,
    pub signed_in_at: DateTime<Utc>,
}

#[async_trait]
pub trait StaffSessionStore: Send + Sync + 'static {
    /// Records a new session; the same person's other live sessions with other roles are revoked
    /// (their roles changed at the identity provider). Returns how many were revoked.
    async fn begin_staff_session(&self, session: &StaffSession) -> Result<u64, StoreError>;

    /// Whether the session is live: not revoked, seen since `idle_since` and begun since
    /// `begun_since`; a live one last recorded as seen before `write_before` is recorded as seen
    /// at `now` (so most page loads only read). False (the session is over) otherwise.
    async fn touch_staff_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
        begun_since: DateTime<Utc>,
        write_before: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Ends one session.
    async fn revoke_staff_session(
        &self,
        token_hash: &str,
        at: DateTime<Utc>,
        why: &str,
    ) -> Result<bool, StoreError>;

    /// Up to `limit` live sessions (not revoked, seen since `idle_since`, begun since
    /// `begun_since`), most recently seen first.
    async fn live_staff_sessions(
        &self,
        idle_since: DateTime<Utc>,
        begun_since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<crate::domain::staff::LiveSession>, StoreError>;

    /// Ends every live session of a person; how many.
    async fn revoke_staff_sessions_of(
        &self,
        subject: &str,
        at: DateTime<Utc>,
        why: &str,
    ) -> Result<u64, StoreError>;
}
