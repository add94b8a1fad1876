//! API keys: create (the key is shown once), list, revoke, and authenticate a presented key.

use std::sync::Arc;

use rand::distributions::{Alphanumeric, DistString};
use subtle::ConstantTimeEq;

use super::{Clock, Principal, ServiceError};
use crate::domain::api_key::{self, Role};
use crate::domain::refs::in_letters;
use crate::domain::Actor;
use crate::store::{ApiKeyRecord, Store};

pub struct KeyService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

/// Why a presented key was not accepted. Callers answer all of these with the same 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    Unknown,
    Revoked,
    Expired,
}

/// A key's last use is written at most this often (a write per request would cost more than
/// the answer it records).
const LAST_USE_RESOLUTION: chrono::Duration = chrono::Duration::seconds(60);

impl KeyService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Makes a new key. The returned token is the only time the key exists in clear.
    pub async fn create(
        &self,
        actor: &Actor,
        role: Role,
        label: &str,
    ) -> Result<(ApiKeyRecord, String), ServiceError> {
        self.create_expiring(actor, role, label, None).await
    }

    /// Makes a new key that is refused after `expires_at`, if given.
    pub async fn create_expiring(
        &self,
        actor: &Actor,
        role: Role,
        label: &str,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(ApiKeyRecord, String), ServiceError> {
        if expires_at.is_some_and(|at| at <= self.clock.now()) {
            return Err(ServiceError::Validation(vec![super::FieldIssue::new(
                "expires_at",
                crate::domain::FieldError::new("out_of_range", "must be in the future"),
            )]));
        }
        let label = label.trim();
        if label.is_empty() || label.chars().count() > 100 {
            return Err(ServiceError::Validation(vec![super::FieldIssue::new(
                "label",
                crate::domain::FieldError::new("invalid_length", "must be 1 to 100 characters"),
            )]));
        }
        let mut rng = rand::rngs::OsRng;
        let id = Alphanumeric.sample_string(&mut rng, api_key::id_len());
        let secret = Alphanumeric.sample_string(&mut rng, api_key::secret_len());
        let token = api_key::format_token(&id, &secret);
        let record = ApiKeyRecord {
            id,
            role,
            label: label.to_owned(),
            token_sha256: in_letters(&api_key::token_digest(&token)),
            created_at: self.clock.now(),
            revoked_at: None,
            last_used_at: None,
            expires_at,
        };
        self.store.insert_api_key(&record).await?;
        self.audit(
            actor,
            "key.created",
            &record.id,
            serde_json::json!({
                "role": role.as_str(),
                "label": record.label,
                "expires_at": record.expires_at.map(|t| t.to_rfc3339()),
            }),
        )
        .await?;
        Ok((record, token))
    }

    pub async fn list(&self) -> Result<Vec<ApiKeyRecord>, ServiceError> {
        Ok(self.store.list_api_keys().await?)
    }

    /// Revokes a key by its id (the part after `cf_`); false when there was nothing to revoke.
    pub async fn revoke(&self, actor: &Actor, id: &str) -> Result<bool, ServiceError> {
        let revoked = self.store.revoke_api_key(id, self.clock.now()).await?;
        if revoked {
            self.audit(actor, "key.revoked", id, serde_json::json!({}))
                .await?;
        }
        Ok(revoked)
    }

    /// Key changes are recorded under whoever made them (an administrator in the console, an
    /// operator at the command line).
    async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Result<(), ServiceError> {
        Ok(self
            .store
            .append_audit(&crate::store::AuditEntry {
                at: self.clock.now(),
                actor_key_id: actor.id(),
                actor_label: actor.label(),
                action: action.into(),
                subject: subject.into(),
                detail,
            })
            .await?)
    }

    /// Checks a bearer token: looked up by its public id, then its digest compared in constant time.
    pub async fn authenticate(
        &self,
        token: Option<&str>,
    ) -> Result<Result<Principal, AuthFailure>, ServiceError> {
        let Some(token) = token else {
            return Ok(Err(AuthFailure::Missing));
        };
        let Some(presented) = api_key::parse_token(token) else {
            return Ok(Err(AuthFailure::Malformed));
        };
        let Some(record) = self.store.find_api_key(presented.key_id).await? else {
            return Ok(Err(AuthFailure::Unknown));
        };
        let digest = in_letters(&api_key::token_digest(presented.token));
        if !bool::from(digest.as_bytes().ct_eq(record.token_sha256.as_bytes())) {
            return Ok(Err(AuthFailure::Unknown));
        }
        if record.revoked_at.is_some() {
            return Ok(Err(AuthFailure::Revoked));
        }
        let now = self.clock.now();
        if record.expires_at.is_some_and(|at| at <= now) {
            return Ok(Err(AuthFailure::Expired));
        }
        if record
            .last_used_at
            .is_none_or(|last| now - last >= LAST_USE_RESOLUTION)
        {
            self.store.touch_api_key(&record.id, now).await?;
        }
        Ok(Ok(Principal {
            key_id: record.id,
            role: record.role,
            label: record.label,
        }))
    }
}
