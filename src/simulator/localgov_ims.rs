//! A LocalGov IMS stand-in, served in-process under `/sandbox/localgov-ims/` when
//! `income.localgov_ims.base_url = "simulator"`. It follows the published API document for what
//! Counterfoil uses: `POST /api/TransactionImport` (rows of `ProcessedTransactionModel`, unknown
//! fields refused, the system's column limits kept), `GET /api/ProcessedTransactions` searched by
//! its query fields, `GET /api/ProcessedTransactions/{reference}`, `GET /api/Funds/{fundCode}` and
//! `GET /api/MethodOfPayments`. Like the real API it has no idempotency key: the same import sent
//! twice is taken twice. A `_control` API fails, delays or loses answers, and shows every import
//! body as it arrived.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where the simulator is mounted.
pub const MOUNT: &str = "/sandbox/localgov-ims";

/// `ProcessedTransactionModel`'s fields, each with its JSON type and, where the document gives
/// one for the same column (`PendingTransactionModel`), its length limit.
const FIELDS: &[(&str, Kind, Option<usize>)] = &[
    ("Reference", Kind::Text, None),
    ("InternalReference", Kind::Text, None),
    ("PspReference", Kind::Text, None),
    ("OfficeCode", Kind::Text, Some(2)),
    ("EntryDate", Kind::DateTime, None),
    ("TransactionDate", Kind::DateTime, None),
    ("AccountReference", Kind::Text, Some(30)),
    ("UserCode", Kind::Int, None),
    ("FundCode", Kind::Text, Some(5)),
    ("MopCode", Kind::Text, Some(5)),
    ("Amount", Kind::Decimal, None),
    ("VatCode", Kind::Text, Some(2)),
    ("VatRate", Kind::Float, None),
    ("VatAmount", Kind::Decimal, None),
    ("Narrative", Kind::Text, Some(100)),
    ("BatchReference", Kind::Text, Some(30)),
];

/// The search's query fields and the model field each matches.
const SEARCH: &[(&str, &str)] = &[
    ("ReceiptNumber", "Reference"),
    ("AccountReference", "AccountReference"),
    ("InternalReference", "InternalReference"),
    ("PspReference", "PspReference"),
    ("Narrative", "Narrative"),
    ("AppReference", "BatchReference"),
];

#[derive(Clone, Copy)]
enum Kind {
    Text,
    DateTime,
    Int,
    Decimal,
    Float,
}

/// How the simulator answers, as a test asks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Answer this many imports with this HTTP status, taking nothing.
    #[serde(default)]
    pub fail_imports: u32,
    #[serde(default = "server_error")]
    pub fail_status: u16,
    /// Take this many imports whole, then answer `504` as a gateway whose wait ran out would.
    #[serde(default)]
    pub lose_import_answers: u32,
    /// Take only the first this-many rows of the next import, then answer `500`.
    #[serde(default)]
    pub take_only_rows: Option<usize>,
    /// Wait this long before every answer.
    #[serde(default)]
    pub delay_ms: u64,
    /// Fund codes the council has; a row with any other is refused. Empty: any.
    #[serde(default)]
    pub funds: Vec<String>,
}

fn server_error() -> u16 {
    500
}

#[derive(Default)]
struct State {
    control: Control,
    /// Every import body as it arrived, parsed.
    imports: Vec<Value>,
    transactions: Vec<Map<String, Value>>,
}

#[derive(Clone, Default)]
pub struct Simulator {
    state: Arc<Mutex<State>>,
}

impl Simulator {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.service(
            web::scope(MOUNT)
                .app_data(web::Data::new(self.clone()))
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .route("/api/TransactionImport", web::post().to(import))
                .route("/api/ProcessedTransactions", web::get().to(search))
                .route(
                    "/api/ProcessedTransactions/{reference}",
                    web::get().to(read),
                )
                .route("/api/Funds/{fund}", web::get().to(fund))
                .route("/api/MethodOfPayments", web::get().to(methods))
                .route("/_control", web::post().to(set_control))
                .route("/_control/imports", web::get().to(list_imports))
                .route("/_control/transactions", web::get().to(list_transactions)),
        );
    }
}

fn bad_request(why: impl Into<String>) -> HttpResponse {
    HttpResponse::BadRequest().json(why.into())
}

