//! Logging: readable text in development, JSON lines in production, filtered by `RUST_LOG`.
//! What is logged is decided where it is logged: never bodies, secrets or card data.

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::Environment;

pub fn init(environment: Environment) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    // Logs go to stderr: stdout is for what a command prints (a key, a report, JSON).
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = match environment {
        Environment::Production => builder.json().flatten_event(true).try_init(),
        Environment::Development => builder.try_init(),
    };
}
