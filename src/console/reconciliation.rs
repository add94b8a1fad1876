//! Reconciliation in the console: the runs (nightly and by hand) newest first with what each
//! found, a run started for an account and a London day, a run's page with its progress and its
//! discrepancies (ours beside the provider's, paged), and their CSV.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::forms::{decode_cursor, encode_cursor, page_of, uk_csv_time, DateFields};
use super::pages::{html_with_status, FieldProblem};
use super::render::{day_text, layout, uk_time, with};
use super::sign_in::see_other;
use super::{Console, ConsoleError, Staff};
use crate::domain::ledger::{csv_raw, csv_text, london_day};
use crate::domain::reconciliation::{Discrepancy, ReconciliationRun, RunStatus, RunTally};
use crate::domain::staff::Permission;

const RUNS_PAGE: u32 = 25;
const DISCREPANCIES_PAGE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunsQuery {
    cursor: String,
}

/// The runs, newest first, and the form that starts one.
pub async fn runs(
    console: web::Data<Console>,
    staff: Staff,
    query: web::Query<RunsQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ViewTakings)?;
    let before = decode_cursor(&query.cursor);
    let form = StartForm::default();
    runs_page(&console, &staff, before, &form, Vec::new(), StatusCode::OK).await
}

async fn runs_page(
    console: &Console,
    staff: &Staff,
    before: Option<(DateTime<Utc>, String)>,
    form: &StartForm,
    problems: Vec<FieldProblem>,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let reconciliation = &console.services.reconciliation;
    let found = reconciliation.runs(before, RUNS_PAGE + 1).await?;
    let (found, next_page) = page_of(found, RUNS_PAGE, "/console/reconciliation", "", |(r, _)| {
        encode_cursor(r.started_at, &r.id)
    });
    let rows: Vec<Value> = found.iter().map(|(r, t)| run_view(r, t)).collect();
    let context = layout(
        &console.brand,
        Some(staff),
        "reconciliation",
        "Reconciliation",
    );
    let context = with(with(context, "runs", rows), "next_page", next_page);
    let context = with(context, "accounts", reconciliation.accounts());
    let context = with(with(context, "form", form), "errors", problems);
    let context = with(
        context,
        "may_reconcile",
        staff.member.may(Permission::Reconcile),
    );
    html_with_status(console, "reconciliation.html", context, status)
}

/// A run as the pages show it.
fn run_view(run: &ReconciliationRun, tally: &RunTally) -> Value {
    let first_day = london_day(run.period_from);
    let last_day = london_day(run.period_to - chrono::Duration::seconds(1));
    let period = if first_day == last_day {
        day_text(first_day)
    } else {
        format!("{} to {}", day_text(first_day), day_text(last_day))
    };
    let by = if run.requested_by == "nightly" {
        "Nightly run".to_owned()
    } else if run.requested_by_label.is_empty() {
        run.requested_by.clone()
    } else {
        run.requested_by_label.clone()
    };
    json!({
        "id": run.id, "account": run.account, "period": period, "by": by,
        "started": uk_time(run.started_at), "finished": run.finished_at.map(uk_time),
        "status": run.status.as_str(),
        "status_text": match run.status {
            RunStatus::Running => "Running",
            RunStatus::Completed => "Finished",
            RunStatus::Failed => "Failed",
        },
        "running": run.status == RunStatus::Running,
        "provider_payments": run.provider_payments, "provider_refunds": run.provider_refunds,
        "local_payments": run.local_payments, "error": run.error,
        "found": tally.found, "healed": tally.healed, "resolved": tally.resolved,
        "open": tally.open(),
    })
}

/// The start form as typed.
#[derive(Debug, Default, Clone, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct StartForm {
    #[serde(skip_serializing)]
    csrf_token: String,
    account: String,
    #[serde(rename = "day-day")]
    day: String,
    #[serde(rename = "day-month")]
    month: String,
    #[serde(rename = "day-year")]
    year: String,
}

