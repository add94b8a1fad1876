//! Running it like production: request ids, security headers, what the logs never hold, metrics,
//! readiness, rate limits, inbound TLS and traces that cross the provider call.

use std::sync::Arc;

use counterfoil::config::{RateLimitSettings, TlsSettings};
use counterfoil::service::SystemClock;
use counterfoil::startup::Application;
use serde_json::Value;

use crate::helpers::{payment_body, test_settings, Backend, TestApp};
use crate::support::logs;

#[tokio::test]
async fn every_response_carries_a_request_id_and_security_headers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for response in [
        app.get("/v1/payments", &app.crm_key).await,
        app.get("/v1/no-such-route", &app.crm_key).await,
        app.get("/v1/payments", "cf_wrong").await,
        app.client.get(app.url("/healthz")).send().await.unwrap(),
    ] {
        let headers = response.headers();
        let id = headers["x-request-id"].to_str().unwrap();
        assert!(id.starts_with("req_") && id.len() == 36, "{id}");
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(headers[name], value, "{name} on {}", response.url());
        }
        assert!(headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'"));
        assert!(headers.contains_key("strict-transport-security"));
    }

    // A caller's own id is honoured and shows in the request's log line...
    let mine = "crm-7c1e-corr.42";
    let response = app
        .client
        .get(app.url("/v1/payments"))
        .bearer_auth(&app.crm_key)
        .header("X-Request-Id", mine)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], mine);
    assert!(logs::captured()
        .lines()
        .any(|l| l.contains(mine) && l.contains("route=/v1/payments") && l.contains("status=200")));
    // A UUID, the common form (about twenty digits), is kept in every case and form.
    for _ in 0..50 {
        let uuid = uuid::Uuid::new_v4();
        for id in [
            uuid.hyphenated().to_string(),
            uuid.simple().to_string().to_uppercase(),
        ] {
            let response = app
                .client
                .get(app.url("/healthz"))
                .header("X-Request-Id", id.as_str())
                .send()
                .await
                .unwrap();
            assert_eq!(response.headers()["x-request-id"], id.as_str());
        }
    }
    // ...unless it is not a plain token, or holds a card number.
    let pan = crate::helpers::fresh_test_pan();
    for unsafe_id in [
        pan.clone(),
        format!("crm-{pan}abc"),
        "a b<script>".to_owned(),
        "x".repeat(200),
    ] {
        let response = app
            .client
            .get(app.url("/healthz"))
            .header("X-Request-Id", unsafe_id.as_str())
            .send()
            .await
            .unwrap();
        assert!(response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_"));
    }
}

#[tokio::test]
async fn neither_a_card_number_nor_a_bearer_key_reaches_the_logs() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let pan = crate::helpers::fresh_test_pan();
    let mut body = payment_body("CRM-LOGS");
    body["description"] = Value::from(format!("Parking permit, card {pan}"));
    let refused = app.create_payment("logs-pan", &body).await;
    assert_eq!(refused.status(), 422);
    // The same number in a header and in the query string.
    let refused = app
        .client
        .get(app.url(&format!("/v1/payments?request_ref={pan}")))
        .bearer_auth(&app.crm_key)
        .header("X-Request-Id", pan.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    // A good key and a revoked-looking one, each in a request that is logged.
    let listed = app.get("/v1/payments", &app.finance_key).await;
    assert_eq!(listed.status(), 200);
    let unknown_key = "cf_abcdefghijkl_0123456789abcdefghijklmnopqrstuvwxyzABCD";
    assert_eq!(app.get("/v1/payments", unknown_key).await.status(), 401);

    let logged = logs::captured();
    assert!(
        logged.contains("card number"),
        "the refusal itself is logged"
    );
    let digits: String = pan.chars().filter(char::is_ascii_digit).collect();
    for (what, secret) in [
        ("card number", digits.as_str()),
        ("finance key", app.finance_key.as_str()),
        ("unknown key", unknown_key),
        ("a key's secret half", &app.finance_key[16..]),
    ] {
        assert!(!logged.contains(secret), "the {what} was logged");
    }
    assert!(!logged.to_lowercase().contains("authorization"));
}

