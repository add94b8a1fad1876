//! The benchmarks' measure of the service's own database work: every statement's time as sqlx
//! reports it (its `sqlx::query` event, from just before the statement is sent to its last row
//! read: round trip, `BEGIN` and `COMMIT` included), summed until read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static DATABASE_NANOS: AtomicU64 = AtomicU64::new(0);
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

struct DatabaseTime;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for DatabaseTime {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Elapsed;
        impl tracing::field::Visit for Elapsed {
            fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
                if field.name() == "elapsed_secs" {
                    DATABASE_NANOS.fetch_add((value * 1e9) as u64, Ordering::Relaxed);
                    STATEMENTS.fetch_add(1, Ordering::Relaxed);
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        event.record(&mut Elapsed);
    }
}

/// Makes the measure this process's only subscriber (nothing else is logged).
pub fn install() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;
    let only_statements = tracing_subscriber::filter::Targets::new()
        .with_target("sqlx::query", tracing::Level::DEBUG);
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(DatabaseTime.with_filter(only_statements)),
    )
    .expect("the only subscriber");
}

/// The database time and statements since the last call.
pub fn database_time() -> (Duration, u64) {
    (
        Duration::from_nanos(DATABASE_NANOS.swap(0, Ordering::Relaxed)),
        STATEMENTS.swap(0, Ordering::Relaxed),
    )
}
