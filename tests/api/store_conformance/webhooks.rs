//! The story's webhooks chapter: provider events applied once, duplicates and old news ignored, orphans matched.

use chrono::{DateTime, Duration, Utc};
use counterfoil::domain::Payment;
use counterfoil::domain::{
    CreateOutcome, EventOutcome, PaymentStatus, ProviderEvent, TransitionSource,
};
use counterfoil::store::{ReceivedEvent, Store, StoreError};

use super::{audit_entry, claim, payment};

/// A payment the provider has confirmed as `provider_id`.
async fn confirmed(
    store: &dyn Store,
    at: DateTime<Utc>,
    request_ref: &str,
    provider_id: &str,
) -> Payment {
    let mut p = payment(at, request_ref);
    let c = claim(
        &format!("k-{request_ref}"),
        &format!("fp-{request_ref}"),
        at,
    );
    store
        .claim_and_insert_payment(&c, &p, &audit_entry())
        .await
        .unwrap();
    p.create_outcome = CreateOutcome::Confirmed;
    p.provider_payment_id = Some(provider_id.into());
    store
        .settle_payment_create(
            &p,
            PaymentStatus::Created,
            TransitionSource::Api,
            false,
            None,
        )
        .await
        .unwrap();
    p
}

/// Several events in one transaction: each as if alone, in arrival order for one payment,
/// duplicates within the batch caught, and all or none.
pub(super) async fn batches(store: &dyn Store, t0: DateTime<Utc>) {
    let received = t0 + Duration::seconds(90);
    let event = |message_id: &str, provider_id: &str, reported: PaymentStatus| ReceivedEvent {
        account: "sandbox".into(),
        event: ProviderEvent {
            message_id: message_id.into(),
            event_type: "card_payment_succeeded".into(),
            provider_payment_id: provider_id.into(),
            reported: Some(reported),
            failure_code: None,
            occurred_at: Some(t0),
            counterfoil_id: None,
            refund_activity: false,
        },
        received_at: received,
    };
    let p8 = confirmed(store, t0 + Duration::seconds(80), "REF-8", "prov-8").await;
    let p9 = confirmed(store, t0 + Duration::seconds(81), "REF-9", "prov-9").await;
    let outcomes = store
        .apply_provider_events(&[
            event("b1", "prov-9", PaymentStatus::InProgress),
            event("b2", "prov-8", PaymentStatus::Succeeded),
            event("b3", "prov-9", PaymentStatus::Succeeded),
            event("b2", "prov-8", PaymentStatus::Succeeded),
            event("b4", "prov-unknown", PaymentStatus::Succeeded),
            event("b5", "prov-8", PaymentStatus::InProgress),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            EventOutcome::Applied {
                payment_id: p9.id.clone(),
                from: PaymentStatus::Created,
                to: PaymentStatus::InProgress
            },
            EventOutcome::Applied {
                payment_id: p8.id.clone(),
                from: PaymentStatus::Created,
                to: PaymentStatus::Succeeded
            },
            EventOutcome::Applied {
                payment_id: p9.id.clone(),
                from: PaymentStatus::InProgress,
                to: PaymentStatus::Succeeded
            },
            EventOutcome::Duplicate,
            EventOutcome::Orphan,
            EventOutcome::Ignored,
        ]
    );
    let timeline: Vec<_> = store
        .payment_events(&p9.id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.to)
        .collect();
    assert_eq!(
        timeline,
        vec![
            PaymentStatus::Created,
            PaymentStatus::InProgress,
            PaymentStatus::Succeeded
        ]
    );
    // A second copy of a message from an earlier batch is a duplicate in this one.
    let again = store
        .apply_provider_events(&[event("b3", "prov-9", PaymentStatus::Succeeded)])
        .await
        .unwrap();
    assert_eq!(again, vec![EventOutcome::Duplicate]);

    // All or none: one event the store refuses (a card number in a value to be written) and the
    // batch writes nothing; its good event, applied alone, still applies.
    let p10 = confirmed(store, t0 + Duration::seconds(82), "REF-10", "prov-10").await;
    let mut bad = event("c2", "prov-unknown", PaymentStatus::Failed);
    bad.event.failure_code = Some(crate::helpers::fresh_test_pan());
    let refused = store
        .apply_provider_events(&[event("c1", "prov-10", PaymentStatus::Succeeded), bad])
        .await;
    assert!(matches!(refused, Err(StoreError::CardData)), "{refused:?}");
    assert_eq!(
        store.get_payment(&p10.id).await.unwrap().unwrap().status,
        PaymentStatus::Created
    );
    assert!(matches!(
        store
            .apply_provider_event(
                "sandbox",
                &event("c1", "prov-10", PaymentStatus::Succeeded).event,
                received
            )
            .await
            .unwrap(),
        EventOutcome::Applied { .. }
    ));
}

pub(super) async fn chapter(store: &dyn Store, t0: DateTime<Utc>) {
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
}
