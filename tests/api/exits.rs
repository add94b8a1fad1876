//! The promise kept at every exit. Card numbers in generated disguises (digits of other scripts,
//! any separators, digits glued on either side, percent-escapes, and their combinations) are sent
//! through every entry point: body fields, headers, the path, query names and values, signed
//! webhook payloads. Then every sink is searched for each number: every text column of every
//! table, the logs, the exported spans, what reached the provider's simulator and what reached the
//! CRM. The search is the suite's own (support/disguises.rs: it reads each digit's value) and looks
//! for the exact digits planted in this run, so it cannot match by chance.
//!
//! The door refuses most of these early; each exit's own guard is proved by a drill that reaches
//! the exit directly, so removing any one guard turns its drill red.

use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::helpers::{govuk_message, payment_body, Backend, TestApp, WEBHOOK_SECRET};
use crate::support::crm::Crm;
use crate::support::disguises::*;
use crate::support::logs;
use counterfoil::config::Settings;
use counterfoil::store::StoreError;

fn tell_crm(crm: &Crm) -> impl FnOnce(&mut Settings) + '_ {
    move |settings| {
        settings.notifications.default_url = Some(crm.url.clone());
        settings.notifications.secrets = vec![counterfoil::config::SecretSource::Value(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        )];
    }
}

