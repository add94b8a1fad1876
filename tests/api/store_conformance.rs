//! One story over `dyn Store`, run against SQLite and PostgreSQL: both backends must behave the
//! same, and their schemas must have the same tables and columns.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Duration, SubsecRound, TimeZone, Utc};
use counterfoil::domain::api_key::Role;
use counterfoil::domain::{
    CreateOutcome, EventOutcome, IdempotencyKey, Payment, PaymentId, PaymentStatus, ProviderEvent,
    ProviderKind, TransitionSource,
};
use counterfoil::store::{
    self, ApiKeyRecord, ClaimOutcome, IdempotencyClaim, IdempotencySettle, PaymentQuery,
    StatusChange, Store,
};

use crate::support::postgres;

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

fn claim(key: &str, fingerprint: &str, now: chrono::DateTime<Utc>) -> IdempotencyClaim {
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

    // Claiming a key writes the payment and its first event; times round-trip to the microsecond.
    let p1 = payment(t0, "REF-1");
    let c1 = claim("k1", "fp1", t0);
    assert_eq!(
        store
            .claim_and_insert_payment(&c1, &p1, &audit_entry())
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(store.get_payment(&p1.id).await.unwrap().as_ref(), Some(&p1));
    assert_eq!(
        store
            .claim_and_insert_payment(&c1, &payment(t0, "REF-1"), &audit_entry())
            .await
            .unwrap(),
        ClaimOutcome::InFlight
    );
    assert_eq!(
        store
            .claim_and_insert_payment(
                &claim("k1", "other", t0),
                &payment(t0, "REF-1"),
                &audit_entry()
            )
            .await
            .unwrap(),
        ClaimOutcome::KeyReused
    );

    // Settling records the provider's answer, an event for the status change, and the replay.
    let mut confirmed = p1.clone();
    confirmed.create_outcome = CreateOutcome::Confirmed;
    confirmed.provider_payment_id = Some("prov-1".into());
    confirmed.next_url = Some("https://pay.example/1".into());
    confirmed.status = PaymentStatus::InProgress;
    confirmed.updated_at = t0 + Duration::seconds(1);
    confirmed.refreshed_at = Some(confirmed.updated_at);
    let settle = IdempotencySettle::Completed {
        status: 201,
        body: "{\"id\":1}".into(),
    };
    assert!(store
        .settle_payment_create(
            &confirmed,
            PaymentStatus::Created,
            TransitionSource::Api,
            false,
            Some((&c1, settle))
        )
        .await
        .unwrap());
    assert!(
        !store
            .settle_payment_create(
                &confirmed,
                PaymentStatus::Created,
                TransitionSource::Api,
                false,
                None
            )
            .await
            .unwrap(),
        "a create is settled once"
    );
    assert_eq!(
        store.get_payment(&p1.id).await.unwrap(),
        Some(confirmed.clone())
    );
    assert_eq!(
        store
            .claim_and_insert_payment(&c1, &payment(t0, "REF-1"), &audit_entry())
            .await
            .unwrap(),
        ClaimOutcome::Replay {
            status: 201,
            body: "{\"id\":1}".into()
        }
    );

    // Compare-and-set status changes.
    let wrong_from = StatusChange {
        payment_id: p1.id.clone(),
        from: PaymentStatus::Created,
        to: PaymentStatus::Succeeded,
        at: t0 + Duration::seconds(2),
        source: TransitionSource::Webhook,
        failure_code: None,
    };
    assert!(!store.record_status_change(&wrong_from).await.unwrap());
    let right = StatusChange {
        from: PaymentStatus::InProgress,
        ..wrong_from
    };
    assert!(store.record_status_change(&right).await.unwrap());
    let after = store.get_payment(&p1.id).await.unwrap().unwrap();
    assert_eq!(after.status, PaymentStatus::Succeeded);
    assert_eq!(after.finished_at, Some(right.at));
    let events = store.payment_events(&p1.id).await.unwrap();
    let steps: Vec<_> = events.iter().map(|e| (e.from, e.to, e.source)).collect();
    assert_eq!(
        steps,
        vec![
            (None, PaymentStatus::Created, TransitionSource::Api),
            (
                Some(PaymentStatus::Created),
                PaymentStatus::InProgress,
                TransitionSource::Api
            ),
            (
                Some(PaymentStatus::InProgress),
                PaymentStatus::Succeeded,
                TransitionSource::Webhook
            ),
        ]
    );

    // A claim whose holder vanished (lease expired) becomes a linked, unresolved create.
    let p2 = payment(t0 + Duration::seconds(10), "REF-2");
    let mut c2 = claim("k2", "fp2", t0 + Duration::seconds(10));
    assert_eq!(
        store
            .claim_and_insert_payment(&c2, &p2, &audit_entry())
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    c2.now = c2.lease_until + Duration::seconds(1);
    assert_eq!(
        store
            .claim_and_insert_payment(&c2, &payment(c2.now, "REF-2"), &audit_entry())
            .await
            .unwrap(),
        ClaimOutcome::Linked {
            resource_id: p2.id.to_string()
        }
    );
    assert_eq!(
        store
            .get_payment(&p2.id)
            .await
            .unwrap()
            .unwrap()
            .create_outcome,
        CreateOutcome::Unknown
    );

    // A released key can be claimed afresh; an expired one too.
    let p3 = payment(t0 + Duration::seconds(20), "REF-3");
    let c3 = claim("k3", "fp3", t0 + Duration::seconds(20));
    store
        .claim_and_insert_payment(&c3, &p3, &audit_entry())
        .await
        .unwrap();
    let mut failed = p3.clone();
    failed.status = PaymentStatus::Error;
    failed.create_outcome = CreateOutcome::NotCreated;
    store
        .settle_payment_create(
            &failed,
            PaymentStatus::Created,
            TransitionSource::Api,
            false,
            Some((&c3, IdempotencySettle::Release)),
        )
        .await
        .unwrap();
    let p4 = payment(t0 + Duration::seconds(30), "REF-3");
    assert_eq!(
        store
            .claim_and_insert_payment(&c3, &p4, &audit_entry())
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    let mut late = claim("k1", "different", t0 + Duration::hours(25));
    late.expires_at = late.now + Duration::hours(24);
    let p5 = payment(late.now, "REF-5");
    assert_eq!(
        store
            .claim_and_insert_payment(&late, &p5, &audit_entry())
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );

    // Listing: newest first, filters, and a keyset position.
    let all = store
        .list_payments(&PaymentQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = all.iter().map(|p| p.id.clone()).collect();
    assert_eq!(
        ids,
        vec![
            p5.id.clone(),
            p4.id.clone(),
            p3.id.clone(),
            p2.id.clone(),
            p1.id.clone()
        ]
    );
    let ref3 = store
        .list_payments(&PaymentQuery {
            request_ref: Some("REF-3".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ref3.len(), 2);
    let succeeded = store
        .list_payments(&PaymentQuery {
            status: Some(PaymentStatus::Succeeded),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        succeeded.iter().map(|p| &p.id).collect::<Vec<_>>(),
        vec![&p1.id]
    );
    let older = store
        .list_payments(&PaymentQuery {
            before: Some((p3.created_at, p3.id.clone())),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        older.iter().map(|p| &p.id).collect::<Vec<_>>(),
        vec![&p2.id, &p1.id]
    );
    let window = store
        .list_payments(&PaymentQuery {
            created_from: Some(t0 + Duration::seconds(10)),
            created_to: Some(t0 + Duration::seconds(30)),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        window.iter().map(|p| &p.id).collect::<Vec<_>>(),
        vec![&p3.id, &p2.id]
    );

    // Provider events: applied once, duplicates and old news ignored, each with its receipt.
    let event = |message_id: &str, provider_id: &str, reported: PaymentStatus| ProviderEvent {
        message_id: message_id.into(),
        event_type: "card_payment_succeeded".into(),
        provider_payment_id: provider_id.into(),
        reported: Some(reported),
        failure_code: None,
        occurred_at: Some(t0),
        counterfoil_id: None,
        refund_activity: false,
    };
    let mut p6 = payment(t0 + Duration::seconds(40), "REF-6");
    let c6 = claim("k6", "fp6", p6.created_at);
    store
        .claim_and_insert_payment(&c6, &p6, &audit_entry())
        .await
        .unwrap();
    p6.create_outcome = CreateOutcome::Confirmed;
    p6.provider_payment_id = Some("prov-6".into());
    store
        .settle_payment_create(
            &p6,
            PaymentStatus::Created,
            TransitionSource::Api,
            false,
            None,
        )
        .await
        .unwrap();
    let received = t0 + Duration::seconds(41);
    assert_eq!(
        store
            .apply_provider_event(
                "sandbox",
                &event("m1", "prov-6", PaymentStatus::Succeeded),
                received
            )
            .await
            .unwrap(),
        EventOutcome::Applied {
            payment_id: p6.id.clone(),
            from: PaymentStatus::Created,
            to: PaymentStatus::Succeeded
        }
    );
    assert_eq!(
        store
            .apply_provider_event(
                "sandbox",
                &event("m1", "prov-6", PaymentStatus::Succeeded),
                received
            )
            .await
            .unwrap(),
        EventOutcome::Duplicate
    );
    assert_eq!(
        store
            .apply_provider_event(
                "sandbox",
                &event("m0", "prov-6", PaymentStatus::InProgress),
                received
            )
            .await
            .unwrap(),
        EventOutcome::Ignored
    );
    // The same message id on another account is another message.
    assert_eq!(
        store
            .apply_provider_event(
                "other",
                &event("m1", "prov-6", PaymentStatus::Succeeded),
                received
            )
            .await
            .unwrap(),
        EventOutcome::Orphan
    );

    // An orphan is applied when the lost create it belongs to is resolved.
    let mut p7 = payment(t0 + Duration::seconds(50), "REF-7");
    let c7 = claim("k7", "fp7", p7.created_at);
    store
        .claim_and_insert_payment(&c7, &p7, &audit_entry())
        .await
        .unwrap();
    assert_eq!(
        store
            .apply_provider_event(
                "sandbox",
                &event("m7", "prov-7", PaymentStatus::Succeeded),
                received
            )
            .await
            .unwrap(),
        EventOutcome::Orphan
    );
    p7.create_outcome = CreateOutcome::Confirmed;
    p7.provider_payment_id = Some("prov-7".into());
    p7.updated_at = t0 + Duration::seconds(60);
    store
        .settle_payment_create(
            &p7,
            PaymentStatus::Created,
            TransitionSource::Poll,
            true,
            None,
        )
        .await
        .unwrap();
    let resolved = store.get_payment(&p7.id).await.unwrap().unwrap();
    assert_eq!(resolved.status, PaymentStatus::Succeeded);
    let moves: Vec<_> = store
        .payment_events(&p7.id)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.to, e.source))
        .collect();
    assert_eq!(
        moves,
        vec![
            (PaymentStatus::Created, TransitionSource::Api),
            (PaymentStatus::Succeeded, TransitionSource::Webhook),
        ]
    );

    // Poll leases: a leased payment is not handed out again until its lease ends.
    let now = t0 + Duration::hours(30);
    let first = store
        .lease_payments_to_poll(now, now, now + Duration::minutes(15), 100)
        .await
        .unwrap();
    let leased: Vec<_> = first.iter().map(|p| p.id.clone()).collect();
    assert!(
        leased.contains(&p2.id) && !leased.contains(&p1.id),
        "not-final payments only: {leased:?}"
    );
    assert!(store
        .lease_payments_to_poll(now, now, now + Duration::minutes(15), 100)
        .await
        .unwrap()
        .is_empty());
    let later = now + Duration::minutes(16);
    assert_eq!(
        store
            .lease_payments_to_poll(later, later, later + Duration::minutes(15), 100)
            .await
            .unwrap()
            .len(),
        first.len()
    );

    // A refresh time is noted.
    let now = Utc::now().trunc_subsecs(6);
    store.mark_refreshed(&p2.id, now).await.unwrap();
    assert_eq!(
        store
            .get_payment(&p2.id)
            .await
            .unwrap()
            .unwrap()
            .refreshed_at,
        Some(now)
    );
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

fn audit_entry() -> counterfoil::store::AuditEntry {
    counterfoil::store::AuditEntry {
        at: chrono::Utc::now(),
        actor_key_id: "k".into(),
        actor_label: "conformance".into(),
        action: "payment.created".into(),
        subject: "p".into(),
        detail: serde_json::json!({}),
    }
}