#[tokio::test]
async fn metrics_count_requests_payments_webhooks_provider_calls_and_the_outbox() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let payment = app.new_payment("CRM-METRICS").await;
    app.press(payment["next_url"].as_str().unwrap(), "pay")
        .await;
    app.wait_for_status(payment["id"].as_str().unwrap(), "succeeded")
        .await;

    let text = app.metrics_page().await;
    for family in [
        "# TYPE counterfoil_http_requests counter",
        "# TYPE counterfoil_http_request_duration_seconds histogram",
        "# TYPE counterfoil_provider_call_duration_seconds histogram",
        "# TYPE counterfoil_notification_backlog gauge",
        "# TYPE counterfoil_notification_dead gauge",
        "# TYPE counterfoil_db_pool_connections gauge",
    ] {
        assert!(text.contains(family), "{family} missing from\n{text}");
    }
    let created =
        r#"counterfoil_http_requests_total{method="POST",route="/v1/payments",status="201"}"#;
    assert_eq!(app.metric(created).await, 1.0);
    let made = r#"counterfoil_payments_created_total{service="demo",provider="govuk_pay"}"#;
    assert_eq!(app.metric(made).await, 1.0);
    let calls = r#"counterfoil_provider_call_duration_seconds_count{provider="govuk_pay",operation="create_payment"}"#;
    assert_eq!(app.metric(calls).await, 1.0);
    // The simulator's webhooks arrive on their own time (seconds late when the whole suite loads
    // the machine); at least one is applied within 30 s.
    let accepted =
        r#"counterfoil_webhooks_total{provider="govuk_pay",account="sandbox",outcome="accepted"}"#;
    let mut waited = 0;
    while app.metric(accepted).await < 1.0 {
        assert!(waited < 600, "no webhook was counted as accepted");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    // The succeeded payment's notification waits for a CRM.
    assert_eq!(app.metric("counterfoil_notification_backlog").await, 1.0);
    assert_eq!(app.metric("counterfoil_db_pool_max").await, 5.0);
    assert_eq!(app.metric("counterfoil_ready").await, 1.0);

    // A provider that cannot be reached is counted as such.
    let mut body = payment_body("CRM-METRICS-2");
    body["service"] = Value::from("offline");
    assert_eq!(
        app.create_payment("metrics-offline", &body).await.status(),
        503
    );
    let unreachable = r#"counterfoil_provider_call_errors_total{provider="govuk_pay",operation="create_payment",kind="unreachable"}"#;
    assert_eq!(app.metric(unreachable).await, 1.0);
}

/// Builds and serves an application from `settings`, outside `TestApp` (for ports and TLS).
async fn serve(settings: counterfoil::config::Settings) -> Application {
    logs::install();
    let settings = settings.validate().expect("valid settings");
    Application::build_with_clock(settings, Arc::new(SystemClock))
        .await
        .expect("the app builds")
}

#[tokio::test]
async fn metrics_can_have_a_port_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&format!("sqlite://{}", dir.path().join("a.db").display()));
    settings.server.admin_bind = Some("127.0.0.1:0".into());
    let app = serve(settings).await;
    let (public, admin) = (app.address(), app.admin_address().unwrap());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let get = |address: std::net::SocketAddr, path: &str| {
        let request = client.get(format!("http://{address}{path}"));
        async move { request.send().await.unwrap() }
    };
    assert_eq!(get(public, "/metrics").await.status(), 404);
    let metrics = get(admin, "/metrics").await;
    assert_eq!(metrics.status(), 200);
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("counterfoil_ready 1"));
    assert_eq!(get(admin, "/readyz").await.status(), 200);
    assert_eq!(get(admin, "/v1/payments").await.status(), 404);
    assert_eq!(get(public, "/readyz").await.status(), 200);
}

both_stores! {
    async fn readiness_needs_the_database_and_every_migration(app) {
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        let body: Value = ready.json().await.unwrap();
        assert_eq!(body["status"], "ready");
        assert_eq!(body["migrations"], "current");

        // As if this binary were newer than the database: its last migration is not applied.
        app.execute("DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)").await;
        let not_ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(not_ready.status(), 503);
        let body: Value = not_ready.json().await.unwrap();
        assert_eq!(body["reason"], "migrations_pending");
        assert_eq!(body["pending"].as_array().unwrap().len(), 1);
        // Liveness is about the process only.
        assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
        assert_eq!(app.metric("counterfoil_ready").await, 0.0);
    }
}

async fn limited(limits: RateLimitSettings) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, move |s| s.rate_limits = limits).await
}

