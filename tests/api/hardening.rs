//! What a security officer found beyond card data, each with the test that failed before its fix:
//! webhook abuse (unsigned junk, slow bodies, floods of bodies), values echoed in errors,
//! forwarded addresses, keys in URLs.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{govuk_message, Backend, TestApp, WEBHOOK_SECRET};
use crate::support::logs;
use counterfoil::config::{RateLimitSettings, Settings};

/// Webhooks behind one trusted proxy, so a test can speak for several senders.
fn behind_a_proxy(per_minute: u32) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.server.trusted_proxies = 1;
        s.rate_limits = RateLimitSettings {
            per_ip_per_minute: per_minute,
            per_webhook_account_per_minute: per_minute,
            ..RateLimitSettings::OFF
        };
    }
}

async fn webhook_from(app: &TestApp, sender: &str, body: &str, signed: bool) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/v1/webhooks/govuk-pay/sandbox"))
        .header("Content-Type", "application/json")
        .header("X-Forwarded-For", sender)
        .body(body.to_owned());
    if signed {
        request = request.header(
            "Pay-Signature",
            counterfoil::providers::govuk_pay::sign_webhook(WEBHOOK_SECRET, body.as_bytes()),
        );
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_junk_is_charged_to_its_sender_not_to_the_providers_allowance() {
    // Six a minute: a burst of one.
    let app = TestApp::spawn_with(Backend::Sqlite, behind_a_proxy(6)).await;
    let body = govuk_message(
        "junk-1",
        "nosuchpayment",
        "card_payment_started",
        "started",
        None,
    )
    .to_string();
    // The junk sender spends its own allowance, then is refused before its body is read.
    assert_eq!(
        webhook_from(&app, "198.51.100.9", &body, false)
            .await
            .status(),
        401
    );
    assert_eq!(
        webhook_from(&app, "198.51.100.9", &body, false)
            .await
            .status(),
        401
    );
    for _ in 0..3 {
        let refused = webhook_from(&app, "198.51.100.9", &body, false).await;
        assert_eq!(refused.status(), 429);
        assert!(refused.headers().contains_key("retry-after"));
    }
    // The provider, from its own address, still has the account's whole allowance.
    let real = webhook_from(&app, "203.0.113.7", &body, true).await;
    assert_eq!(real.status(), 200);
    // And a second forwarded line cannot make the junk sender someone else.
    let spoofed = app
        .client
        .post(app.url("/v1/webhooks/govuk-pay/sandbox"))
        .header("Content-Type", "application/json")
        .header("X-Forwarded-For", "203.0.113.7")
        .header("X-Forwarded-For", "198.51.100.9")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        spoofed.status(),
        429,
        "the last line counts, as the proxy added it"
    );
}

/// Opens a raw connection and starts a webhook whose body never finishes arriving.
async fn trickle(app: &TestApp) -> tokio::net::TcpStream {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            b"POST /v1/webhooks/govuk-pay/sandbox HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/json\r\nPay-Signature: 00\r\nContent-Length: 1000\r\n\r\n{\"a\":",
        )
        .await
        .unwrap();
    stream
}

async fn answer(stream: &mut tokio::net::TcpStream) -> String {
    let mut buffer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
        .await
        .expect("an answer in time")
        .unwrap();
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_in_is_cut_off_and_bodies_read_at_once_are_capped() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.server.webhook_body_deadline_seconds = 1;
        s.server.webhook_bodies_at_once = 2;
    })
    .await;
    let mut first = trickle(&app).await;
    let mut second = trickle(&app).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Both places are taken: a third sender is told to come back, at once.
    let body = govuk_message(
        "cap-1",
        "nosuchpayment",
        "card_payment_started",
        "started",
        None,
    )
    .to_string();
    let busy = webhook_from(&app, "127.0.0.1", &body, true).await;
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    assert_eq!(busy.json::<Value>().await.unwrap()["code"], "busy");
    // The slow ones are cut off at the deadline, and their places freed.
    for stream in [&mut first, &mut second] {
        let answered = answer(stream).await;
        assert!(answered.starts_with("HTTP/1.1 408"), "{answered}");
        assert!(answered.contains("body_timeout"), "{answered}");
    }
    assert_eq!(
        webhook_from(&app, "127.0.0.1", &body, true).await.status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_message_with_a_wrongly_typed_field_is_named_never_echoed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut message = govuk_message(
        "typed-1",
        "nosuchpayment",
        "card_payment_started",
        "started",
        None,
    );
    message["resource_id"] = json!(918273645546_u64);
    message["resource"]["state"]["status"] = json!(["918273645547"]);
    let body = message.to_string();
    let response = webhook_from(&app, "127.0.0.1", &body, true).await;
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("field `resource"),
        "the field is named: {detail}"
    );
    assert!(!problem.to_string().contains("91827364554"), "{problem}");
    assert!(!logs::captured().contains("91827364554"), "nor logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_anywhere_in_a_url_is_refused_and_not_audited() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for path in [
        format!("/v1/payments/{}", app.finance_key),
        format!("/v1/payments/{}/events", &app.finance_key[..20]),
        format!("/v1/payments?{}=1", app.finance_key),
    ] {
        let response = app.get(&path, &app.finance_key).await;
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["code"],
            "api_key_in_url"
        );
    }
    let secret_part = &app.finance_key[16..];
    assert!(app.columns_containing(secret_part).await.is_empty());
    assert!(app
        .columns_containing(&app.finance_key[..20])
        .await
        .is_empty());
}

