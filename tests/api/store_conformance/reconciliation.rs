//! The story's reconciliation chapter: the provider's pages staged and read back in bounded
//! steps beside ours, in order, a payment's refunds never split, and nothing left when a run ends.

use chrono::{DateTime, Duration, Utc};
use counterfoil::domain::refund::RefundStatus;
use counterfoil::domain::{CreateOutcome, PaymentStatus, TransitionSource};
use counterfoil::providers::{ProviderPayment, ProviderRefund, ProviderRefundRecord};
use counterfoil::store::{ReconciliationRun, Store};

use super::{audit_entry, claim, payment};

const ACCOUNT: &str = "conformance-reconciliation";

fn listed(provider_id: &str, at: DateTime<Utc>) -> ProviderPayment {
    ProviderPayment {
        provider_payment_id: provider_id.into(),
        status: PaymentStatus::Succeeded,
        failure_code: None,
        next_url: None,
        amount: 1234,
        reference: "REF".into(),
        counterfoil_id: None,
        created_at: Some(at),
        finished_at: Some(at),
        refund_available: Some(1234),
    }
}

fn refund(provider_id: &str, refund_id: &str) -> ProviderRefundRecord {
    ProviderRefundRecord {
        provider_payment_id: provider_id.into(),
        refund: ProviderRefund {
            provider_refund_id: refund_id.into(),
            status: RefundStatus::Succeeded,
            provider_status: "success".into(),
            amount: 100,
        },
    }
}

pub(super) async fn chapter(store: &dyn Store, t0: DateTime<Utc>) {
    // Ours: three payments the provider confirmed.
    let mut ours = Vec::new();
    for (i, provider_id) in ["recpaya", "recpayb", "recpayc"].iter().enumerate() {
        let mut p = payment(t0 + Duration::seconds(i as i64), &format!("REC-{i}"));
        p.account = ACCOUNT.into();
        let c = claim(&format!("rec-{i}"), "fp", p.created_at);
        store
            .claim_and_insert_payment(&c, &p, &audit_entry())
            .await
            .unwrap();
        p.create_outcome = CreateOutcome::Confirmed;
        p.provider_payment_id = Some((*provider_id).into());
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
        ours.push(p);
    }
    let run = ReconciliationRun {
        id: "rec_conformance".into(),
        account: ACCOUNT.into(),
        period_from: t0 - Duration::hours(1),
        period_to: t0 + Duration::hours(1),
        requested_by: "conformance".into(),
        requested_by_label: "conformance test".into(),
        started_at: t0,
        finished_at: None,
        status: counterfoil::domain::reconciliation::RunStatus::Running,
        provider_payments: 0,
        provider_refunds: 0,
        local_payments: 0,
        error: None,
    };
    store
        .insert_reconciliation_run(&run, &audit_entry())
        .await
        .unwrap();
    assert_eq!(
        store
            .count_payments_created(ACCOUNT, run.period_from, run.period_to)
            .await
            .unwrap(),
        3
    );

    // The provider lists b and c, and x (not ours), over two pages that overlap: b is staged once.
    let pages = [
        vec![listed("recpayx", t0), listed("recpayb", t0)],
        vec![listed("recpayc", t0), listed("recpayb", t0)],
    ];
    for page in &pages {
        store.stage_provider_payments(&run.id, page).await.unwrap();
    }
    let mut read = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let step = store
            .staged_provider_payments(&run.id, ACCOUNT, after.as_deref(), 1)
            .await
            .unwrap();
        let Some((last, _)) = step.last() else { break };
        assert_eq!(step.len(), 1, "one record a step");
        after = Some(last.provider_payment_id.clone());
        read.extend(
            step.into_iter()
                .map(|(theirs, mine)| (theirs.provider_payment_id, mine.map(|p| p.id))),
        );
    }
    assert_eq!(
        read,
        vec![
            ("recpayb".to_string(), Some(ours[1].id.clone())),
            ("recpayc".to_string(), Some(ours[2].id.clone())),
            ("recpayx".to_string(), None),
        ],
        "in provider-id order, each beside ours, each once"
    );

    // Ours the provider does not list: a, and only a, a step at a time.
    let unlisted = store
        .payments_unlisted_by_provider(&run.id, ACCOUNT, run.period_from, run.period_to, None, 1)
        .await
        .unwrap();
    assert_eq!(
        unlisted.iter().map(|p| &p.id).collect::<Vec<_>>(),
        vec![&ours[0].id]
    );
    let after = Some((unlisted[0].created_at, unlisted[0].id.to_string()));
    assert!(store
        .payments_unlisted_by_provider(&run.id, ACCOUNT, run.period_from, run.period_to, after, 1)
        .await
        .unwrap()
        .is_empty());

    // Refunds: b's two come together even one payment a step, then c's.
    store
        .stage_provider_refunds(
            &run.id,
            &[
                refund("recpayb", "r2"),
                refund("recpayc", "r1"),
                refund("recpayb", "r1"),
            ],
        )
        .await
        .unwrap();
    let first = store
        .staged_provider_refunds(&run.id, None, 1)
        .await
        .unwrap();
    let ids = |records: &[ProviderRefundRecord]| -> Vec<(String, String)> {
        records
            .iter()
            .map(|r| {
                (
                    r.provider_payment_id.clone(),
                    r.refund.provider_refund_id.clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        ids(&first),
        vec![
            ("recpayb".into(), "r1".into()),
            ("recpayb".into(), "r2".into())
        ]
    );
    let second = store
        .staged_provider_refunds(&run.id, Some("recpayb"), 1)
        .await
        .unwrap();
    assert_eq!(ids(&second), vec![("recpayc".into(), "r1".into())]);
    assert!(store
        .staged_provider_refunds(&run.id, Some("recpayc"), 1)
        .await
        .unwrap()
        .is_empty());

    // Finishing the run removes what it staged.
    let mut finished = run.clone();
    finished.status = counterfoil::domain::reconciliation::RunStatus::Completed;
    finished.finished_at = Some(t0 + Duration::minutes(1));
    store.finish_reconciliation_run(&finished).await.unwrap();
    assert!(store
        .staged_provider_payments(&run.id, ACCOUNT, None, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .staged_provider_refunds(&run.id, None, 100)
        .await
        .unwrap()
        .is_empty());
}
