//! Takings posted into LocalGov IMS (its simulator): a week of payments and refunds, a late
//! webhook, a payment healed by reconciliation after its day was posted, and posts whose answers
//! are lost or cut short. Every row sent is checked against the published document; the totals
//! per fund match the ledger; each payment and refund is posted once; a batch reads back the same.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::London;
use serde_json::{json, Value};

use counterfoil::config::{
    IncomeTarget, LocalGovImsSettings, PostingSettings, ServiceSettings, Settings,
};
use counterfoil::domain::income::MopCodes;
use counterfoil::store::{BatchStatus, IncomeBatch};

use crate::helpers::{payment_body, Backend, ManualClock, TestApp};

const SPEC: &str = include_str!("../fixtures/localgov-ims-api.json");

/// `POST /api/TransactionImport`'s body as the published client sends it, each row a
/// `ProcessedTransactionModel` read strictly (`nullable` as JSON Schema's null, no field beyond
/// the document's) and within the column limits the document gives the same fields on
/// `PendingTransactionModel`.
fn import_schema() -> Value {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let schemas = &spec["components"]["schemas"];
    let mut row = schemas["ProcessedTransactionModel"].clone();
    assert_eq!(row["additionalProperties"], false, "the document is strict");
    let limits = &schemas["PendingTransactionModel"]["properties"];
    for (name, field) in row["properties"].as_object_mut().unwrap() {
        if field["nullable"] == true {
            let kind = field["type"].clone();
            field["type"] = json!([kind, "null"]);
        }
        if let Some(max) = limits[name].get("maxLength") {
            field["maxLength"] = max.clone();
        }
        if field["format"] == "date-time" {
            field["pattern"] =
                json!("^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$");
        }
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["ImportTypeId", "NumberOfRows", "Rows"],
        "properties": {
            "ImportTypeId": {"type": "integer"},
            "Notes": {"type": ["string", "null"]},
            "NumberOfRows": {"type": "integer"},
            "Rows": {"type": "array", "items": row},
            "Errors": {"type": "array", "items": {"type": "string"}},
        }
    })
}

fn assert_valid(body: &Value) {
    let schema = import_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let problems: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        body["NumberOfRows"].as_u64().unwrap() as usize,
        body["Rows"].as_array().unwrap().len()
    );
}

/// Posting to the LocalGov IMS simulator from `starts_on`, with a second service on the sandbox
/// account under its own fund and VAT.
pub(crate) fn posting(s: &mut Settings, starts_on: NaiveDate) {
    s.payments.refresh_on_read = false;
    s.income.target = IncomeTarget::LocalgovIms;
    s.income.starts_on = Some(starts_on);
    s.income.worker = false;
    s.income.retry_interval_seconds = 60;
    s.income.localgov_ims = Some(LocalGovImsSettings {
        base_url: "simulator".into(),
        api_key: None,
        import_type_id: 7,
        user_code: 42,
        connect_timeout_ms: 1_000,
        timeout_ms: 3_000,
    });
    s.services.insert(
        "permits".into(),
        ServiceSettings {
            name: "Parking permits".into(),
            account: "sandbox".into(),
            fund_code: "PRM01".into(),
            cost_centre: "CC2".into(),
            crm_url: None,
            two_person_threshold_pence: None,
            posting: None,
        },
    );
    for (code, service) in s.services.iter_mut() {
        service.posting = Some(PostingSettings {
            office_code: "CF".into(),
            mop_codes: BTreeMap::from([
                (
                    "govuk_pay".into(),
                    MopCodes {
                        card: "GPC".into(),
                        wallet: None,
                    },
                ),
                (
                    "stripe".into(),
                    MopCodes {
                        card: "STC".into(),
                        wallet: None,
                    },
                ),
            ]),
            vat_code: if code == "permits" { "S" } else { "Z" }.into(),
            vat_rate_basis_points: if code == "permits" { 2000 } else { 0 },
            amounts_include_vat: true,
            account_reference: "{request_ref}".into(),
        });
    }
}

/// Noon in London on `day`, plus `minutes`.
pub(crate) fn during(day: NaiveDate, minutes: i64) -> DateTime<Utc> {
    London
        .from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
        + chrono::Duration::minutes(minutes)
}

