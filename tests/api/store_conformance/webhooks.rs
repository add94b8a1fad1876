//! The story's webhooks chapter: provider events applied once, duplicates and old news ignored, orphans matched.

use chrono::{DateTime, Duration, Utc};
use counterfoil::domain::{
    CreateOutcome, EventOutcome, PaymentStatus, ProviderEvent, TransitionSource,
};
use counterfoil::store::Store;

use super::{audit_entry, claim, payment};

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
