//! The story's API keys chapter: stored, found, revoked once.

use chrono::{DateTime, Utc};
use counterfoil::domain::api_key::Role;
use counterfoil::store::{ApiKeyRecord, Store};

pub(super) async fn chapter(store: &dyn Store, t0: DateTime<Utc>) {
    // API keys.
    let key = ApiKeyRecord {
        id: "abcdefghijkl".into(),
        role: Role::Finance,
        label: "Finance team".into(),
        token_sha256: "0".repeat(64),
        created_at: t0,
        revoked_at: None,
        last_used_at: None,
        expires_at: Some(t0 + chrono::Duration::days(30)),
    };
    store.insert_api_key(&key).await.unwrap();
    assert_eq!(
        store.find_api_key("abcdefghijkl").await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(store.find_api_key("nope").await.unwrap(), None);
    assert!(store.revoke_api_key("abcdefghijkl", t0).await.unwrap());
    assert!(
        !store.revoke_api_key("abcdefghijkl", t0).await.unwrap(),
        "already revoked"
    );
    assert_eq!(store.list_api_keys().await.unwrap()[0].revoked_at, Some(t0));
}