/// 02:00 in London the day after `day`: `day` is over and its batch is due.
pub(crate) fn after(day: NaiveDate) -> DateTime<Utc> {
    London
        .from_local_datetime(&(day + Days::new(1)).and_hms_opt(2, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

pub(crate) struct Week {
    pub app: TestApp,
    pub clock: std::sync::Arc<ManualClock>,
    start: NaiveDate,
}

impl Week {
    pub(crate) async fn begin(backend: Backend) -> Self {
        Self::begin_with(backend, |_| {}).await
    }

    /// Posting as [`posting`] sets it up, then changed by `adjust`.
    pub(crate) async fn begin_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Self {
        let clock = ManualClock::new();
        let start = counterfoil::domain::ledger::london_day(clock.now_for_test());
        let setup = |s: &mut Settings| {
            posting(s, start);
            adjust(s);
        };
        let app = TestApp::spawn_with_clock(backend, setup, clock.clone()).await;
        Self { app, clock, start }
    }

    pub(crate) fn day(&self, n: u64) -> NaiveDate {
        self.start + Days::new(n)
    }

    /// A payment of `service` made and paid, its success moved to `at`.
    pub(crate) async fn paid(
        &self,
        service: &str,
        request_ref: &str,
        amount: i64,
        at: DateTime<Utc>,
    ) -> String {
        let mut body = payment_body(request_ref);
        body["service"] = json!(service);
        body["amount"] = json!(amount);
        let response = self.app.create_payment(request_ref, &body).await;
        assert_eq!(response.status(), 201);
        let p: Value = response.json().await.unwrap();
        let id = p["id"].as_str().unwrap().to_owned();
        self.app.press(p["next_url"].as_str().unwrap(), "pay").await;
        self.app.wait_for_status(&id, "succeeded").await;
        self.app
            .execute(&format!(
                "UPDATE payments SET finished_at = '{}' WHERE id = '{id}'",
                at.to_rfc3339()
            ))
            .await;
        id
    }

    /// A refund of `amount` made, its success moved to `at`.
    pub(crate) async fn refunded(&self, payment: &str, amount: i64, at: DateTime<Utc>) -> String {
        let response = self
            .app
            .client
            .post(self.app.url(&format!("/v1/payments/{payment}/refunds")))
            .bearer_auth(&self.app.finance_key)
            .header("Idempotency-Key", format!("refund-{payment}-{amount}"))
            .json(&json!({"amount": amount, "reason": "Overpaid"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let refund: Value = response.json().await.unwrap();
        assert_eq!(refund["status"], "succeeded");
        let id = refund["id"].as_str().unwrap().to_owned();
        self.app
            .execute(&format!(
                "UPDATE refunds SET finished_at = '{}' WHERE id = '{id}'",
                at.to_rfc3339()
            ))
            .await;
        id
    }

    /// A payment paid at the provider whose webhook is lost: Counterfoil has not heard.
    pub(crate) async fn unheard(&self, request_ref: &str) -> Value {
        self.app.simulator_webhooks(json!({"mode": "drop"})).await;
        let p = self.app.new_payment(request_ref).await;
        self.app.press(p["next_url"].as_str().unwrap(), "pay").await;
        self.app
            .simulator_webhooks(json!({"mode": "deliver"}))
            .await;
        p
    }

    /// Moves to the night after `day` and runs the income job's round: the sandbox account's
    /// batch for `day`, and what the post round did.
    pub(crate) async fn close(
        &self,
        day: NaiveDate,
    ) -> (IncomeBatch, counterfoil::service::income::PostRound) {
        self.clock.set(after(day));
        let round = self.app.services.income.build_due().await.unwrap();
        assert!(round.unbuilt.is_empty(), "{:?}", round.unbuilt);
        let batch = round
            .built
            .into_iter()
            .find(|b| b.account == "sandbox" && b.day == day)
            .expect("the sandbox account's batch for the day was built");
        let round = self.app.services.income.post_due().await.unwrap();
        (batch, round)
    }

    /// After the retry interval, the next post round.
    pub(crate) async fn retry(&self) -> counterfoil::service::income::PostRound {
        self.clock.advance(std::time::Duration::from_secs(61));
        self.app.services.income.post_due().await.unwrap()
    }

    pub(crate) async fn ims(&self, control: Value) {
        let response = self
            .app
            .client
            .post(self.app.url("/sandbox/localgov-ims/_control"))
            .json(&control)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }

    pub(crate) async fn imports(&self) -> Vec<Value> {
        serde_json::from_value(
            self.app
                .control("/sandbox/localgov-ims/_control/imports")
                .await,
        )
        .unwrap()
    }

    pub(crate) async fn transactions(&self) -> Vec<Value> {
        serde_json::from_value(
            self.app
                .control("/sandbox/localgov-ims/_control/transactions")
                .await,
        )
        .unwrap()
    }

    pub(crate) async fn status_of(&self, batch: &IncomeBatch) -> BatchStatus {
        let (read, _) = self
            .app
            .services
            .income
            .batch(&batch.id)
            .await
            .unwrap()
            .unwrap();
        read.status
    }
}

fn row_ids(import: &Value) -> Vec<String> {
    import["Rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["InternalReference"].as_str().unwrap().to_owned())
        .collect()
}

/// Pounds as the income system holds them, back to pence.
fn pence(amount: &Value) -> i64 {
    let text = amount.to_string();
    let (pounds, fraction) = text.split_once('.').unwrap_or((&text, "0"));
    let fraction = format!("{fraction:0<2}");
    let sign = if pounds.starts_with('-') { -1 } else { 1 };
    pounds.parse::<i64>().unwrap() * 100 + sign * fraction[..2].parse::<i64>().unwrap()
}

each_backend! {
    async fn a_week_of_takings_reaches_localgov_ims_once_each_and_adds_up_to_the_ledger(backend) {
        let week = Week::begin(backend).await;
        let mut expected = BTreeSet::new();

        // Day 0: three payments on two funds.
        let (d0, d1, d2, d3) = (week.day(0), week.day(1), week.day(2), week.day(3));
        let a = week.paid("demo", "WK-A", 2500, during(d0, 0)).await;
        let b = week.paid("permits", "WK-B", 1200, during(d0, 1)).await;
        let c = week.paid("permits", "WK-C", 3000, during(d0, 2)).await;
        expected.extend([a.clone(), b.clone(), c.clone()]);
        let (first, round) = week.close(d0).await;
        assert_eq!((first.number, first.row_count, first.control_total), (1, 3, 6700));
        assert_eq!(round.posted, 1, "{round:?}");
        let sent = week.imports().await;
        assert_eq!(sent.len(), 1);
        // What was posted is the batch's document, and it reads back the same every time.
        let (_, document) = week.app.services.income.document(&first.id).await.unwrap().unwrap();
        let (_, again) = week.app.services.income.document(&first.id).await.unwrap().unwrap();
        assert_eq!(document, again, "byte for byte");
        assert_eq!(serde_json::from_slice::<Value>(&document).unwrap(), sent[0]);

        // Day 1: a payment, a partial refund of A, and a payment whose webhook is lost (heard on
        // day 3). The import's answer is lost: it was taken all the same.
        let d = week.paid("demo", "WK-D", 4000, during(d1, 0)).await;
        let a_part = week.refunded(&a, 500, during(d1, 5)).await;
        expected.extend([d.clone(), a_part.clone()]);
        let late = week.unheard("WK-LATE").await;
        let late_id = late["id"].as_str().unwrap().to_owned();
        week.ims(json!({"lose_import_answers": 1})).await;
        let (second, round) = week.close(d1).await;
        assert_eq!(second.row_count, 2);
        assert_eq!(round.retrying, 1, "{round:?}");
        assert_eq!(week.status_of(&second).await, BatchStatus::Ready);
        let round = week.retry().await;
        assert_eq!(round.posted, 1, "{round:?}");
        assert_eq!(week.imports().await.len(), 2, "found, not sent again");

        // Day 2: B refunded in full, a payment; the import is cut short after one row.
        let b_full = week.refunded(&b, 1200, during(d2, 0)).await;
        let e = week.paid("demo", "WK-E", 700, during(d2, 1)).await;
        expected.extend([b_full.clone(), e.clone()]);
        // Paid at the provider, never heard of (the webhook is still lost): healed on day 3.
        let healed = week.unheard("WK-HEALED").await;
        let healed_id = healed["id"].as_str().unwrap().to_owned();
        week.ims(json!({"take_only_rows": 1})).await;
        let (third, round) = week.close(d2).await;
        assert_eq!(third.row_count, 2);
        assert_eq!(round.retrying, 1, "{round:?}");
        let round = week.retry().await;
        assert_eq!(round.posted, 1, "{round:?}");
        let sent = week.imports().await;
        assert_eq!(sent.len(), 4);
        assert_eq!(row_ids(&sent[3]).len(), 1, "only the row it did not take");

        // Day 3: the late webhook arrives, dated day 1; reconciliation heals the other payment.
        let mut message = crate::helpers::govuk_message(
            "late-webhook",
            late["provider_payment_id"].as_str().unwrap(),
            "card_payment_succeeded",
            "success",
            None,
        );
        message["created_date"] = json!(during(d1, 30).to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        week.clock.set(during(d3, 0));
        let answer = week.app.send_webhook("sandbox", &message.to_string(), Some(crate::helpers::WEBHOOK_SECRET)).await;
        assert_eq!(answer.status(), 200);
        let run = week.app.services.reconciliation
            .run(&crate::helpers::TESTER, "sandbox", after(d0) - chrono::Duration::days(2), during(d3, 1))
            .await
            .unwrap();
        assert!(run.discrepancies.iter().any(|d| d.payment_id.as_deref() == Some(healed_id.as_str()) && d.healed), "{:?}", run.discrepancies);
        assert_eq!(week.app.get_payment(&healed_id).await["status"], "succeeded");
        let f = week.paid("permits", "WK-F", 999, during(d3, 2)).await;
        expected.extend([late_id.clone(), healed_id.clone(), f.clone()]);
        let (fourth, round) = week.close(d3).await;
        assert_eq!(round.posted, 1);
        let (_, rows) = week.app.services.income.batch(&fourth.id).await.unwrap().unwrap();
        let ids: BTreeSet<_> = rows.iter().map(|r| r.line_id.clone()).collect();
        assert_eq!(ids, BTreeSet::from([late_id.clone(), healed_id.clone(), f.clone()]), "learnt late: in the next batch built");
        let late_row = rows.iter().find(|r| r.line_id == late_id).unwrap();
        assert_eq!(counterfoil::domain::ledger::london_day(late_row.at), d1, "dated when it was paid");

        // Days 4 to 6: a payment a day, one refunded in full the day after.
        for n in 4..7u64 {
            let day = week.day(n);
            let id = week.paid(if n % 2 == 0 { "demo" } else { "permits" }, &format!("WK-{n}"), 1000 + n as i64, during(day, 0)).await;
            expected.insert(id.clone());
            if n == 5 {
                expected.insert(week.refunded(&c, 3000, during(day, 10)).await);
            }
            let (batch, round) = week.close(day).await;
            assert_eq!((batch.number, round.posted), (n as i64 + 1, 1));
        }

        // Every request validates against the document.
        let sent = week.imports().await;
        for body in &sent {
            assert_valid(body);
        }
        // Each payment and refund is in LocalGov IMS exactly once.
        let held = week.transactions().await;
        let mut posted: Vec<String> = held.iter().map(|t| t["InternalReference"].as_str().unwrap().to_owned()).collect();
        posted.sort();
        let unique: BTreeSet<String> = posted.iter().cloned().collect();
        assert_eq!(posted.len(), unique.len(), "nothing posted twice: {posted:?}");
        assert_eq!(unique, expected);
        // Per fund, what LocalGov IMS holds is what the ledger says.
        let mut ims_funds: BTreeMap<String, i64> = BTreeMap::new();
        for t in &held {
            *ims_funds.entry(t["FundCode"].as_str().unwrap().to_owned()).or_default() += pence(&t["Amount"]);
        }
        let ledger: Value = week.app
            .get(&format!("/v1/ledger?from={}&to={}", week.day(0) - Days::new(1), week.day(6)), &week.app.finance_key)
            .await.json().await.unwrap();
        let mut ledger_funds: BTreeMap<String, i64> = BTreeMap::new();
        for item in ledger["items"].as_array().unwrap() {
            *ledger_funds.entry(item["fund_code"].as_str().unwrap().to_owned()).or_default() += item["amount_pence"].as_i64().unwrap();
        }
        assert_eq!(ims_funds, ledger_funds);
        assert_eq!(ledger["items"].as_array().unwrap().len(), expected.len());
        // Every batch is posted and reads back byte for byte as built.
        for batch in week.app.services.income.batches(None, 100).await.unwrap() {
            assert_eq!(batch.status, BatchStatus::Posted, "{}", batch.reference);
            let (_, one) = week.app.services.income.document(&batch.id).await.unwrap().unwrap();
            let (_, two) = week.app.services.income.document(&batch.id).await.unwrap().unwrap();
            assert_eq!(one, two);
        }
    }
}