async fn assert_rate_limited(response: reqwest::Response) {
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
    assert_eq!(problem["status"], 429);
}

#[tokio::test]
async fn each_api_key_has_its_own_allowance() {
    // 12 a minute: a burst of 2.
    let app = limited(RateLimitSettings {
        per_key_per_minute: 12,
        per_ip_per_minute: 0,
        per_webhook_account_per_minute: 0,
    })
    .await;
    for _ in 0..2 {
        assert_eq!(app.get("/v1/payments", &app.crm_key).await.status(), 200);
    }
    assert_rate_limited(app.get("/v1/payments", &app.crm_key).await).await;
    // Another key is not held back by the first one's use.
    assert_eq!(
        app.get(
            "/v1/ledger/summary?from=2026-01-01&to=2026-01-02",
            &app.finance_key
        )
        .await
        .status(),
        200
    );
    // Naming a key without proving it uses up nobody's allowance.
    let key_id = &app.finance_key[3..15];
    for _ in 0..5 {
        let forged = format!("cf_{key_id}_{}", "x".repeat(40));
        assert_eq!(app.get("/v1/payments", &forged).await.status(), 401);
    }
    assert_eq!(
        app.get(
            "/v1/ledger/summary?from=2026-01-01&to=2026-01-02",
            &app.finance_key
        )
        .await
        .status(),
        200
    );
    let counted = r#"counterfoil_rate_limited_total{limit="key"}"#;
    assert_eq!(app.metric(counted).await, 1.0);
}

#[tokio::test]
async fn each_client_address_has_an_allowance_before_any_key_is_checked() {
    let app = limited(RateLimitSettings {
        per_ip_per_minute: 6,
        ..RateLimitSettings::OFF
    })
    .await;
    assert_eq!(app.get("/v1/payments", "cf_nonsense").await.status(), 401);
    assert_rate_limited(app.get("/v1/payments", &app.crm_key).await).await;
    // Probes are not rate limited: an orchestrator must always be able to ask.
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn each_webhook_account_has_an_allowance() {
    let app = limited(RateLimitSettings {
        per_ip_per_minute: 6,
        per_webhook_account_per_minute: 6,
        ..RateLimitSettings::OFF
    })
    .await;
    let body = crate::helpers::govuk_message(
        "rl-1",
        "nosuchpayment",
        "card_payment_started",
        "started",
        None,
    )
    .to_string();
    let first = app
        .send_webhook("sandbox", &body, Some(crate::helpers::WEBHOOK_SECRET))
        .await;
    assert_eq!(first.status(), 200);
    // The per-address API limit does not apply to webhooks (providers send from few addresses).
    assert_eq!(app.get("/v1/payments", &app.crm_key).await.status(), 200);
    assert_rate_limited(
        app.send_webhook("sandbox", &body, Some(crate::helpers::WEBHOOK_SECRET))
            .await,
    )
    .await;
    // A provider told 429 sends again later; nothing was recorded for the refused copy.
    assert_eq!(app.count_rows("webhook_receipts").await, 1);
    let other = app.send_webhook("offline", &body, None).await;
    assert_eq!(other.status(), 401, "another account has its own allowance");
}

#[tokio::test]
async fn https_is_served_from_certificate_files() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, certified.cert.pem()).unwrap();
    std::fs::write(&key_file, certified.signing_key.serialize_pem()).unwrap();

    let mut settings = test_settings(&format!("sqlite://{}", dir.path().join("a.db").display()));
    // The built-in simulator speaks plain HTTP on loopback, so it cannot share a TLS port.
    for account in settings.accounts.values_mut() {
        if account.base_url == "simulator" {
            account.base_url = "http://127.0.0.1:9".into();
        }
    }
    settings.server.tls = Some(TlsSettings {
        cert_file,
        key_file,
    });
    let app = serve(settings).await;
    let port = app.address().port();
    assert!(app.public_url().starts_with("https://"));
    tokio::spawn(app.run_until_stopped());

    let trusting = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let response = trusting
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("strict-transport-security"));
    // Plain HTTP on the TLS port gets no answer, and a client that does not trust the
    // certificate refuses it.
    let plain = reqwest::get(format!("http://localhost:{port}/healthz")).await;
    assert!(plain.map_or(true, |r| !r.status().is_success()));
    assert!(reqwest::get(format!("https://localhost:{port}/healthz"))
        .await
        .is_err());
}