/// Values a careless or hostile caller might put in any query parameter.
const NASTY: &[&str] = &[
    "",
    "0",
    "-1",
    "99999999999999999999999",
    "262143-12-31",
    "+262142-12-31",
    "+262143-12-31T23:59:59Z",
    "-262143-01-01T00:00:00Z",
    "9999-12-31",
    "9999-12-31T23:59:59.999999999+23:59",
    "0000-01-01",
    "2026-02-30",
    "2026-13-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "NaN",
    "%00",
    "\u{feff}2026-01-01",
    "csv",
    "json",
    "xml",
    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
];

/// Every query parameter of every route, with every nasty value: never a 5xx, never a dropped
/// connection, always problem+json when refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_query_parameter_value_makes_any_route_fail() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let p = app.new_payment("CRM-FUZZ").await;
    let id = p["id"].as_str().unwrap();
    let mut tried = 0;
    for (method, path) in counterfoil::http::API_ROUTES {
        let path = path
            .replace("{id}", id)
            .replace("{provider}", "govuk-pay")
            .replace("{account}", "sandbox");
        for name in counterfoil::http::QUERY_PARAMETERS {
            for value in NASTY {
                let escaped: String =
                    url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
                let url = app.url(&format!("/v1{path}?{name}={escaped}"));
                // 408 is the server's transport saying the request head did not arrive in time
                // (a starved machine running the whole suite), not a route's answer: ask again.
                let mut response = None;
                for _ in 0..3 {
                    let request = match *method {
                        "get" => app.client.get(url.clone()),
                        _ => app
                            .client
                            .post(url.clone())
                            .header("Idempotency-Key", format!("fuzz-{tried}"))
                            .json(&json!({})),
                    };
                    let answer = request
                        .bearer_auth(&app.admin_key)
                        .send()
                        .await
                        .unwrap_or_else(|e| {
                            panic!("{method} {path}?{name}={value:?}: no answer: {e}")
                        });
                    if answer.status() != 408 {
                        response = Some(answer);
                        break;
                    }
                }
                let response = response.expect("an answer other than 408 in three tries");
                let status = response.status().as_u16();
                assert!(status < 500, "{method} {path}?{name}={value:?}: {status}");
                if status >= 400 {
                    let kind = response
                        .headers()
                        .get("content-type")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_else(|| {
                            panic!(
                                "{method} {path}?{name}={value:?}: {status} with no content type"
                            )
                        });
                    assert_eq!(
                        kind, "application/problem+json",
                        "{method} {path}?{name}={value:?}"
                    );
                }
                tried += 1;
            }
        }
    }
    // Pairs that bound a period, each end the same nasty value.
    for (path, from, to) in [
        ("/ledger", "from", "to"),
        ("/ledger/summary", "from", "to"),
        ("/audit", "from", "to"),
        ("/payments", "created_from", "created_to"),
    ] {
        for value in NASTY {
            let escaped: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
            let response = app
                .get(
                    &format!("/v1{path}?{from}={escaped}&{to}={escaped}"),
                    &app.admin_key,
                )
                .await;
            assert!(
                response.status().as_u16() < 500,
                "{path} {value:?}: {}",
                response.status()
            );
            tried += 1;
        }
        for (a, b) in [
            ("2026-01-01", "262143-12-31"),
            ("2026-01-01T00:00:00Z", "+262143-12-31T00:00:00Z"),
            ("1000-01-01", "9999-12-31"),
        ] {
            let response = app
                .get(&format!("/v1{path}?{from}={a}&{to}={b}"), &app.admin_key)
                .await;
            assert!(
                response.status().as_u16() < 500,
                "{path} {a}..{b}: {}",
                response.status()
            );
        }
    }
    let body = json!({"account": "sandbox", "from": "2026-01-01T00:00:00Z", "to": "+262143-12-31T00:00:00Z"});
    let response = app
        .client
        .post(app.url("/v1/reconciliations"))
        .bearer_auth(&app.admin_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        422,
        "a period beyond any date a council uses"
    );
    assert!(tried > 1000, "{tried}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_on_our_side_answers_problem_json_and_is_audited_with_its_caller() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let p = app.new_payment("CRM-FAILS").await;
    let id = p["id"].as_str().unwrap();
    app.execute(&format!(
        "UPDATE payments SET metadata = 'not json' WHERE id = '{id}'"
    ))
    .await;
    let response = app.get(&format!("/v1/payments/{id}"), &app.crm_key).await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let failed: Vec<_> = app
        .services
        .store
        .list_audit(None, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "api.failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(app.crm_key.contains(&failed[0].actor_key_id));
    assert_eq!(failed[0].detail["route"], "/v1/payments/{id}");
    assert_eq!(failed[0].subject, id);
}

/// In production `/metrics` is served on the admin port only: without one, not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_production_metrics_are_never_on_the_public_port() {
    for admin in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("counterfoil.toml");
        let admin_bind = if admin {
            "admin_bind = \"127.0.0.1:0\"\n"
        } else {
            ""
        };
        std::fs::write(
            &file,
            format!(
                "environment = \"production\"\n[server]\nbind = \"127.0.0.1:0\"\n{admin_bind}\
                 [database]\nurl = \"sqlite://{}\"\nallow_sqlite_in_production = true\n\
                 [poller]\nenabled = false\n\
                 [accounts.main]\nkind = \"govuk_pay\"\nbase_url = \"https://127.0.0.1:9\"\n\
                 api_key = {{ env = \"PATH\" }}\n\
                 [services.demo]\nname = \"Demo\"\naccount = \"main\"\nfund_code = \"F1\"\ncost_centre = \"C1\"\n\
                 [console]\nenabled = false\n",
                dir.path().join("p.db").display()
            ),
        )
        .unwrap();
        let settings = Settings::load(Some(&file)).unwrap().validate().unwrap();
        let app = counterfoil::startup::Application::build(settings)
            .await
            .unwrap();
        let public = format!("http://{}", app.address());
        let admin_address = app.admin_address();
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::new();
        let on_public = client
            .get(format!("{public}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(on_public.status(), 404, "admin port: {admin}");
        assert_eq!(
            client
                .get(format!("{public}/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        if let Some(address) = admin_address {
            let on_admin = client
                .get(format!("http://{address}/metrics"))
                .send()
                .await
                .unwrap();
            assert_eq!(on_admin.status(), 200);
        }
    }
}

/// The access audit records the route's pattern and the names of parameters a route reads; a
/// path or a parameter name is free text a caller chose, and is never recorded as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_audit_records_patterns_not_what_a_caller_wrote() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let response = app
        .get(
            "/v1/payments?Ottoline-Quillfeather=1&status=created",
            &app.finance_key,
        )
        .await;
    assert!(response.status().is_client_error() || response.status().is_success());
    let response = app
        .get("/v1/payments/Wilberforce.Tumblesprout", &app.finance_key)
        .await;
    assert_eq!(response.status(), 404);
    assert!(
        app.columns_containing("Quillfeather").await.is_empty(),
        "a parameter name"
    );
    assert!(
        app.columns_containing("Tumblesprout").await.is_empty(),
        "a path segment"
    );
    let entries = app
        .services
        .store
        .list_audit(None, None, 1000)
        .await
        .unwrap();
    let listed = entries
        .iter()
        .find(|e| e.detail["route"] == "/v1/payments")
        .expect("the listing was audited");
    assert_eq!(listed.detail["query"], json!(["other", "status"]));
    let read = entries
        .iter()
        .find(|e| e.detail["route"] == "/v1/payments/{id}")
        .expect("the read was audited");
    assert_eq!(read.subject, "-");
}
