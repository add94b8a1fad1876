//! What the seeder makes and the benchmarks read: the services a seeded database's payments are
//! spread over, and the settings a service reading it runs with.

use counterfoil::config::{ServiceSettings, Settings};

/// The seeded council services: `svc-a` … `svc-l`, all on the built-in simulator's account.
pub const SERVICES: usize = 12;

pub fn service_code(n: usize) -> String {
    format!("svc-{}", (b'a' + n as u8) as char)
}

/// The database `name` on the same server as `server_url` (a URL naming some database).
pub fn database_on(server_url: &str, name: &str) -> String {
    let base = server_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(server_url);
    format!("{base}/{name}")
}

/// The development default on `database_url`, with the seeded services, no background work and
/// no rate limits (the benchmarks measure the work, not the limits).
pub fn settings(database_url: &str) -> Settings {
    let mut settings = Settings::development_default();
    settings.server.bind = "127.0.0.1:0".into();
    settings.database.url = database_url.to_owned();
    settings.poller.enabled = false;
    settings.notifications.worker = false;
    settings.retention.sweep = false;
    settings.rate_limits = counterfoil::config::RateLimitSettings::OFF;
    for n in 0..SERVICES {
        settings.services.insert(
            service_code(n),
            ServiceSettings {
                name: format!("Seeded service {}", (b'A' + n as u8) as char),
                account: "sandbox".into(),
                fund_code: format!("F{n:02}"),
                cost_centre: format!("C{n:02}"),
                crm_url: None,
                two_person_threshold_pence: None,
                posting: None,
            },
        );
    }
    settings
}
