//! Income batches in the console: the list (newest first, with where each stands), a batch's page
//! (its figures, its rows, how it differs from its ledger day, who posted it and when), its
//! document downloaded exactly as built, and the acts a person takes: imported, post again.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::forms::page_of;
use super::pages::html;
use super::render::{day_text, layout, money, uk_time, with};
use super::sign_in::see_other;
use super::{Console, ConsoleError, Staff};
use crate::domain::income::batch::{BatchStatus, IncomeBatch, LineElsewhere};
use crate::domain::income::document::Layout;
use crate::domain::income::PostingRow;
use crate::domain::ledger::london_day;
use crate::domain::staff::Permission;

const BATCHES_PAGE: u32 = 25;
/// Rows shown on a batch's page at a time (the download holds them all).
const ROWS_PAGE: usize = 100;

/// The income pages' routes.
pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/income", web::get().to(batches))
        .route("/income/batches/{id}", web::get().to(batch))
        .route("/income/batches/{id}/document", web::get().to(document))
        .route("/income/batches/{id}/imported", web::post().to(imported))
        .route(
            "/income/batches/{id}/post-again",
            web::post().to(post_again),
        )
        .route("/income/months", web::get().to(super::months::months))
        .route(
            "/income/months/{period}/lock",
            web::get().to(super::months::confirm_lock),
        )
        .route(
            "/income/months/{period}/lock",
            web::post().to(super::months::lock),
        )
        .route("/payouts", web::get().to(super::payouts::payouts))
        .route("/payouts/read", web::post().to(super::payouts::read_now))
        .route(
            "/payouts/{account}/{id}",
            web::get().to(super::payouts::payout),
        );
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    cursor: String,
}

/// Where a batch stands, in words, and the tag's colour.
fn standing(batch: &IncomeBatch) -> (&'static str, String) {
    if batch.row_count == 0 && batch.status == BatchStatus::Posted {
        return ("posted", "Nothing taken: closed as built".into());
    }
    match batch.status {
        BatchStatus::Posted => (
            "posted",
            match (&batch.posted_by_label, batch.posted_at) {
                (Some(by), Some(at)) => format!("Posted by {by}, {}", uk_time(at)),
                _ => "Posted".into(),
            },
        ),
        BatchStatus::Failed => ("open", "Refused: needs a person".into()),
        BatchStatus::Ready if batch.pushed && batch.outcome_unknown => (
            "running",
            "Sent, no answer yet: checking before sending again".into(),
        ),
        BatchStatus::Ready if batch.pushed => ("running", "Waiting to be posted".into()),
        BatchStatus::Ready => ("running", "Ready to download and import".into()),
    }
}

fn format_name(layout: &Layout) -> &'static str {
    match layout {
        Layout::LocalgovIms { .. } => "LocalGov IMS import",
        Layout::File(_) => "File",
    }
}

pub(super) fn batch_view(batch: &IncomeBatch) -> Value {
    let (status, status_text) = standing(batch);
    json!({
        "id": batch.id, "reference": batch.reference, "account": batch.account,
        "number": batch.number, "day": day_text(batch.day), "period": crate::domain::income::period_name(&batch.period),
        "rows": batch.row_count, "total": money(batch.control_total),
        "checksum": batch.checksum, "built": uk_time(batch.built_at),
        "status": status, "status_text": status_text, "format": format_name(&batch.layout),
        "pushed": batch.pushed, "attempts": batch.attempts, "last_error": batch.last_error,
        "late_period": crate::domain::income::period_of(batch.day) != batch.period,
    })
}

/// The batches, newest first.
pub async fn batches(
    console: web::Data<Console>,
    staff: Staff,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ViewTakings)?;
    let income = &console.services.income;
    let before = query.cursor.split_once('~').and_then(|(day, account)| {
        let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
        Some((day, account.to_owned()))
    });
    let found = income.batches(before, BATCHES_PAGE + 1).await?;
    let (found, next_page) = page_of(found, BATCHES_PAGE, "/console/income", "", |b| {
        format!("{}~{}", b.day, b.account)
    });
    let rows: Vec<Value> = found.iter().map(batch_view).collect();
    let context = layout(&console.brand, Some(&staff), "income", "Income batches");
    let context = with(with(context, "batches", rows), "next_page", next_page);
    let context = with(context, "enabled", income.enabled());
    html(&console, "income.html", context)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BatchQuery {
    from: usize,
    done: String,
}

fn row_view(row: &PostingRow) -> Value {
    json!({
        "line": row.line_number, "kind": row.kind, "line_id": row.line_id,
        "payment_id": row.payment_id, "service": row.service,
        "at": uk_time(row.at), "gross": money(row.gross), "vat": money(row.vat_amount),
        "fund": row.fund_code, "mop": row.mop_code, "vat_code": row.vat_code,
        "account_reference": row.account_reference, "unallocated": row.unallocated,
    })
}

fn elsewhere_view(line: &LineElsewhere) -> Value {
    json!({
        "kind": line.kind, "line_id": line.line_id, "payment_id": line.payment_id,
        "at": uk_time(line.at), "amount": money(line.amount),
        "batch_id": line.batch_id, "batch_reference": line.batch_reference,
    })
}

