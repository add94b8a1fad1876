//! The story's payments chapter: claims, settling, compare-and-set status changes, listing.

use chrono::{DateTime, Duration, Utc};
use counterfoil::domain::{CreateOutcome, Payment, PaymentStatus, TransitionSource};
use counterfoil::store::{ClaimOutcome, IdempotencySettle, PaymentQuery, StatusChange, Store};

use super::{audit_entry, claim, payment};

pub(super) async fn chapter(store: &dyn Store, t0: DateTime<Utc>) -> (Payment, Payment) {
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
    // Taken over whole: nothing of the expired claim's request answers the new one (not its
    // stored reply, not its fingerprint); it is held by the new request until its lease ends,
    // then linked to the new payment.
    let p6 = payment(late.now, "REF-6");
    assert_eq!(
        store
            .claim_and_insert_payment(&late, &p6, &audit_entry())
            .await
            .unwrap(),
        ClaimOutcome::InFlight
    );
    let mut after_lease = late.clone();
    after_lease.now = late.lease_until + Duration::seconds(1);
    assert_eq!(
        store
            .claim_and_insert_payment(&after_lease, &p6, &audit_entry())
            .await
            .unwrap(),
        ClaimOutcome::Linked {
            resource_id: p5.id.to_string()
        }
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
    (p1, p2)
}
