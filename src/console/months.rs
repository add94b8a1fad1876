//! Month end in the console: what the batches posted into each month per fund, and locking a
//! month that is over (after which nothing is posted into it; late items go to the next open one).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};

use super::income::ActForm;
use super::pages::{html, html_with_status};
use super::render::{layout, money, uk_time, with};
use super::sign_in::see_other;
use super::{Console, ConsoleError, Staff};
use crate::domain::income::batch::{LockedPeriod, PeriodFundTotal};
use crate::domain::income::{period_name as month_name, period_of};
use crate::domain::ledger::london_day;
use crate::domain::staff::Permission;

/// Months shown, latest first.
const MONTHS_SHOWN: u32 = 12;

/// A month that is a real `YYYY-MM` and over (in London) by now.
fn is_over(period: &str, today: NaiveDate) -> bool {
    NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").is_ok()
        && period.len() == 7
        && period < period_of(today).as_str()
}

fn month_view(
    period: &str,
    funds: &[&PeriodFundTotal],
    locked: Option<&LockedPeriod>,
    may_lock: bool,
) -> Value {
    json!({
        "period": period, "name": month_name(period),
        "funds": funds.iter().map(|f| json!({"fund": f.fund_code, "rows": f.rows, "total": money(f.total)})).collect::<Vec<_>>(),
        "rows": funds.iter().map(|f| f.rows).sum::<i64>(),
        "total": money(funds.iter().map(|f| f.total).sum()),
        "locked": locked.map(|l| format!("Locked by {}, {}", l.locked_by_label, uk_time(l.locked_at))),
        "may_lock": may_lock && locked.is_none(),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MonthsQuery {
    done: String,
}

/// Each month's postings per fund and whether it is locked.
pub async fn months(
    console: web::Data<Console>,
    staff: Staff,
    query: web::Query<MonthsQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ViewTakings)?;
    let income = &console.services.income;
    let totals = income.period_totals(MONTHS_SHOWN).await?;
    let locked = income.locked_periods().await?;
    let mut periods: BTreeMap<&str, Vec<&PeriodFundTotal>> = BTreeMap::new();
    for t in &totals {
        periods.entry(&t.period).or_default().push(t);
    }
    for l in &locked {
        periods.entry(&l.period).or_default();
    }
    let today = london_day(console.clock.now());
    let may_lock = staff.member.may(Permission::PostIncome);
    let rows: Vec<Value> = periods
        .iter()
        .rev()
        .map(|(period, funds)| {
            let lock = locked.iter().find(|l| l.period == *period);
            month_view(period, funds, lock, may_lock && is_over(period, today))
        })
        .collect();
    let banner = (query.done == "locked").then(|| json!({"title": "Month locked", "text": "Nothing more is posted into it. A payment or refund learnt late goes into the next open month.", "success": true}));
    let context = layout(&console.brand, Some(&staff), "income", "Month end");
    let context = with(with(context, "months", rows), "banner", banner);
    html(&console, "income_months.html", context)
}

/// The month's totals again, and what locking it means, before it is done.
pub async fn confirm_lock(
    console: web::Data<Console>,
    staff: Staff,
    period: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::PostIncome)?;
    lock_page(&console, &staff, &period, StatusCode::OK).await
}

async fn lock_page(
    console: &Console,
    staff: &Staff,
    period: &str,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let today = london_day(console.clock.now());
    if !is_over(period, today) {
        return Err(ConsoleError::NotFound);
    }
    let income = &console.services.income;
    let totals = income.period_totals(MONTHS_SHOWN * 10).await?;
    let funds: Vec<&PeriodFundTotal> = totals.iter().filter(|t| t.period == period).collect();
    let locked = income.locked_periods().await?;
    let lock = locked.iter().find(|l| l.period == period);
    let title = format!("Lock {}", month_name(period));
    let context = layout(&console.brand, Some(staff), "income", &title);
    let context = with(context, "month", month_view(period, &funds, lock, true));
    html_with_status(console, "income_lock.html", context, status)
}

/// Locks a month that is over.
pub async fn lock(
    console: web::Data<Console>,
    staff: Staff,
    period: web::Path<String>,
    form: web::Form<ActForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(form.token())?;
    staff.require(Permission::PostIncome)?;
    if !is_over(&period, london_day(console.clock.now())) {
        return Err(ConsoleError::NotFound);
    }
    let actor = staff.actor();
    console
        .services
        .income
        .lock_period(&period, &actor.id(), &actor.label())
        .await?;
    Ok(see_other("/console/income/months?done=locked#main"))
}
