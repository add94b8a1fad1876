//! Console sessions a council can end: begun at sign-in with a random token (kept only as its
//! hash), checked on every request against the server's record, and ended by sign-out, by an
//! administrator, by the person's roles changing, or by the idle and absolute timeouts.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Clock, ServiceError};
use crate::domain::staff::{LiveSession, StaffMember};
use crate::domain::Actor;
use crate::store::{AuditEntry, StaffSession, Store};

pub struct StaffSessionService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

/// How often a live session's "last seen" is written: a page load inside it only reads. The
/// record may lag by this much, so the idle check here allows it; the person's own session
/// (in their cookie) is timed exactly, and an ended session is refused at once either way.
const SEEN_EVERY: chrono::Duration = chrono::Duration::seconds(60);

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl StaffSessionService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Records a session for `member` under `token`, at `now`. Their other sessions with other
    /// roles end (their roles changed at the identity provider).
    pub async fn begin(
        &self,
        member: &StaffMember,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let roles: Vec<&str> = member.roles.iter().map(|r| r.as_str()).collect();
        let session = StaffSession {
            token_hash: hash(token),
            subject: member.actor_id(),
            name: member.name.clone(),
            roles: roles.join(","),
            signed_in_at: now,
        };
        let ended = self.store.begin_staff_session(&session).await?;
        if ended > 0 {
            tracing::info!(ended, "console sessions ended: the person's roles changed");
        }
        Ok(())
    }

    /// Whether the session under `token` is still live (and, if so, notes it was used now, at
    /// most once a minute).
    pub async fn check(
        &self,
        token: &str,
        idle: Duration,
        absolute: Duration,
    ) -> Result<bool, ServiceError> {
        let now = self.clock.now();
        Ok(self
            .store
            .touch_staff_session(
                &hash(token),
                now,
                now - idle - SEEN_EVERY,
                now - absolute,
                now - SEEN_EVERY,
            )
            .await?)
    }

    /// Ends the session under `token` (sign-out).
    pub async fn end(&self, token: &str, why: &str) -> Result<(), ServiceError> {
        self.store
            .revoke_staff_session(&hash(token), self.clock.now(), why)
            .await?;
        Ok(())
    }

    /// The sessions live now under these timeouts, most recently used first.
    pub async fn live(
        &self,
        idle: Duration,
        absolute: Duration,
    ) -> Result<Vec<LiveSession>, ServiceError> {
        let now = self.clock.now();
        Ok(self
            .store
            .live_staff_sessions(now - idle, now - absolute, 200)
            .await?)
    }

    /// Ends one session (named by its handle) for an administrator, audited under them; false
    /// if it had already ended.
    pub async fn revoke(&self, handle: &str, by: &Actor) -> Result<bool, ServiceError> {
        let at = self.clock.now();
        let ended = self
            .store
            .revoke_staff_session(handle, at, "revoked_by_admin")
            .await?;
        if ended {
            self.store
                .append_audit(&AuditEntry {
                    at,
                    actor_key_id: by.id(),
                    actor_label: by.label(),
                    action: "console.session_revoked".into(),
                    subject: handle.chars().take(12).collect(),
                    detail: json!({}),
                })
                .await?;
        }
        Ok(ended)
    }

    /// Ends every session of the person `subject` (`staff:<subject>`), as `by`; how many.
    pub async fn revoke_all(&self, subject: &str, by: &Actor) -> Result<u64, ServiceError> {
        let at = self.clock.now();
        let ended = self
            .store
            .revoke_staff_sessions_of(subject, at, "revoked_by_admin")
            .await?;
        self.store
            .append_audit(&AuditEntry {
                at,
                actor_key_id: by.id(),
                actor_label: by.label(),
                action: "console.sessions_revoked".into(),
                subject: subject.to_owned(),
                detail: json!({"sessions": ended}),
            })
            .await?;
        Ok(ended)
    }
}
