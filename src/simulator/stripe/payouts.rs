//! Stripe's payouts and balance transactions, as the simulator keeps them: each paid session is
//! a `charge` (with Stripe's standard UK card fee, 1.5% + 20p), each succeeded refund a `refund`;
//! a payout, made when a test asks (`POST _control/payouts`), sweeps everything of the account
//! not yet paid out into one, with its own `payout` transaction. A test may add a charge made
//! outside Counterfoil (in Stripe's dashboard) to see it flagged.

use std::collections::HashSet;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{list_query, page, unauthorised};
use super::Simulator;
use crate::simulator::digest;

/// A balance transaction, as paid out.
#[derive(Debug, Clone)]
pub(super) struct SimTxn {
    id: String,
    kind: &'static str,
    /// The charge, refund or payout it records.
    source: String,
    /// For a charge: its PaymentIntent.
    intent: Option<String>,
    amount: i64,
    fee: i64,
    created: i64,
}

#[derive(Debug, Clone)]
pub(super) struct SimPayout {
    id: String,
    owner: String,
    amount: i64,
    created: i64,
    arrival_date: i64,
    items: Vec<SimTxn>,
}

#[derive(Default)]
pub(super) struct Book {
    payouts: Vec<SimPayout>,
    /// Charges and refunds already in a payout.
    paid_out: HashSet<String>,
    /// Charges made outside Counterfoil: (owner, transaction).
    outside: Vec<(String, SimTxn)>,
}

/// Stripe's standard fee for a UK card: 1.5% (to the nearest penny) + 20p.
fn card_fee(amount: i64) -> i64 {
    (amount * 15 + 500) / 1000 + 20
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PayoutRequest {
    /// The account's secret key: whose balance is paid out.
    api_key: String,
    /// Add a charge of this many pence made in Stripe's dashboard, not through Counterfoil.
    #[serde(default)]
    outside_charge: Option<i64>,
    #[serde(default = "two")]
    arrival_in_days: i64,
}

fn two() -> i64 {
    2
}

/// Everything of `owner` not yet paid out, as balance transactions.
fn unpaid(sim: &Simulator, state: &mut super::State, owner: &str) -> Vec<SimTxn> {
    let mut items = Vec::new();
    let sessions: Vec<_> = state
        .sessions
        .values()
        .filter(|s| s.owner == owner)
        .cloned()
        .collect();
    for s in &sessions {
        let (Some(intent), "paid") = (&s.intent, s.payment_status) else {
            continue;
        };
        let charge = format!("ch_{}", &intent[3..]);
        if !state.book.paid_out.contains(&charge) {
            let id = sim.next_id(state, "txn");
            items.push(SimTxn {
                id,
                kind: "charge",
                source: charge,
                intent: Some(intent.clone()),
                amount: s.amount,
                fee: card_fee(s.amount),
                created: s.created,
            });
        }
    }
    let refunds: Vec<_> = state
        .refunds
        .values()
        .filter(|r| r.status == "succeeded" && sessions.iter().any(|s| s.id == r.session))
        .cloned()
        .collect();
    for r in refunds {
        if !state.book.paid_out.contains(&r.id) {
            let id = sim.next_id(state, "txn");
            items.push(SimTxn {
                id,
                kind: "refund",
                source: r.id.clone(),
                intent: None,
                amount: -r.amount,
                fee: 0,
                created: r.created,
            });
        }
    }
    let outside = std::mem::take(&mut state.book.outside);
    let (mine, others): (Vec<_>, Vec<_>) = outside.into_iter().partition(|(o, _)| o == owner);
    state.book.outside = others;
    items.extend(mine.into_iter().map(|(_, t)| t));
    items
}

pub(super) async fn make_payout(
    sim: web::Data<Simulator>,
    request: web::Json<PayoutRequest>,
) -> HttpResponse {
    let owner = digest(&request.api_key);
    if !sim.accounts.contains_key(&owner) {
        return unauthorised();
    }
    let now = Utc::now().timestamp();
    let mut state = sim.lock();
    if let Some(amount) = request.outside_charge {
        let intent = sim.next_id(&mut state, "pi");
        let id = sim.next_id(&mut state, "txn");
        let charge = SimTxn {
            id,
            kind: "charge",
            source: format!("ch_{}", &intent[3..]),
            intent: Some(intent),
            amount,
            fee: card_fee(amount),
            created: now,
        };
        state.book.outside.push((owner.clone(), charge));
    }
    let mut items = unpaid(&sim, &mut state, &owner);
    let amount: i64 = items.iter().map(|t| t.amount - t.fee).sum();
    let id = sim.next_id(&mut state, "po");
    let txn = sim.next_id(&mut state, "txn");
    items.push(SimTxn {
        id: txn,
        kind: "payout",
        source: id.clone(),
        intent: None,
        amount: -amount,
        fee: 0,
        created: now,
    });
    for t in &items {
        state.book.paid_out.insert(t.source.clone());
    }
    let payout = SimPayout {
        id,
        owner,
        amount,
        created: now,
        arrival_date: now + request.arrival_in_days * 86_400,
        items,
    };
    let answer = payout_json(&payout);
    state.book.payouts.push(payout);
    HttpResponse::Ok().json(answer)
}

fn payout_json(p: &SimPayout) -> Value {
    json!({
        "id": p.id, "object": "payout", "amount": p.amount, "currency": "gbp",
        "arrival_date": p.arrival_date, "created": p.created, "status": "paid",
        "automatic": true, "method": "standard", "type": "bank_account",
        "description": "STRIPE PAYOUT", "statement_descriptor": null,
        "destination": "ba_test_counterfoil", "livemode": false,
        "balance_transaction": p.items.last().map(|t| t.id.clone()),
    })
}

pub(super) async fn list_payouts(sim: web::Data<Simulator>, req: HttpRequest) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let q = list_query(&req);
    let state = sim.lock();
    let items = state
        .book
        .payouts
        .iter()
        .filter(|p| p.owner == owner)
        .map(|p| (p.created, p.id.clone(), payout_json(p)))
        .collect();
    let (data, has_more) = page(items, &q);
    HttpResponse::Ok()
        .json(json!({"object": "list", "url": "/v1/payouts", "data": data, "has_more": has_more}))
}

