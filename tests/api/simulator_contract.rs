//! Every answer the GOV.UK Pay simulator gives is valid against GOV.UK Pay's published document
//! (`tests/fixtures/govuk-pay-publicapi-openapi.json`), read strictly: a field the document does
//! not declare is a failure too. Every link it advertises is served. A paid payment carries the
//! card details the real API returns, and none of them reaches Counterfoil's store or logs.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::support::logs;

const SIM_KEY: &str = "api_test_counterfoil_simulator_key";
const SPEC: &str = include_str!("../fixtures/govuk-pay-publicapi-openapi.json");

/// The document's schemas, made strict: no undeclared properties, OpenAPI 3.0's `nullable`
/// read as JSON Schema's `null` type.
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(kind) = map.get("type").cloned() {
                    map.insert("type".into(), json!([kind, "null"]));
                }
            }
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

struct Contract {
    components: Value,
    problems: Vec<String>,
    links: BTreeSet<(String, String)>,
}

impl Contract {
    fn new() -> Self {
        let spec: Value = serde_json::from_str(SPEC).unwrap();
        let mut components = spec["components"].clone();
        strict(&mut components);
        // Metadata is the service's own keys (the document's example shows them); its
        // `properties` entry is a generator's artefact, so the schema is left open.
        components["schemas"]["ExternalMetadata"] = json!({"type": "object"});
        // `next_url_post.params` types each value as an object, another generator's artefact
        // (a Map<String, Object>): the API's reference shows the one parameter, chargeTokenId,
        // as a string, and that is what a form post sends.
        components["schemas"]["PostLink"]["properties"]["params"] =
            json!({"type": "object", "additionalProperties": {"type": "string"}});
        Self {
            components,
            problems: Vec::new(),
            links: BTreeSet::new(),
        }
    }

    /// Checks `body` against the named schema and notes every link in it.
    fn check(&mut self, what: &str, schema: &str, body: &Value) {
        let root = json!({"$ref": format!("#/components/schemas/{schema}"), "components": self.components});
        let validator = jsonschema::draft202012::options().build(&root).unwrap();
        for error in validator.iter_errors(body) {
            self.problems.push(format!(
                "{what} ({schema}): {error} at {}",
                error.instance_path()
            ));
        }
        self.note_links(body);
    }

    fn note_links(&mut self, value: &Value) {
        match value {
            Value::Object(map) => {
                if let (Some(Value::String(href)), Some(Value::String(method))) =
                    (map.get("href"), map.get("method"))
                {
                    self.links.insert((method.clone(), href.clone()));
                }
                map.values().for_each(|v| self.note_links(v));
            }
            Value::Array(items) => items.iter().for_each(|v| self.note_links(v)),
            _ => {}
        }
    }
}