/// What is wrong with one row, if anything: the document's fields only, each of its type and
/// within its column.
fn row_problem(index: usize, row: &Value, funds: &[String]) -> Option<String> {
    let Some(row) = row.as_object() else {
        return Some(format!("Rows[{index}] is not an object"));
    };
    for (name, value) in row {
        let Some((_, kind, limit)) = FIELDS.iter().find(|(field, _, _)| field == name) else {
            return Some(format!(
                "Rows[{index}].{name} is not a field of ProcessedTransactionModel"
            ));
        };
        let fits = match (kind, value) {
            (Kind::Text, Value::String(s)) => limit.is_none_or(|l| s.chars().count() <= l),
            (Kind::DateTime, Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            (Kind::Int, Value::Number(n)) => n.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            (Kind::Decimal | Kind::Float, Value::Number(_)) => true,
            (Kind::Int | Kind::Float, Value::Null) => false,
            (_, Value::Null) => true,
            _ => false,
        };
        if !fits {
            return Some(format!("Rows[{index}].{name} is not valid"));
        }
    }
    let fund = row
        .get("FundCode")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !funds.is_empty() && !funds.iter().any(|f| f == fund) {
        return Some(format!("Rows[{index}].FundCode {fund} is not a fund"));
    }
    None
}

/// The body's own shape: `{ImportTypeId, Notes, NumberOfRows, Rows, Errors}` and nothing else.
fn import_problem(body: &Value, funds: &[String]) -> Option<String> {
    let Some(body) = body.as_object() else {
        return Some("the body is not an object".into());
    };
    let known: BTreeSet<&str> = ["ImportTypeId", "Notes", "NumberOfRows", "Rows", "Errors"].into();
    if let Some(extra) = body.keys().find(|k| !known.contains(k.as_str())) {
        return Some(format!("{extra} is not a field of TransactionImportModel"));
    }
    let rows = body.get("Rows").and_then(Value::as_array);
    let (Some(rows), Some(count)) = (rows, body.get("NumberOfRows").and_then(Value::as_u64)) else {
        return Some("Rows and NumberOfRows are required".into());
    };
    if body.get("ImportTypeId").and_then(Value::as_i64).is_none() {
        return Some("ImportTypeId is required".into());
    }
    if count as usize != rows.len() {
        return Some(format!(
            "NumberOfRows says {count}, Rows holds {}",
            rows.len()
        ));
    }
    rows.iter()
        .enumerate()
        .find_map(|(i, row)| row_problem(i, row, funds))
}

async fn import(sim: web::Data<Simulator>, body: web::Bytes) -> HttpResponse {
    let control = sim.lock().control.clone();
    tokio::time::sleep(Duration::from_millis(control.delay_ms)).await;
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the body is not JSON");
    };
    let mut state = sim.lock();
    state.imports.push(parsed.clone());
    if state.control.fail_imports > 0 {
        state.control.fail_imports -= 1;
        let status = actix_web::http::StatusCode::from_u16(state.control.fail_status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
        return HttpResponse::build(status).json("the simulator was told to fail this import");
    }
    if let Some(problem) = import_problem(&parsed, &state.control.funds) {
        return bad_request(problem);
    }
    let rows = parsed["Rows"].as_array().cloned().unwrap_or_default();
    let taking = state.control.take_only_rows.take().unwrap_or(rows.len());
    for row in rows.into_iter().take(taking) {
        let mut row = row.as_object().cloned().unwrap_or_default();
        let receipt = format!("IMS{:08}", state.transactions.len() + 1);
        row.insert("Reference".into(), Value::String(receipt));
        state.transactions.push(row);
    }
    if taking < parsed["Rows"].as_array().map_or(0, Vec::len) {
        return HttpResponse::InternalServerError().json("the import stopped part way");
    }
    if state.control.lose_import_answers > 0 {
        state.control.lose_import_answers -= 1;
        return HttpResponse::GatewayTimeout().finish();
    }
    HttpResponse::Ok().finish()
}

async fn search(sim: web::Data<Simulator>, req: HttpRequest) -> HttpResponse {
    let query: Vec<(String, String)> =
        web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .map(|q| q.into_inner())
            .unwrap_or_default();
    let mut wanted: HashMap<&str, &str> = HashMap::new();
    for (name, value) in &query {
        match SEARCH.iter().find(|(param, _)| param == name) {
            Some((_, field)) => {
                wanted.insert(field, value);
            }
            None if ["FundCodes", "MopCodes", "Amount", "StartDate", "EndDate"]
                .contains(&name.as_str()) => {}
            None => return HttpResponse::BadRequest().finish(),
        }
    }
    let delay = sim.lock().control.delay_ms;
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let state = sim.lock();
    let found: Vec<&Map<String, Value>> = state
        .transactions
        .iter()
        .filter(|t| {
            wanted
                .iter()
                .all(|(field, value)| t.get(*field).and_then(Value::as_str) == Some(value))
        })
        .collect();
    if found.is_empty() {
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::Ok().json(found)
}

async fn read(sim: web::Data<Simulator>, reference: web::Path<String>) -> HttpResponse {
    let state = sim.lock();
    match state
        .transactions
        .iter()
        .find(|t| t.get("Reference").and_then(Value::as_str) == Some(reference.as_str()))
    {
        Some(found) => HttpResponse::Ok().json(found),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn fund(sim: web::Data<Simulator>, code: web::Path<String>) -> HttpResponse {
    let funds = sim.lock().control.funds.clone();
    if !funds.is_empty() && !funds.contains(&code) {
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::Ok().json(serde_json::json!({
        "FundCode": code.as_str(), "FundName": format!("Fund {code}"),
        "UseGeneralLedgerCode": false, "GeneralLedgerCode": null, "IsGeneralLedgerDetail": false,
    }))
}

async fn methods() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!([
        {"Code": "GPC", "Name": "GOV.UK Pay card", "MaximumAmount": 100000, "MinimumAmount": 0.01, "Disabled": false},
        {"Code": "STC", "Name": "Stripe card", "MaximumAmount": 100000, "MinimumAmount": 0.01, "Disabled": false},
    ]))
}

async fn set_control(sim: web::Data<Simulator>, control: web::Json<Control>) -> HttpResponse {
    sim.lock().control = control.into_inner();
    HttpResponse::NoContent().finish()
}

async fn list_imports(sim: web::Data<Simulator>) -> HttpResponse {
    HttpResponse::Ok().json(&sim.lock().imports)
}

async fn list_transactions(sim: web::Data<Simulator>) -> HttpResponse {
    HttpResponse::Ok().json(&sim.lock().transactions)
}