/// A balance transaction; with `expand`, its source as the object (a Charge carries the card and
/// billing details Stripe sends, which Counterfoil must not keep).
fn txn_json(sim: &Simulator, state: &super::State, t: &SimTxn, expand: bool) -> Value {
    let source = match (expand, t.kind) {
        (true, "charge") => {
            let session = state.sessions.values().find(|s| s.intent == t.intent);
            match session {
                Some(s) => sim.charge_json(state, s, 0),
                None => json!({"id": t.source, "object": "charge", "amount": t.amount,
                    "payment_intent": t.intent, "billing_details": {"name": "Counter Customer"},
                    "payment_method_details": {"type": "card", "card": {"last4": "4242", "brand": "visa"}}}),
            }
        }
        (true, "refund") => state
            .refunds
            .get(&t.source)
            .map(Simulator::refund_json)
            .unwrap_or(Value::Null),
        _ => json!(t.source),
    };
    json!({
        "id": t.id, "object": "balance_transaction", "amount": t.amount, "fee": t.fee,
        "net": t.amount - t.fee, "currency": "gbp", "type": t.kind, "reporting_category": t.kind,
        "status": "available", "created": t.created, "available_on": t.created, "source": source,
        "fee_details": if t.fee > 0 {
            json!([{"amount": t.fee, "currency": "gbp", "type": "stripe_fee", "description": "Stripe processing fees"}])
        } else { json!([]) },
    })
}

pub(super) async fn list_balance_transactions(
    sim: web::Data<Simulator>,
    req: HttpRequest,
) -> HttpResponse {
    let Some(owner) = sim.owner_of(&req) else {
        return unauthorised();
    };
    let query = req.query_string();
    let payout = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "payout")
        .map(|(_, v)| v.into_owned());
    let expand = query.contains("data.source");
    let q = list_query(&req);
    let state = sim.lock();
    let items = state
        .book
        .payouts
        .iter()
        .filter(|p| p.owner == owner && payout.as_ref().is_none_or(|id| *id == p.id))
        .flat_map(|p| p.items.iter())
        .map(|t| (t.created, t.id.clone(), txn_json(&sim, &state, t, expand)))
        .collect();
    let (data, has_more) = page(items, &q);
    HttpResponse::Ok().json(json!({"object": "list", "url": "/v1/balance_transactions", "data": data, "has_more": has_more}))
}