async fn call(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        app.url(&format!("/sandbox/govuk-pay{path}"))
    };
    let request = match method {
        "POST" => app.client.post(&url),
        _ => app.client.get(&url),
    };
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let answer = request.bearer_auth(SIM_KEY).send().await.unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn create_body(reference: &str) -> Value {
    json!({"amount": 4500, "reference": reference, "description": "Garden waste permit",
           "return_url": "https://council.example/return", "email": "payer@example.com",
           "metadata": {"ledger_code": "GW1"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_the_published_document_and_every_link_is_served() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut contract = Contract::new();

    let (status, created) = call(&app, "POST", "/v1/payments", Some(create_body("GW-1"))).await;
    assert_eq!(status, 201);
    contract.check("create", "CreatePaymentResult", &created);
    let id = created["payment_id"].as_str().unwrap().to_owned();
    let (_, fresh) = call(&app, "GET", &format!("/v1/payments/{id}"), None).await;
    contract.check("get, created", "PaymentWithAllLinks", &fresh);
    assert!(fresh.get("card_details").is_none(), "no card entered yet");

    let next_url = created["_links"]["next_url"]["href"].as_str().unwrap();
    assert_eq!(app.press(next_url, "pay").await.status(), 303);
    let (_, paid) = call(&app, "GET", &format!("/v1/payments/{id}"), None).await;
    contract.check("get, paid", "PaymentWithAllLinks", &paid);
    // What the real API returns for a paid payment.
    assert_eq!(paid["card_details"]["last_digits_card_number"], "4242");
    assert!(paid["card_details"]["cardholder_name"].is_string());
    assert!(paid["card_details"]["billing_address"]["postcode"].is_string());
    assert!(paid["provider_id"].is_string());
    assert!(paid["settlement_summary"]["captured_date"].is_string());

    let (_, events) = call(&app, "GET", &format!("/v1/payments/{id}/events"), None).await;
    contract.check("events", "PaymentEvents", &events);
    let statuses: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["created", "started", "success"]);

    let (_, found) = call(&app, "GET", "/v1/payments?reference=GW-1", None).await;
    contract.check("search", "PaymentSearchResults", &found);

    let refund = json!({"amount": 500, "refund_amount_available": 4500});
    let (status, refunded) = call(
        &app,
        "POST",
        &format!("/v1/payments/{id}/refunds"),
        Some(refund),
    )
    .await;
    assert_eq!(status, 202);
    contract.check("refund", "Refund", &refunded);
    let refund_id = refunded["refund_id"].as_str().unwrap();
    let (_, one) = call(
        &app,
        "GET",
        &format!("/v1/payments/{id}/refunds/{refund_id}"),
        None,
    )
    .await;
    contract.check("get refund", "Refund", &one);
    let (_, listed) = call(&app, "GET", &format!("/v1/payments/{id}/refunds"), None).await;
    contract.check("list refunds", "RefundForSearchResult", &listed);
    let (_, searched) = call(&app, "GET", "/v1/refunds", None).await;
    contract.check("search refunds", "RefundSearchResults", &searched);

    // Paid out, as on GOV.UK Pay's Stripe-backed service: the settled day, fee and net amount.
    let settle = app
        .client
        .post(app.url("/sandbox/govuk-pay/_control/settle"))
        .json(&json!({"date": "2026-12-09"}))
        .send()
        .await
        .unwrap();
    assert_eq!(settle.status(), 204);
    let (_, settled) = call(&app, "GET", &format!("/v1/payments/{id}"), None).await;
    contract.check("get, settled", "PaymentWithAllLinks", &settled);
    assert_eq!(settled["settlement_summary"]["settled_date"], "2026-12-09");
    assert_eq!(
        settled["net_amount"].as_i64(),
        Some(4500 - settled["fee"].as_i64().unwrap())
    );
    let (_, found) = call(&app, "GET", "/v1/payments?reference=GW-1", None).await;
    contract.check("search, settled", "PaymentSearchResults", &found);
    let (_, searched) = call(&app, "GET", "/v1/refunds", None).await;
    contract.check("search refunds, settled", "RefundSearchResults", &searched);
    assert_eq!(
        searched["results"][0]["settlement_summary"]["settled_date"],
        "2026-12-09"
    );

    let (_, other) = call(&app, "POST", "/v1/payments", Some(create_body("GW-2"))).await;
    let other_id = other["payment_id"].as_str().unwrap();
    let (status, _) = call(
        &app,
        "POST",
        &format!("/v1/payments/{other_id}/cancel"),
        None,
    )
    .await;
    assert_eq!(status, 204);

    let (status, missing) =
        call(&app, "GET", "/v1/payments/nosuchpayment0000000000000", None).await;
    assert_eq!(status, 404);
    contract.check("not found", "RequestError", &missing);
    let (status, bad_request) =
        call(&app, "POST", "/v1/payments", Some(json!({"amount": "ten"}))).await;
    assert_eq!(status, 400);
    contract.check("bad request", "RequestError", &bad_request);
    let mut too_much = create_body("GW-3");
    too_much["amount"] = json!(10_000_001);
    let (status, invalid) = call(&app, "POST", "/v1/payments", Some(too_much)).await;
    assert_eq!(status, 422);
    contract.check("invalid", "RequestError", &invalid);

    assert!(contract.problems.is_empty(), "{:#?}", contract.problems);

    // Every advertised link is served: GETs answer, POSTs (cancel) are routed.
    let links = std::mem::take(&mut contract.links);
    assert!(links.len() >= 6, "{links:?}");
    for (method, href) in links {
        let (status, _) = call(&app, &method, &href, None).await;
        assert!(
            ![404, 405].contains(&status),
            "{method} {href} is advertised but answers {status}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_payments_card_details_are_read_past_not_kept() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = TestApp::spawn(backend).await;
        let mark = logs::mark();
        let payment = app.new_payment("CARD-DETAILS-1").await;
        let id = payment["id"].as_str().unwrap();
        app.press(payment["next_url"].as_str().unwrap(), "pay")
            .await;
        // Counterfoil reads the paid payment from the provider (refresh) and by webhook.
        let read = app.wait_for_status(id, "succeeded").await;
        assert_eq!(read["status"], "succeeded");
        for needle in [
            "Sam Sample",
            "1 Test Street",
            "AB1 2CD",
            "04/30",
            "Testtown",
        ] {
            assert!(
                app.columns_containing(needle).await.is_empty(),
                "{needle} was stored"
            );
            assert!(
                !logs::captured_since(mark).contains(needle),
                "{needle} was logged"
            );
        }
    }
}