/// Starts a run for an account and a London day; on to the run's page.
pub async fn start(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Form<StartForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    staff.require(Permission::Reconcile)?;
    let reconciliation = &console.services.reconciliation;
    let mut problems = Vec::new();
    if !reconciliation.accounts().contains(&form.account) {
        problems.push(FieldProblem {
            field: "account",
            message: "Select the provider account to reconcile".into(),
        });
    }
    let typed = DateFields {
        day: form.day.clone(),
        month: form.month.clone(),
        year: form.year.clone(),
    };
    let today = london_day(console.clock.now());
    let day = match typed.read("day", "The day") {
        Ok(Some(day)) if day > today => {
            problems.push(FieldProblem {
                field: "day",
                message: "The day must be today or in the past".into(),
            });
            None
        }
        Ok(Some(day)) => Some(day),
        Ok(None) => {
            problems.push(FieldProblem {
                field: "day",
                message: "Enter the day to reconcile".into(),
            });
            None
        }
        Err(problem) => {
            problems.push(problem);
            None
        }
    };
    let Some(day) = day.filter(|_| problems.is_empty()) else {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return runs_page(&console, &staff, None, &form, problems, status).await;
    };
    let id = reconciliation
        .start(&staff.actor(), &form.account, day)
        .await?;
    Ok(see_other(&format!(
        "/console/reconciliation/{id}?done=started#main"
    )))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunQuery {
    after: String,
    done: String,
}

/// A run: what it read, its progress while running, and its discrepancies, 50 a page.
pub async fn run(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
    query: web::Query<RunQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ViewTakings)?;
    let reconciliation = &console.services.reconciliation;
    let (run, tally) = reconciliation
        .summary(&id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let after = query.after.parse::<i64>().ok();
    let found = reconciliation
        .discrepancies(&run.id, after, DISCREPANCIES_PAGE + 1)
        .await?;
    let path = format!("/console/reconciliation/{}", run.id);
    let (found, next) = page_of(found, DISCREPANCIES_PAGE, &path, "", |d| d.id.to_string());
    let next_page = next.map(|link| link.replace("cursor=", "after="));
    let may_resolve = staff.member.may(Permission::ActOnAttention);
    let rows: Vec<Value> = found
        .iter()
        .map(|d| discrepancy_view(d, may_resolve))
        .collect();
    let banner = match query.done.as_str() {
        "started" => Some(
            json!({"title": "Reconciliation started", "text": "It reads the provider's records, then compares them with ours. Refresh this page to follow it.", "success": true}),
        ),
        "resolved" => Some(
            json!({"title": "Marked as resolved", "text": "Your note is kept with the difference and in the audit trail under your name.", "success": true}),
        ),
        _ => None,
    };
    let title = format!("Reconciliation run {}", run.id);
    let context = layout(&console.brand, Some(&staff), "reconciliation", &title);
    let context = with(
        with(context, "run", run_view(&run, &tally)),
        "banner",
        banner,
    );
    let context = with(with(context, "discrepancies", rows), "next_page", next_page);
    html_with_status(&console, "reconciliation_run.html", context, StatusCode::OK)
}

fn discrepancy_view(d: &Discrepancy, may_resolve: bool) -> Value {
    let (state, state_text) = match (&d.resolution, d.healed) {
        (_, true) => ("healed", "Healed".to_owned()),
        (Some(r), false) => (
            "resolved",
            format!("Resolved by {}: {}", r.by_label, r.note),
        ),
        (None, false) => ("open", "Needs a person".to_owned()),
    };
    json!({
        "id": d.id, "kind": d.kind.as_str(), "kind_text": d.kind.title(),
        "payment_id": d.payment_id, "provider_payment_id": d.provider_payment_id,
        "ours": d.ours, "theirs": d.theirs, "note": d.note,
        "state": state, "state_text": state_text,
        "resolved_at": d.resolution.as_ref().map(|r| uk_time(r.at)),
        "may_resolve": may_resolve && d.is_open(),
    })
}

const CSV_HEADER: &str = "\u{feff}run_id,number,kind,payment_id,provider_payment_id,ours,theirs,healed,run_note,resolved_by,resolved_uk_time (Europe/London),resolution_note\r\n";

/// Every discrepancy of a run as CSV (UK times, a byte-order mark for spreadsheets).
pub async fn csv(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ViewTakings)?;
    let reconciliation = &console.services.reconciliation;
    let (run, _) = reconciliation
        .summary(&id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let mut body = String::from(CSV_HEADER);
    let mut after = None;
    loop {
        let page = reconciliation.discrepancies(&run.id, after, 500).await?;
        for d in &page {
            let resolution = d.resolution.as_ref();
            let cells = [
                csv_raw(&run.id),
                d.id.to_string(),
                d.kind.as_str().to_owned(),
                csv_raw(d.payment_id.as_deref().unwrap_or("")),
                csv_text(d.provider_payment_id.as_deref().unwrap_or("")),
                csv_text(d.ours.as_deref().unwrap_or("")),
                csv_text(d.theirs.as_deref().unwrap_or("")),
                d.healed.to_string(),
                csv_text(&d.note),
                csv_text(resolution.map_or("", |r| r.by_label.as_str())),
                uk_csv_time(resolution.map(|r| r.at)),
                csv_text(resolution.map_or("", |r| r.note.as_str())),
            ];
            body.push_str(&cells.join(","));
            body.push_str("\r\n");
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(last.id),
            _ => break,
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"reconciliation-{}.csv\"", run.id),
        ))
        .body(body))
}
