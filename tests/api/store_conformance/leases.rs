//! The story's leases chapter: payments leased to the poller once at a time, and refresh times.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use counterfoil::domain::Payment;
use counterfoil::store::Store;

pub(super) async fn chapter(store: &dyn Store, t0: DateTime<Utc>, p1: &Payment, p2: &Payment) {
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
