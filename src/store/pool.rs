//! How both stores' connection pools hand out connections: checked only when they have idled.

use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::{Connection, Database};

/// A connection idle longer than this is pinged before it is handed out; one used more recently
/// is handed out as it is.
///
/// sqlx's default pings on *every* acquire: a round trip before each statement a request runs on
/// its own connection (a console page runs three to eleven, a create three): part of what a
/// light page spent outside its statements in the read benchmark (docs/benchmarks.md). A
/// connection used within the last second is alive unless the database went away in that second,
/// and then the statement fails like any other lost connection (a webhook is answered 5xx and
/// retried by its provider; a CRM repeats with its Idempotency-Key) and sqlx drops it. Connections
/// that sat idle, as after a quiet night or a database restart, are still checked: the policy
/// pools such as HikariCP use, and the one sqlx documents for `before_acquire`.
pub const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// The pool options both stores (and the benchmarks' floors) start from.
pub fn pool_options<DB: Database>(
    max_connections: u32,
    acquire_timeout: Duration,
) -> PoolOptions<DB> {
    PoolOptions::<DB>::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|connection, metadata| {
            Box::pin(async move {
                if metadata.idle_for >= PING_WHEN_IDLE_FOR {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
}
