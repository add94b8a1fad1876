//! The OpenAPI document and the code may not drift: the document names exactly the routes the
//! server registers, the server serves the document, and every answer of every route (successes
//! and problems alike) matches the schema the document gives for its status and media type.

use std::collections::BTreeSet;

use counterfoil::http::probes::OPENAPI_DOCUMENT;
use counterfoil::http::{API_ROUTES, PROBE_ROUTES};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{govuk_message, payment_body, Backend, TestApp, WEBHOOK_SECRET};
use crate::support::openapi_contract::{Checked, Contract};

fn document() -> Value {
    serde_json::from_str(OPENAPI_DOCUMENT).expect("openapi/openapi.json is JSON")
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[test]
fn the_document_names_exactly_the_routes_the_server_serves() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| (m.to_string(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = API_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), format!("/v1{p}")))
        .chain(
            PROBE_ROUTES
                .iter()
                .map(|(m, p)| (m.to_string(), p.to_string())),
        )
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not documented: {undocumented:?}; documented but not served: {unserved:?}"
    );
    // Every operation has an id, a summary and at least one success answer.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let op = &item[*method];
            assert!(op["operationId"].is_string(), "{method} {path}");
            assert!(op["summary"].is_string(), "{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn every_answer_matches_the_document() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (crm, finance, admin) = (
        Some(app.crm_key.as_str()),
        Some(app.finance_key.as_str()),
        Some(app.admin_key.as_str()),
    );
    let c = Checked {
        app: &app,
        contract: Contract::new(document()),
    };
    use Method as M;

    // The served document is the file.
    let (status, served) = c
        .call(M::GET, "/openapi.json", "/openapi.json", None, None, None)
        .await;
    assert_eq!((status, served), (200, document()));
    for probe in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(c.call(M::GET, probe, probe, None, None, None).await.0, 200);
    }

    // Payments: created, replayed, refused in each documented way.
    let body = payment_body("CRM-CONTRACT");
    let (status, payment) = c
        .call(
            M::POST,
            "/v1/payments",
            "/v1/payments",
            crm,
            Some(&body),
            Some("contract-1"),
        )
        .await;
    assert_eq!(status, 201);
    let id = payment["id"].as_str().unwrap().to_owned();
    assert_eq!(
        c.call(
            M::POST,
            "/v1/payments",
            "/v1/payments",
            crm,
            Some(&body),
            Some("contract-1")
        )
        .await
        .0,
        201
    );
    assert_eq!(
        c.call(
            M::POST,
            "/v1/payments",
            "/v1/payments",
            crm,
            Some(&json!({"amount": -1})),
            Some("contract-2")
        )
        .await
        .0,
        422
    );
    assert_eq!(
        c.call(
            M::POST,
            "/v1/payments",
            "/v1/payments",
            crm,
            Some(&body),
            None
        )
        .await
        .0,
        400
    );
    assert_eq!(
        c.call(
            M::POST,
            "/v1/payments",
            "/v1/payments",
            finance,
            Some(&body),
            Some("contract-3")
        )
        .await
        .0,
        403
    );
    assert_eq!(
        c.call(
            M::POST,
            "/v1/payments",
            "/v1/payments",
            None,
            Some(&body),
            Some("contract-4")
        )
        .await
        .0,
        401
    );
    let mut offline = payment_body("CRM-CONTRACT-OFF");
    offline["service"] = json!("offline");
    assert_eq!(
        c.call(
            M::POST,
            "/v1/payments",
            "/v1/payments",
            crm,
            Some(&offline),
            Some("contract-5")
        )
        .await
        .0,
        503
    );

    let one = format!("/v1/payments/{id}");
    assert_eq!(
        c.call(M::GET, "/v1/payments/{id}", &one, crm, None, None)
            .await
            .0,
        200
    );
    assert_eq!(
        c.call(
            M::GET,
            "/v1/payments/{id}",
            "/v1/payments/pay_nosuch",
            crm,
            None,
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        c.call(
            M::GET,
            "/v1/payments",
            "/v1/payments?request_ref=CRM-CONTRACT",
            finance,
            None,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        c.call(
            M::GET,
            "/v1/payments",
            "/v1/payments?limit=0",
            crm,
            None,
            None
        )
        .await
        .0,
        422
    );
    app.press(payment["next_url"].as_str().unwrap(), "pay")
        .await;
    app.wait_for_status(&id, "succeeded").await;
    assert_eq!(
        c.call(
            M::GET,
            "/v1/payments/{id}/events",
            &format!("{one}/events"),
            crm,
            None,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        c.call(
            M::POST,
            "/v1/payments/{id}/cancel",
            &format!("{one}/cancel"),
            crm,
            None,
            None
        )
        .await
        .0,
        409
    );

    // Refunds.
    let refunds = format!("{one}/refunds");
    let refund = json!({"amount": 100, "reason": "Contract test"});
    assert_eq!(
        c.call(
            M::POST,
            "/v1/payments/{id}/refunds",
            &refunds,
            finance,
            Some(&refund),
            Some("contract-r1")
        )
        .await
        .0,
        201
    );
    let too_much = json!({"amount": 1_000_000, "reason": "Too much"});
    assert_eq!(
        c.call(
            M::POST,
            "/v1/payments/{id}/refunds",
            &refunds,
            finance,
            Some(&too_much),
            Some("contract-r2")
        )
        .await
        .0,
        422
    );
    assert_eq!(
        c.call(
            M::GET,
            "/v1/payments/{id}/refunds",
            &refunds,
            finance,
            None,
            None
        )
        .await
        .0,
        200
    );

    // Finance reads, JSON and CSV.
    let today = chrono::Utc::now().date_naive();
    let period = format!(
        "from={}&to={}",
        today.pred_opt().unwrap(),
        today.succ_opt().unwrap()
    );
    assert_eq!(
        c.call(
            M::GET,
            "/v1/ledger",
            &format!("/v1/ledger?{period}"),
            finance,
            None,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        c.call(
            M::GET,
            "/v1/ledger",
            &format!("/v1/ledger?{period}&format=csv"),
            finance,
            None,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        c.call(
            M::GET,
            "/v1/ledger",
            "/v1/ledger?from=yesterday",
            finance,
            None,
            None
        )
        .await
        .0,
        422
    );
    assert_eq!(
        c.call(
            M::GET,
            "/v1/ledger/summary",
            &format!("/v1/ledger/summary?{period}"),
            finance,
            None,
            None
        )
        .await
        .0,
        200
    );
    let now = chrono::Utc::now();
    let window = json!({"account": "sandbox", "from": (now - chrono::Duration::hours(1)).to_rfc3339(), "to": (now + chrono::Duration::minutes(1)).to_rfc3339()});
    let (status, run) = c
        .call(
            M::POST,
            "/v1/reconciliations",
            "/v1/reconciliations",
            finance,
            Some(&window),
            None,
        )
        .await;
    assert_eq!(status, 201);
    let run_path = format!("/v1/reconciliations/{}", run["id"].as_str().unwrap());
    assert_eq!(
        c.call(
            M::GET,
            "/v1/reconciliations/{id}",
            &run_path,
            finance,
            None,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        c.call(
            M::GET,
            "/v1/reconciliations/{id}",
            &format!("{run_path}?format=csv"),
            finance,
            None,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        c.call(
            M::GET,
            "/v1/reconciliations/{id}",
            "/v1/reconciliations/rec_nosuch",
            finance,
            None,
            None
        )
        .await
        .0,
        404
    );

    // Administration.
    assert_eq!(
        c.call(M::GET, "/v1/audit", "/v1/audit", admin, None, None)
            .await
            .0,
        200
    );
    assert_eq!(
        c.call(M::GET, "/v1/audit", "/v1/audit", finance, None, None)
            .await
            .0,
        403
    );
    let (status, listed) = c
        .call(
            M::GET,
            "/v1/notifications",
            "/v1/notifications",
            admin,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let notification = listed["items"][0]["id"].as_str().unwrap().to_owned();
    let retry = format!("/v1/notifications/{notification}/retry");
    assert_eq!(
        c.call(
            M::POST,
            "/v1/notifications/{id}/retry",
            &retry,
            admin,
            None,
            None
        )
        .await
        .0,
        202
    );
    assert_eq!(
        c.call(
            M::POST,
            "/v1/notifications/{id}/retry",
            "/v1/notifications/evt_nosuch/retry",
            admin,
            None,
            None
        )
        .await
        .0,
        404
    );

    // Data protection.
    let export = "/v1/data-protection/exports";
    assert_eq!(
        c.call(
            M::GET,
            export,
            &format!("{export}?request_ref=CRM-CONTRACT"),
            admin,
            None,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        c.call(
            M::GET,
            export,
            &format!("{export}?request_ref=CRM-CONTRACT&format=csv"),
            admin,
            None,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        c.call(M::GET, export, export, admin, None, None).await.0,
        422
    );
    let erasure = "/v1/data-protection/erasures";
    assert_eq!(
        c.call(
            M::POST,
            erasure,
            erasure,
            admin,
            Some(&json!({"request_ref": "CRM-CONTRACT"})),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        c.call(
            M::POST,
            erasure,
            erasure,
            finance,
            Some(&json!({"request_ref": "CRM-CONTRACT"})),
            None
        )
        .await
        .0,
        403
    );

    // A provider's webhook: acknowledged, or refused for its signature.
    let message = govuk_message(
        "contract-m1",
        "notourpayment",
        "card_payment_started",
        "started",
        None,
    )
    .to_string();
    let response = app
        .send_webhook("sandbox", &message, Some(WEBHOOK_SECRET))
        .await;
    let (status, ct) = (
        response.status().as_u16(),
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned(),
    );
    c.contract.check(
        &M::POST,
        "/v1/webhooks/{provider}/{account}",
        status,
        &ct,
        &response.text().await.unwrap(),
    );
    let response = app.send_webhook("sandbox", &message, None).await;
    let (status, ct) = (
        response.status().as_u16(),
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned(),
    );
    assert_eq!(status, 401);
    c.contract.check(
        &M::POST,
        "/v1/webhooks/{provider}/{account}",
        status,
        &ct,
        &response.text().await.unwrap(),
    );
}
