//! The proof that card data is never kept: webhooks carrying distinctive card details, an email
//! and metadata are processed, then every text column of every table and every log line are
//! searched for each value. `pci-scan` is clean afterwards, and finds a card number planted
//! straight into a table.

use rand::Rng;
use serde_json::{json, Value};

use crate::helpers::{contains_standalone, govuk_message, without_timing, TestApp, WEBHOOK_SECRET};
use crate::support::logs;
use counterfoil::service::compliance::pci_scan;

/// Values made up for one test run, so finding one anywhere can only mean it was kept.
struct Distinctive {
    cardholder: String,
    first_six: String,
    last_four: String,
    expiry: String,
    address_line: String,
    postcode: String,
    email: String,
    metadata_value: String,
}

impl Distinctive {
    fn new() -> Self {
        let mut rng = rand::thread_rng();
        let tag: String = (0..8)
            .map(|_| (b'a' + rng.gen_range(0..26)) as char)
            .collect();
        Self {
            cardholder: format!("Ottoline Quillfeather-{tag}"),
            first_six: format!("4{:05}", rng.gen_range(0..100_000)),
            // Not a year, nor anything a log line's numbers are likely to be.
            last_four: format!("{}", rng.gen_range(5_000..10_000)),
            expiry: format!("{:02}/{}", rng.gen_range(1..13), rng.gen_range(31..40)),
            address_line: format!("{} Quillfeather Crescent {tag}", rng.gen_range(100..999)),
            postcode: format!("ZX{} {}QY", rng.gen_range(10..99), rng.gen_range(1..9)),
            email: format!("ottoline.{tag}@quillfeather.example"),
            metadata_value: format!("quillfeather-meta-{tag}"),
        }
    }

    fn card_details(&self) -> Value {
        json!({
            "last_digits_card_number": self.last_four,
            "first_digits_card_number": self.first_six,
            "cardholder_name": self.cardholder,
            "expiry_date": self.expiry,
            "billing_address": {"line1": self.address_line, "line2": "Flat 9", "postcode": self.postcode,
                                "city": "Quillfeather", "country": "GB"},
            "card_brand": "Visa",
            "card_type": "debit"
        })
    }

    fn all(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("cardholder name", &self.cardholder),
            ("first six", &self.first_six),
            ("last four", &self.last_four),
            ("expiry", &self.expiry),
            ("address line", &self.address_line),
            ("postcode", &self.postcode),
            ("email", &self.email),
            ("metadata", &self.metadata_value),
        ]
    }

    /// A hand-made message for `provider_id` whose resource carries everything.
    fn message(
        &self,
        message_id: &str,
        provider_id: &str,
        event_type: &str,
        status: &str,
    ) -> Value {
        let mut message = govuk_message(message_id, provider_id, event_type, status, None);
        message["resource"]["card_details"] = self.card_details();
        message["resource"]["email"] = json!(self.email);
        message["resource"]["metadata"] = json!({"ledger_hint": self.metadata_value});
        message["resource"]["refund_summary"] =
            json!({"status": "available", "amount_available": 2500, "amount_submitted": 0});
        message
    }
}

async fn wait_for_deliveries(app: &TestApp, expected: usize) {
    for _ in 0..200 {
        let deliveries = app.control("/sandbox/govuk-pay/_control/webhooks").await;
        let delivered = deliveries["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["last_status"] == 200)
            .count();
        if delivered >= expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the simulator's webhooks were not all delivered");
}

both_stores! {
    async fn no_card_data_from_any_webhook_is_kept_anywhere(app) {
        // Only this test's time in the log: fewer unrelated numbers to match short values.
        let log_mark = logs::mark();
        let values = Distinctive::new();
        // The simulated payer "enters" these details; the simulator's webhooks carry them.
        app.simulator_webhooks(json!({"card_details": values.card_details(), "email": values.email})).await;
        let p = app.new_payment("CRM-PROOF").await;
        let id = p["id"].as_str().unwrap();
        let provider_id = p["provider_payment_id"].as_str().unwrap();
        app.press(p["next_url"].as_str().unwrap(), "pay").await;
        // started, succeeded, captured.
        wait_for_deliveries(&app, 3).await;
        app.wait_for_status(id, "succeeded").await;

        // The same data in hand-made messages: one for our payment (with metadata), one orphan,
        // one of a type we do not know.
        for (message_id, provider, event) in [
            ("proof-refunded", provider_id, "card_payment_refunded"),
            ("proof-orphan", "notourpayment0000000000zzz", "card_payment_succeeded"),
            ("proof-unknown", provider_id, "card_payment_disputed"),
        ] {
            let body = values.message(message_id, provider, event, "success").to_string();
            let response = app.send_webhook("sandbox", &body, Some(WEBHOOK_SECRET)).await;
            assert_eq!(response.status(), 200, "{event}");
        }
        assert_eq!(app.count_rows("webhook_receipts").await, 6, "every message was recorded");

        let logged = without_timing(&logs::captured_since(log_mark));
        assert!(logged.contains("webhook"), "log capture works");
        for (what, value) in values.all() {
            let stored = app.columns_containing(value).await;
            assert!(stored.is_empty(), "the {what} was stored in {stored:?}");
            if let Some(line) = logged.lines().find(|l| contains_standalone(l, value)) {
                panic!("the {what} was logged: {value} in {line}");
            }
        }

        let report = pci_scan(app.services.store.as_ref()).await.unwrap();
        assert!(report.values > 20, "the scan read the data: {report:?}");
        assert!(report.findings.is_empty(), "{:?}", report.findings);

        // A card number planted straight into a table is found, by table, column and row.
        let planted = crate::helpers::fresh_test_pan();
        app.execute(&format!(
            "UPDATE payments SET description = 'card {} {} {} {} exp 12/30' WHERE id = '{id}'",
            &planted[..4], &planted[4..8], &planted[8..12], &planted[12..]
        ))
        .await;
        let report = pci_scan(app.services.store.as_ref()).await.unwrap();
        assert_eq!(report.findings.len(), 1);
        let finding = &report.findings[0];
        assert_eq!((finding.table.as_str(), finding.column.as_str(), finding.row.as_str()), ("payments", "description", id));
    }
}

/// The command an information-governance officer runs: exit 0 when clean, 1 naming the place
/// (never the value) when not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pci_scan_command_reports_places_not_values() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite).await;
    let p = app.new_payment("CRM-SCAN").await;
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_counterfoil"))
            .arg("pci-scan")
            .env("DATABASE_URL", &app.db_url)
            .env_remove("COUNTERFOIL_CONFIG")
            .output()
            .unwrap()
    };
    let clean = run();
    let stdout = String::from_utf8_lossy(&clean.stdout).into_owned();
    assert_eq!(clean.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("no card numbers found"), "{stdout}");

    let id = p["id"].as_str().unwrap();
    let planted = crate::helpers::fresh_test_pan();
    app.execute(&format!(
        "UPDATE payments SET metadata = '{{\"note\": \"{}-{}-{}-{}\"}}' WHERE id = '{id}'",
        &planted[..4],
        &planted[4..8],
        &planted[8..12],
        &planted[12..]
    ))
    .await;
    let dirty = run();
    let stdout = String::from_utf8_lossy(&dirty.stdout).into_owned();
    assert_eq!(dirty.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("FOUND table=payments column=metadata row={id}")),
        "{stdout}"
    );
    assert!(
        !stdout.contains(&planted[4..12]),
        "the value is never printed: {stdout}"
    );
}