/// How a batch differs from its London day in the ledger as it stands now: rows it holds from
/// other days (learnt late), and the day's payments and refunds posted in other batches or in
/// none yet.
fn differences(batch: &IncomeBatch, rows: &[PostingRow], elsewhere: &[LineElsewhere]) -> Value {
    let from_other_days: Vec<Value> = rows
        .iter()
        .filter(|r| london_day(r.at) != batch.day)
        .map(row_view)
        .collect();
    let of_day: i64 = rows
        .iter()
        .filter(|r| london_day(r.at) == batch.day)
        .map(|r| r.gross)
        .sum::<i64>()
        + elsewhere.iter().map(|l| l.amount).sum::<i64>();
    json!({
        "ledger_day_total": money(of_day),
        "same": from_other_days.is_empty() && elsewhere.is_empty(),
        "from_other_days": from_other_days,
        "elsewhere": elsewhere.iter().map(elsewhere_view).collect::<Vec<_>>(),
    })
}

/// A batch: its figures and standing, the acts open to the person, its rows (100 a page) and
/// how it differs from its ledger day.
pub async fn batch(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
    query: web::Query<BatchQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ViewTakings)?;
    let income = &console.services.income;
    let (batch, rows) = income.batch(&id).await?.ok_or(ConsoleError::NotFound)?;
    let elsewhere = income.day_elsewhere(&batch).await?;
    let shown: Vec<Value> = rows
        .iter()
        .skip(query.from)
        .take(ROWS_PAGE)
        .map(row_view)
        .collect();
    let next_page = (rows.len() > query.from + ROWS_PAGE).then(|| {
        format!(
            "/console/income/batches/{}?from={}",
            batch.id,
            query.from + ROWS_PAGE
        )
    });
    let may_act = staff.member.may(Permission::PostIncome);
    let banner = match query.done.as_str() {
        "imported" => Some(
            json!({"title": "Marked as imported", "text": "Your name and the time are kept with the batch and in the audit trail.", "success": true}),
        ),
        "again" => Some(
            json!({"title": "It will be posted again", "text": "Before anything is sent, the income system is asked which rows it already holds.", "success": true}),
        ),
        "already" => Some(
            json!({"title": "Nothing changed", "text": "The batch had already been posted, or was no longer waiting for a person.", "success": false}),
        ),
        _ => None,
    };
    let title = format!("Income batch {}", batch.reference);
    let context = layout(&console.brand, Some(&staff), "income", &title);
    let context = with(with(context, "batch", batch_view(&batch)), "banner", banner);
    let context = with(with(context, "rows", shown), "next_page", next_page);
    let context = with(
        context,
        "differences",
        differences(&batch, &rows, &elsewhere),
    );
    let context = with(
        context,
        "unallocated",
        rows.iter().filter(|r| r.unallocated).count(),
    );
    // A file is imported by a person; a refused push may be keyed in by hand instead.
    let context = with(
        context,
        "may_mark_imported",
        may_act
            && match batch.status {
                BatchStatus::Posted => false,
                BatchStatus::Failed => true,
                BatchStatus::Ready => !batch.pushed,
            },
    );
    let context = with(
        context,
        "may_post_again",
        may_act && batch.status == BatchStatus::Failed,
    );
    html(&console, "income_batch.html", context)
}

/// The batch's document, byte for byte as built (checked against its checksum first).
pub async fn document(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    use base64::Engine;
    use sha2::Digest;
    staff.require(Permission::ViewTakings)?;
    let (batch, bytes) = console
        .services
        .income
        .document(&id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let (kind, extension) = match batch.layout {
        Layout::LocalgovIms { .. } => ("application/json", "json"),
        Layout::File(_) => ("text/csv; charset=utf-8", "csv"),
    };
    let digest = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&bytes));
    Ok(HttpResponse::Ok()
        .content_type(kind)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{}.{extension}\"", batch.reference),
        ))
        // RFC 9530: what the bytes hash to, the checksum the batch was built with.
        .insert_header(("Repr-Digest", format!("sha-256=:{digest}:")))
        .body(bytes))
}

/// A form whose only field is the page's CSRF token (an act on one thing the address names).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActForm {
    csrf_token: String,
}

impl ActForm {
    pub(super) fn token(&self) -> &str {
        &self.csrf_token
    }
}

/// What a person may do to a batch from its page.
#[derive(Clone, Copy)]
enum BatchAct {
    /// The file was imported, or a refused push keyed in by hand.
    Imported,
    /// A refused push, to be sent again.
    PostAgain,
}

/// A person says the file was imported (or a refused push was keyed in by hand).
pub async fn imported(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
    form: web::Form<ActForm>,
) -> Result<HttpResponse, ConsoleError> {
    act(&console, &staff, &id, &form, BatchAct::Imported).await
}

/// A person asks for a refused batch to go again.
pub async fn post_again(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
    form: web::Form<ActForm>,
) -> Result<HttpResponse, ConsoleError> {
    act(&console, &staff, &id, &form, BatchAct::PostAgain).await
}

async fn act(
    console: &Console,
    staff: &Staff,
    id: &str,
    form: &ActForm,
    act: BatchAct,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    staff.require(Permission::PostIncome)?;
    let actor = staff.actor();
    let (by_id, by_label) = (actor.id(), actor.label());
    let income = &console.services.income;
    let (done, happened) = match act {
        BatchAct::Imported => ("imported", income.mark_posted(id, &by_id, &by_label).await?),
        BatchAct::PostAgain => ("again", income.post_again(id, &by_id, &by_label).await?),
    };
    // Done already (by someone else, or a second press): the page says so.
    let done = if happened { done } else { "already" };
    Ok(see_other(&format!(
        "/console/income/batches/{id}?done={done}#main"
    )))
}
