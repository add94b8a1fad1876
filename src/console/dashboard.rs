//! The dashboard: today's and yesterday's takings by service and fund, and counts of what needs a
//! person, each linking to where it is dealt with.

use actix_web::{web, HttpResponse};
use chrono::{Days, NaiveDate};
use serde_json::{json, Value};

use super::pages::html;
use super::render::{day_text, layout, money, with};
use super::session::Staff;
use super::{Console, ConsoleError};
use crate::domain::attention::AttentionKind;
use crate::domain::ledger::london_day;
use crate::domain::queries::{PaymentQuery, RegisterQuery};
use crate::domain::refund::RefundState;
use crate::domain::staff::Permission;
use crate::domain::PaymentStatus;
use crate::service::ledger::{Format, LedgerQuery};

/// Today's and yesterday's takings by service and fund, and what needs a person.
pub async fn dashboard(
    console: web::Data<Console>,
    staff: Staff,
) -> Result<HttpResponse, ConsoleError> {
    let services = &console.services;
    let mut attention = Vec::new();
    let refunds_seen = staff.member.may(Permission::ApproveRefund)
        || staff.member.may(Permission::RequestRefund)
        || staff.member.may(Permission::ViewTakings);
    if refunds_seen {
        for (state, label) in [
            (RefundState::Waiting, "Refunds waiting for a second person"),
            (RefundState::Failed, "Refunds the provider did not make"),
            (RefundState::Pending, "Refunds sent and not yet confirmed"),
        ] {
            let found = services
                .staff_refunds
                .register(&RegisterQuery {
                    state: Some(state),
                    limit: 101,
                    ..RegisterQuery::default()
                })
                .await?
                .len();
            let count = if found > 100 {
                "More than 100".to_owned()
            } else {
                found.to_string()
            };
            let href = format!("/console/refunds?state={}", state.as_str());
            attention.push(json!({"label": label, "count": count, "href": href}));
        }
    }
    if staff.member.may(Permission::ViewPayments) {
        let errors = services
            .payments
            .search(&PaymentQuery {
                status: Some(PaymentStatus::Error),
                limit: 100,
                ..PaymentQuery::default()
            })
            .await?
            .len();
        let count = if errors == 100 {
            "100 or more".to_owned()
        } else {
            errors.to_string()
        };
        attention.push(json!({"label": "Payments whose outcome the provider could not give", "count": count, "href": "/console/payments?status=error"}));
        attention.extend(attention_counts(&console).await?);
    }
    let mut days = Vec::new();
    if staff.member.may(Permission::ViewTakings) {
        let today = london_day(console.clock.now());
        let yesterday = today - Days::new(1);
        let query = LedgerQuery {
            from: yesterday,
            to: today,
            service: None,
            format: Format::Json,
        };
        let rows = services.ledger.summary(&query).await?;
        for (label, day) in [("Today", today), ("Yesterday", yesterday)] {
            let rows: Vec<Value> = rows
                .iter()
                .filter(|r| r.date == day.to_string())
                .map(|r| summary_row(&console, r))
                .collect();
            days.push(json!({"label": label, "date": day.to_string(), "date_text": day_text(day), "rows": rows}));
        }
    }
    let context = layout(&console.brand, Some(&staff), "dashboard", "Dashboard");
    let context = with(with(context, "attention", attention), "days", days);
    html(&console, "dashboard.html", context)
}

/// How many items of each kind wait under "Needs attention", each linking to its list.
async fn attention_counts(console: &Console) -> Result<Vec<Value>, ConsoleError> {
    let counts = console.services.attention.counts().await?;
    Ok(AttentionKind::ALL
        .iter()
        .map(|kind| {
            let href = format!("/console/attention?kind={}", kind.as_str());
            json!({"label": kind.dashboard_label(), "count": counts.text_of(*kind), "href": href})
        })
        .collect())
}

/// A takings row for people.
pub(super) fn summary_row(console: &Console, r: &crate::service::ledger::SummaryRow) -> Value {
    let date = NaiveDate::parse_from_str(&r.date, "%Y-%m-%d").ok();
    json!({
        "date": r.date,
        "date_text": date.map(day_text).unwrap_or_else(|| r.date.clone()),
        "service_name": console.service_name(&r.service),
        "fund_code": r.fund_code,
        "payments": r.payments,
        "gross": money(r.gross_pence),
        "refunds_count": r.refunds,
        "refunds": money(r.refunds_pence),
        "net": money(r.net_pence),
    })
}