/// A request with the disguise in one place, and the place's name.
async fn send_one(
    app: &TestApp,
    rng: &mut StdRng,
    entry: usize,
    payment: &Value,
) -> (String, Disguise) {
    let provider_id = payment["provider_payment_id"].as_str().unwrap().to_owned();
    let id = payment["id"].as_str().unwrap().to_owned();
    let c = &app.client;
    // Header values are visible ASCII.
    let ascii = matches!(entry, 8..=12);
    let d = disguise(rng, ascii);
    let escaped: String = url::form_urlencoded::byte_serialize(d.text.as_bytes()).collect();
    let create = |body: Value, key: String| {
        c.post(app.url("/v1/payments"))
            .bearer_auth(&app.crm_key)
            .header("Idempotency-Key", key)
            .json(&body)
    };
    let fresh_key = || format!("exit-{}", rng_key());
    let mut body = payment_body(&format!("CRM-EXIT-{entry}"));
    let (name, request) = match entry {
        0 => {
            body["description"] = json!(format!("Permit {}", d.text));
            ("body description", create(body, fresh_key()))
        }
        1 => {
            body["request_ref"] = json!(d.text);
            ("body request_ref", create(body, fresh_key()))
        }
        2 => {
            body["metadata"] = json!({"note": d.text});
            ("body metadata value", create(body, fresh_key()))
        }
        3 => {
            body["metadata"] = json!({d.text.clone(): "x"});
            ("body metadata key", create(body, fresh_key()))
        }
        4 => {
            body["email"] = json!(format!("r{}@example.org", d.text));
            ("body email", create(body, fresh_key()))
        }
        5 => {
            body["return_url"] = json!(format!("https://{}.example.org/done", d.text));
            ("body return_url host", create(body, fresh_key()))
        }
        6 => {
            let escaped_host: String = d.text.bytes().map(|b| format!("%{b:02X}")).collect();
            body["return_url"] = json!(format!("https://{escaped_host}.example.org/done"));
            (
                "body return_url host, percent-escaped",
                create(body, fresh_key()),
            )
        }
        7 => {
            body["return_url"] = json!(format!(
                "https://myaccount.example.gov.uk/{escaped}?r={escaped}"
            ));
            ("body return_url path and query", create(body, fresh_key()))
        }
        8 => (
            "header Idempotency-Key",
            create(payment_body("CRM-EXIT-8"), d.text.clone()),
        ),
        9 => (
            "header X-Request-Id",
            create(payment_body("CRM-EXIT-9"), fresh_key()).header("X-Request-Id", d.text.clone()),
        ),
        10 => {
            // The trace id is 32 hex digits: the number, padded.
            let hex: String = d
                .pan
                .chars()
                .chain(std::iter::repeat('0'))
                .take(32)
                .collect();
            (
                "header traceparent",
                create(payment_body("CRM-EXIT-10"), fresh_key())
                    .header("traceparent", format!("00-{hex}-00f067aa0ba902b7-01")),
            )
        }
        11 => (
            "header tracestate",
            create(payment_body("CRM-EXIT-11"), fresh_key())
                .header(
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                )
                .header(
                    "tracestate",
                    format!("vendor={}", d.text.replace([' ', ',', '='], "-")),
                ),
        ),
        12 => (
            "header baggage",
            create(payment_body("CRM-EXIT-12"), fresh_key()).header(
                "baggage",
                format!("card={}", d.text.replace([' ', ',', ';'], "-")),
            ),
        ),
        13 => (
            "path",
            c.get(app.url(&format!("/v1/payments/{escaped}")))
                .bearer_auth(&app.finance_key),
        ),
        14 => (
            "path, events",
            c.get(app.url(&format!("/v1/payments/{escaped}/events")))
                .bearer_auth(&app.finance_key),
        ),
        15 => (
            "query name",
            c.get(app.url(&format!("/v1/payments?{escaped}=1")))
                .bearer_auth(&app.finance_key),
        ),
        16 => (
            "query value",
            c.get(app.url(&format!("/v1/payments?request_ref={escaped}")))
                .bearer_auth(&app.finance_key),
        ),
        17 => (
            "ledger query value",
            c.get(app.url(&format!("/v1/ledger?from={escaped}&to=2026-12-01")))
                .bearer_auth(&app.finance_key),
        ),
        18 => (
            "refund reason",
            c.post(app.url(&format!("/v1/payments/{id}/refunds")))
                .bearer_auth(&app.finance_key)
                .header("Idempotency-Key", fresh_key())
                .json(&json!({"amount": 1, "reason": format!("Asked by {}", d.text)})),
        ),
        19 => (
            "erasure request_ref",
            c.post(app.url("/v1/data-protection/erasures"))
                .bearer_auth(&app.admin_key)
                .json(&json!({"request_ref": d.text})),
        ),
        20..=23 => {
            let mut message = govuk_message(
                &format!("exit-{}", rng_key()),
                &provider_id,
                "card_payment_captured",
                "success",
                None,
            );
            let name = match entry {
                20 => {
                    message["webhook_message_id"] = json!(d.text);
                    "webhook message id"
                }
                21 => {
                    message["resource_id"] = json!(d.text);
                    message["resource"]["payment_id"] = json!(d.text);
                    "webhook payment id"
                }
                22 => {
                    message["event_type"] = json!(d.text);
                    "webhook event type"
                }
                _ => {
                    message["resource"]["state"] =
                        json!({"status": "failed", "finished": true, "code": d.text});
                    message["resource"]["reference"] = json!(d.text);
                    message["resource"]["card_details"] =
                        json!({"card_number": d.text, "cardholder_name": "A N Other"});
                    "webhook failure code, reference and card details"
                }
            };
            let body = message.to_string();
            let signature =
                counterfoil::providers::govuk_pay::sign_webhook(WEBHOOK_SECRET, body.as_bytes());
            (
                name,
                c.post(app.url("/v1/webhooks/govuk-pay/sandbox"))
                    .header("Content-Type", "application/json")
                    .header("Pay-Signature", signature)
                    .body(body),
            )
        }
        _ => unreachable!(),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    assert!(
        status < 500,
        "{name}: {status} {}",
        response.text().await.unwrap_or_default()
    );
    (format!("{name} -> {status}"), d)
}

/// A fresh idempotency key or message id.
fn rng_key() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

const ENTRIES: usize = 24;
/// Each entry point gets this many disguises per store.
const ROUNDS: usize = 3;

async fn every_disguise_at_every_entry_stays_out_of_every_sink(backend: Backend) {
    let crm = Crm::start().await;
    let app = TestApp::spawn_with(backend, tell_crm(&crm)).await;
    let log_mark = logs::mark();
    let seed: u64 = rand::thread_rng().gen();
    let mut rng = StdRng::seed_from_u64(seed);
    // A payment that succeeded, for refunds and webhooks to name.
    let paid = app.new_payment("CRM-EXIT-PAID").await;
    app.press(paid["next_url"].as_str().unwrap(), "pay").await;
    let paid = app
        .wait_for_status(paid["id"].as_str().unwrap(), "succeeded")
        .await;

    let mut planted = Vec::new();
    for _ in 0..ROUNDS {
        for entry in 0..ENTRIES {
            planted.push(send_one(&app, &mut rng, entry, &paid).await);
        }
    }
    // Whatever was accepted goes on to the CRM.
    app.services.notifications.run_once().await.unwrap();
    assert!(!crm.received().is_empty(), "the CRM heard of the payment");

    let sinks = Sinks::collect(&app, &crm, log_mark).await;
    for place in [
        "log",
        "span",
        "govuk-pay simulator",
        "CRM",
        "metrics",
        "table payments.description",
    ] {
        sinks.assert_sees(place);
    }
    // The search finds what it looks for: the paid payment's reference is everywhere.
    assert!(sinks
        .0
        .iter()
        .any(|(p, t)| p == "CRM" && t.contains("CRM-EXIT-PAID")));
    eprintln!("disguise seed {seed}");
    sinks.assert_free_of(&planted);
}

each_backend! {
    async fn every_disguise_at_every_entry_stays_out_of_every_sink_on(backend) {
        every_disguise_at_every_entry_stays_out_of_every_sink(backend).await;
    }
}

// ---- Drills: each exit's guard reached directly, past the door. ----

fn payment_with(description: &str) -> counterfoil::domain::Payment {
    let mut payment = crate::store_conformance::payment(Utc::now(), "CRM-DRILL");
    payment.description = description.into();
    payment
}

both_stores! {
    async fn the_store_writes_no_card_number_and_the_audit_trail_keeps_the_entry_without_it(app) {
        use counterfoil::store::{AuditEntry, IdempotencyClaim};
        let log_mark = logs::mark();
        let mut rng = StdRng::seed_from_u64(rand::thread_rng().gen());
        let d = disguise(&mut rng, false);
        let now = Utc::now();
        let claim = IdempotencyClaim {
            principal: "drill".into(),
            key: counterfoil::domain::IdempotencyKey::parse("drill-1").unwrap(),
            route: "POST /v1/payments".into(),
            fingerprint: "f".into(),
            now,
            lease_until: now + chrono::Duration::seconds(60),
            expires_at: now + chrono::Duration::hours(1),
        };
        let audit = |subject: &str| AuditEntry {
            at: now,
            actor_key_id: "drill".into(),
            actor_label: "drill".into(),
            action: "payment.create".into(),
            subject: subject.into(),
            detail: json!({"note": d.text}),
        };
        let refused = app
            .services
            .store
            .claim_and_insert_payment(&claim, &payment_with(&format!("Permit {}", d.text)), &audit("pay"))
            .await;
        assert!(matches!(refused, Err(StoreError::CardData)), "{refused:?}");
        assert_eq!(app.count_rows("payments").await, 0, "nothing of the unit of work was written");
        assert_eq!(app.count_rows("idempotency_keys").await, 0);

        // The audit trail may not lose an action: the entry is kept, the number is not.
        let before = app.count_rows("audit_log").await;
        app.services.store.append_audit(&audit(&d.text)).await.expect("the entry is written");
        assert_eq!(app.count_rows("audit_log").await, before + 1);
        let crm = Crm::start().await;
        Sinks::collect(&app, &crm, log_mark).await.assert_free_of(&[("store and audit drill".into(), d)]);
        assert!(app.services.audit.verify().await.unwrap().intact());
    }
}

#[tokio::test]
async fn a_card_number_in_a_log_field_or_span_is_removed_on_the_way_out() {
    logs::install();
    let log_mark = logs::mark();
    let mut rng = StdRng::seed_from_u64(rand::thread_rng().gen());
    let planted: Vec<(String, Disguise)> = (0..20)
        .map(|i| (format!("drill {i}"), disguise(&mut rng, false)))
        .collect();
    // A line with nothing to remove, to show capture works: most drill lines are replaced whole
    // (a number behind Debug's escapes takes its line), and now and then all twenty are.
    tracing::info!(target: "counterfoil::drill", "log drill begins");
    for (_, d) in &planted {
        // As Display and as Debug (which escapes what it cannot print), in an event and a span.
        tracing::info!(target: "counterfoil::drill", note = %d.text, debug = ?d.text, "log drill");
        let span = tracing::info_span!(target: "counterfoil::drill", "span drill", note = %d.text);
        span.in_scope(|| tracing::info!(target: "counterfoil::drill", "inside"));
        drop(span);
    }
    let logged = logs::captured_since(log_mark);
    assert!(logged.contains("log drill begins"), "log capture works");
    let lines: Vec<[String; 4]> = logged.lines().map(readings).collect();
    let spans: Vec<[String; 4]> = logs::spans_since(log_mark)
        .iter()
        .map(|span| {
            let text: Vec<String> = std::iter::once(span.name.to_string())
                .chain(span.attributes.iter().map(|kv| kv.value.to_string()))
                .collect();
            readings(&text.join(" "))
        })
        .collect();
    for (what, d) in &planted {
        let found =
            |read: &[[String; 4]]| read.iter().flatten().any(|digits| digits.contains(&d.pan));
        assert!(!found(&lines), "{what}: {:?} was logged", d.text);
        assert!(!found(&spans), "{what}: {:?} was exported", d.text);
    }
    assert!(
        logs::finished_spans()
            .iter()
            .any(|s| s.name == "span drill"),
        "span capture works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_the_provider_or_the_crm_holding_a_card_number_never_leaves() {
    use counterfoil::providers::govuk_pay::GovukPayClient;
    use counterfoil::providers::{CreateSession, PaymentProvider, ProviderError};
    let app = TestApp::spawn(Backend::Sqlite).await;
    let log_mark = logs::mark();
    let crm = Crm::start().await;
    let mut rng = StdRng::seed_from_u64(rand::thread_rng().gen());
    let provider = GovukPayClient::new(
        &app.url("/sandbox/govuk-pay"),
        "api_test_counterfoil_simulator_key".to_owned().into(),
        vec![],
        std::time::Duration::from_secs(2),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let mut planted = Vec::new();
    for _ in 0..5 {
        let d = disguise(&mut rng, false);
        let id = counterfoil::domain::PaymentId::new();
        let metadata = Default::default();
        let result = provider
            .create_payment(&CreateSession {
                payment_id: &id,
                reference: "CRM-DRILL",
                description: &format!("Permit {}", d.text),
                amount: 100,
                return_url: "https://council.example.gov.uk/done",
                email: None,
                metadata: &metadata,
            })
            .await;
        assert_eq!(result.unwrap_err(), ProviderError::CardData);
        planted.push(("provider drill".to_owned(), d));

        let d = disguise(&mut rng, false);
        let outbound = counterfoil::outbound::OutboundClient::new(
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        let sent = outbound
            .send(
                outbound
                    .request(reqwest::Method::POST, &crm.url)
                    .json(&json!({"data": {"note": d.text}})),
            )
            .await;
        assert!(matches!(
            sent,
            Err(counterfoil::outbound::OutboundError::CardData)
        ));
        planted.push(("CRM drill".to_owned(), d));
    }
    // A clean request goes through, so the journal is known to record.
    let id = counterfoil::domain::PaymentId::new();
    let metadata = Default::default();
    provider
        .create_payment(&CreateSession {
            payment_id: &id,
            reference: "CRM-DRILL",
            description: "Permit",
            amount: 100,
            return_url: "https://council.example.gov.uk/done",
            email: None,
            metadata: &metadata,
        })
        .await
        .unwrap();
    let sinks = Sinks::collect(&app, &crm, log_mark).await;
    sinks.assert_sees("govuk-pay simulator");
    sinks.assert_free_of(&planted);
    assert!(crm.received().is_empty());
}

#[test]
fn the_search_reads_every_disguise() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..2_000 {
        let d = disguise(&mut rng, false);
        assert!(holds(&d.text, &d.pan), "{:?}", d.text);
        let escaped: String = url::form_urlencoded::byte_serialize(d.text.as_bytes()).collect();
        assert!(holds(&escaped, &d.pan));
        assert!(holds(&serde_json::to_string(&d.text).unwrap(), &d.pan));
        assert!(holds(&format!("{:?}", d.text), &d.pan));
        // And the detector under test catches every one of them.
        assert!(
            counterfoil::domain::card_guard::contains_card_number(&d.text),
            "{:?}",
            d.text
        );
    }
}
