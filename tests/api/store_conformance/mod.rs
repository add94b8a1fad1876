//! One story over `dyn Store`, run against SQLite and PostgreSQL: both backends must behave the
//! same, and their schemas must have the same tables and columns.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use counterfoil::domain::{
    CreateOutcome, IdempotencyKey, Payment, PaymentId, PaymentStatus, ProviderKind,
};
use counterfoil::store::{self, IdempotencyClaim, Store};

use crate::support::postgres;

mod keys;
mod leases;
mod payments;
mod reconciliation;
mod webhooks;

async fn sqlite_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let url = format!("sqlite://{}", dir.path().join("conformance.db").display());
    let store = store::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    store
}

async fn postgres_store() -> Arc<dyn Store> {
    let store = store::connect(&postgres::fresh_database().await, 4)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

/// A new payment row as the create path writes it (also the exit drills' fixture).
pub(crate) fn payment(at: chrono::DateTime<Utc>, request_ref: &str) -> Payment {
    Payment {
        id: PaymentId::new(),
        request_ref: request_ref.into(),
        service: "demo".into(),
        account: "sandbox".into(),
        provider: ProviderKind::GovukPay,
        amount: 1234,
        description: "Bulky waste collection".into(),
        email: Some("resident@example.org".into()),
        metadata: BTreeMap::from([("case".to_string(), "A-1".to_string())]),
        return_url: "https://council.example.gov.uk/done".into(),
        status: PaymentStatus::Created,
        create_outcome: CreateOutcome::Pending,
        provider_payment_id: None,
        next_url: None,
        failure_code: None,
        created_at: at,
        updated_at: at,
        finished_at: None,
        refreshed_at: None,
        refunded_amount: 0,
    }
}

pub(super) fn claim(key: &str, fingerprint: &str, now: chrono::DateTime<Utc>) -> IdempotencyClaim {
    IdempotencyClaim {
        principal: "key1".into(),
        key: IdempotencyKey::parse(key).unwrap(),
        route: "POST /v1/payments".into(),
        fingerprint: fingerprint.into(),
        now,
        lease_until: now + Duration::seconds(60),
        expires_at: now + Duration::hours(24),
    }
}

/// The whole story. Every assertion here holds for every backend.
async fn story(store: Arc<dyn Store>) {
    // Migrating again is a no-op.
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 3, 29, 0, 30, 0).unwrap() + Duration::microseconds(123_456);

    keys::chapter(store.as_ref(), t0).await;
    let (p1, p2) = payments::chapter(store.as_ref(), t0).await;
    webhooks::chapter(store.as_ref(), t0).await;
    leases::chapter(store.as_ref(), t0, &p1, &p2).await;
    webhooks::batches(store.as_ref(), t0).await;
    reconciliation::chapter(store.as_ref(), t0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    story(sqlite_store(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_conforms() {
    story(postgres_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_schemas_have_the_same_tables_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let names = |columns: Vec<store::ColumnInfo>| -> Vec<(String, String)> {
        columns.into_iter().map(|c| (c.table, c.column)).collect()
    };
    let sqlite = names(sqlite_store(&dir).await.describe_schema().await.unwrap());
    let postgres = names(postgres_store().await.describe_schema().await.unwrap());
    assert!(sqlite.len() > 20, "the schema was read: {sqlite:?}");
    assert_eq!(sqlite, postgres);
}

pub(super) fn audit_entry() -> counterfoil::store::AuditEntry {
    counterfoil::store::AuditEntry {
        at: chrono::Utc::now(),
        actor_key_id: "k".into(),
        actor_label: "conformance".into(),
        action: "payment.created".into(),
        subject: "p".into(),
        detail: serde_json::json!({}),
    }
}