#[tokio::test]
async fn one_trace_spans_the_request_the_store_and_the_provider_call() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let trace_id = format!("{:032x}", rand::random::<u128>() | 1);
    let response = app
        .client
        .post(app.url("/v1/payments"))
        .bearer_auth(&app.crm_key)
        .header("Idempotency-Key", "trace-1")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&payment_body("CRM-TRACE"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    // A span is exported when it closes, which may be a moment after the answer went out.
    let expected = [
        "POST /v1/payments",
        "govuk_pay create_payment",
        "POST /sandbox/govuk-pay/v1/payments",
    ];
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = logs::finished_spans()
            .into_iter()
            .filter(|s| s.span_context.trace_id().to_string() == trace_id)
            .collect();
        if expected
            .iter()
            .all(|name| spans.iter().any(|s| s.name == *name))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let names: Vec<String> = spans.iter().map(|s| s.name.to_string()).collect();
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {names:?}"))
    };
    let handler = find("POST /v1/payments");
    assert_eq!(
        handler.parent_span_id.to_string(),
        "00f067aa0ba902b7",
        "the caller's span is the parent"
    );
    let call = find("govuk_pay create_payment");
    assert_eq!(call.parent_span_id, handler.span_context.span_id());
    // The provider (here the simulator, over real HTTP) received our traceparent: its own
    // request span is a child of our call, in the same trace.
    let provider_side = find("POST /sandbox/govuk-pay/v1/payments");
    assert_eq!(provider_side.parent_span_id, call.span_context.span_id());
    assert!(
        spans.iter().any(|s| s.name.starts_with("store ")),
        "{names:?}"
    );
}

/// The real binary, told an OTLP endpoint, exports its spans there over HTTP (protobuf), flushing
/// them on SIGTERM; and a quiet RUST_LOG (the test server runs at `warn`) does not cost traces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_http() {
    use crate::support::crm::Crm;
    use crate::support::process::{write_config_with, ServerProcess};
    let collector = Crm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with(
        dir.path(),
        &format!("sqlite://{}", dir.path().join("o.db").display()),
        &format!("[telemetry]\notlp_endpoint = \"{}\"\n", collector.url),
    );
    let mut server = ServerProcess::start(&config).await;
    let trace_id: u128 = rand::random::<u128>() | 1;
    let response = reqwest::Client::new()
        .get(format!("{}/v1/payments", server.address))
        .header(
            "traceparent",
            format!("00-{trace_id:032x}-00f067aa0ba902b7-01"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(server
        .terminate(std::time::Duration::from_secs(10))
        .is_some_and(|s| s.success()));
    let exported = collector.received();
    assert!(!exported.is_empty(), "nothing reached the collector");
    // OTLP's protobuf carries trace ids as their 16 raw bytes.
    let id = trace_id.to_be_bytes();
    assert!(
        exported.iter().any(|r| r.body.windows(16).any(|w| w == id)),
        "the request's trace was not exported"
    );
}

/// A database restarted, or connections cut by a proxy, while the service sat idle costs no
/// request: a connection idle for over a second is checked before it is handed out and a dead one
/// replaced. (One used within the last second is not checked: the round trip saved before every
/// statement; see `store::pool`.)
#[tokio::test]
async fn connections_cut_while_the_service_sat_idle_are_replaced_unseen() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let list = || async { app.get("/v1/payments", &app.crm_key).await.status() };
    // Several at once, so the pool holds several connections.
    let warm = || async {
        let statuses = futures_util::future::join_all((0..6).map(|_| list())).await;
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    };
    let cut = || {
        app.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'counterfoil'",
        )
    };
    warm().await;
    cut().await;
    // At once, a connection used a moment ago is handed out unchecked: the request it serves is
    // refused as worth retrying (503), never as a fault (500); each cut one is then dropped (more
    // requests than the pool has connections, so none is left).
    for _ in 0..20 {
        let status = list().await;
        assert!(status == 200 || status == 503, "{status}");
    }
    warm().await;
    cut().await;
    tokio::time::sleep(
        counterfoil::store::pool::PING_WHEN_IDLE_FOR + std::time::Duration::from_millis(300),
    )
    .await;
    for _ in 0..8 {
        assert_eq!(list().await, 200, "a cut connection was handed out");
    }
}
