//! The data-protection officer's pages: find a person's records by CRM reference or email, their
//! subject export (JSON, CSV), erasure after a confirmation that shows what is pseudonymised and
//! what is kept, and retention (settings, the next and last sweep, a dry-run preview).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::pages::{html_with_status, refuse_card_numbers, CsrfForm, FieldProblem};
use super::render::{layout, money, status_text, uk_time, with};
use super::sign_in::see_other;
use super::{Console, ConsoleError, Staff};
use crate::domain::queries::PaymentQuery;
use crate::domain::retention::ERASED;
use crate::domain::staff::Permission;
use crate::domain::{Email, Payment, RequestRef};
use crate::service::data_protection::SweepReport;

/// The most payments one search shows.
const FOUND_MAX: u32 = 200;

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct FindForm {
    reference: String,
    email: String,
}

/// Find a person's records; retention at a glance.
pub async fn home(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Query<FindForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ProtectData)?;
    let mut form = form.into_inner();
    let mut problems = refuse_card_numbers([
        ("reference", &mut form.reference),
        ("email", &mut form.email),
    ]);
    let reference = form.reference.trim();
    let email = form.email.trim();
    if !email.is_empty() && Email::parse(email).is_err() {
        problems.push(FieldProblem {
            field: "email",
            message: "Enter an email address in the correct format, like name@example.com".into(),
        });
    }
    let searched = problems.is_empty() && !(reference.is_empty() && email.is_empty());
    let found = if searched {
        let query = PaymentQuery {
            request_ref: Some(reference.to_owned()).filter(|r| !r.is_empty()),
            email: Some(email.to_owned()).filter(|e| !e.is_empty()),
            limit: FOUND_MAX,
            ..PaymentQuery::default()
        };
        console.services.payments.search(&query).await?
    } else {
        Vec::new()
    };
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let rows: Vec<Value> = found.iter().map(|p| payment_row(&console, p)).collect();
    let context = layout(
        &console.brand,
        Some(&staff),
        "data-protection",
        "Data protection",
    );
    let context = with(with(context, "q", &form), "errors", problems);
    let context = with(with(context, "found", rows), "searched", searched);
    let context = with(context, "retention", retention(&console).await?);
    html_with_status(&console, "data_protection.html", context, status)
}

fn payment_row(console: &Console, p: &Payment) -> Value {
    json!({
        "id": p.id.to_string(), "request_ref": p.request_ref,
        "service_name": console.service_name(&p.service),
        "amount": money(p.amount), "status": p.status.as_str(),
        "status_text": status_text(p.status.as_str()),
        "created": uk_time(p.created_at),
        "email": p.email, "description": p.description,
        "metadata": p.metadata.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>(),
        "erased": p.description == ERASED,
    })
}

async fn retention(console: &Console) -> Result<Value, ConsoleError> {
    let status = console.services.data_protection.retention_status().await?;
    let last = status.last_sweep.as_ref().map(|e| {
        json!({"at": uk_time(e.at), "by": e.actor_label,
               "pseudonymised": e.detail["payments_pseudonymised"],
               "removed": e.detail["payments_removed"]})
    });
    Ok(json!({
        "personal_data_days": status.personal_data_days,
        "keep_years": status.keep_years_after_financial_year,
        "sweeps_here": status.sweeps_here,
        "interval_minutes": status.interval.as_secs() / 60,
        "next": status.next_sweep.map(uk_time),
        "last": last,
    }))
}

/// What the sweep would do now, changing nothing.
pub async fn preview(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    staff.require(Permission::ProtectData)?;
    let report: SweepReport = console
        .services
        .data_protection
        .preview_sweep(&staff.actor())
        .await?;
    let context = layout(
        &console.brand,
        Some(&staff),
        "data-protection",
        "Data protection",
    );
    let context = with(context, "q", FindForm::default());
    let context = with(context, "retention", retention(&console).await?);
    let preview = json!({
        "pseudonymise": report.payments_pseudonymised,
        "remove": report.payments_removed,
    });
    let context = with(context, "preview", preview);
    html_with_status(&console, "data_protection.html", context, StatusCode::OK)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubjectQuery {
    reference: String,
    done: String,
}

fn request_ref(value: &str) -> Result<RequestRef, ConsoleError> {
    RequestRef::parse(value.trim()).map_err(|_| ConsoleError::NotFound)
}

async fn held_for(console: &Console, reference: &RequestRef) -> Result<Vec<Payment>, ConsoleError> {
    let query = PaymentQuery {
        request_ref: Some(reference.as_ref().to_owned()),
        limit: FOUND_MAX,
        ..PaymentQuery::default()
    };
    Ok(console.services.payments.search(&query).await?)
}

/// Everything held for one CRM reference, with its exports and the way to erase it.
pub async fn subject(
    console: web::Data<Console>,
    staff: Staff,
    query: web::Query<SubjectQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ProtectData)?;
    let reference = request_ref(&query.reference)?;
    let held = held_for(&console, &reference).await?;
    let rows: Vec<Value> = held.iter().map(|p| payment_row(&console, p)).collect();
    let banner = (query.done == "erased").then(|| {
        json!({"title": "Personal data erased", "text": "Every personal field held for this reference has been replaced with [erased]. Amounts, dates, statuses and references are kept for the accounts.", "success": true})
    });
    let title = format!("Records for {}", reference.as_ref());
    let context = layout(&console.brand, Some(&staff), "data-protection", &title);
    let context = with(
        with(context, "reference", reference.as_ref()),
        "payments",
        rows,
    );
    let context = with(context, "banner", banner);
    let context = with(
        context,
        "all_erased",
        held.iter().all(|p| p.description == ERASED),
    );
    html_with_status(&console, "subject.html", context, StatusCode::OK)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExportQuery {
    reference: String,
}

/// The subject export as JSON.
pub async fn export_json(
    console: web::Data<Console>,
    staff: Staff,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ConsoleError> {
    export(&console, &staff, &query.reference, ExportFormat::Json).await
}

/// The subject export as CSV (a byte-order mark for spreadsheets).
pub async fn export_csv(
    console: web::Data<Console>,
    staff: Staff,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ConsoleError> {
    export(&console, &staff, &query.reference, ExportFormat::Csv).await
}

enum ExportFormat {
    Json,
    Csv,
}

async fn export(
    console: &Console,
    staff: &Staff,
    reference: &str,
    format: ExportFormat,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ProtectData)?;
    let reference = request_ref(reference)?;
    let export = console
        .services
        .data_protection
        .export(&staff.actor(), &reference)
        .await?;
    Ok(match format {
        ExportFormat::Json => {
            let body = serde_json::to_string_pretty(&export).map_err(|_| ConsoleError::Template)?;
            download("application/json", &reference, "json", body)
        }
        ExportFormat::Csv => {
            let body = format!("\u{feff}{}", export.csv());
            download("text/csv", &reference, "csv", body)
        }
    })
}

fn download(kind: &str, reference: &RequestRef, ext: &str, body: String) -> HttpResponse {
    // The reference is the CRM's; only its plain characters go into the file's name.
    let name: String = reference
        .as_ref()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(60)
        .collect();
    HttpResponse::Ok()
        .content_type(format!("{kind}; charset=utf-8"))
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"subject-export-{name}.{ext}\""),
        ))
        .body(body)
}

/// What erasure will pseudonymise and what it keeps, before it is done.
pub async fn confirm_erase(
    console: web::Data<Console>,
    staff: Staff,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ProtectData)?;
    let reference = request_ref(&query.reference)?;
    let held = held_for(&console, &reference).await?;
    if held.is_empty() {
        return Err(ConsoleError::NotFound);
    }
    let rows: Vec<Value> = held.iter().map(|p| payment_row(&console, p)).collect();
    let context = layout(
        &console.brand,
        Some(&staff),
        "data-protection",
        "Erase personal data",
    );
    let context = with(
        with(context, "reference", reference.as_ref()),
        "payments",
        rows,
    );
    html_with_status(&console, "erase.html", context, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct EraseForm {
    csrf_token: String,
    reference: String,
}

/// Erases the personal data held for a CRM reference; back to its records.
pub async fn erase(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Form<EraseForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    staff.require(Permission::ProtectData)?;
    let reference = request_ref(&form.reference)?;
    console
        .services
        .data_protection
        .erase(&staff.actor(), &reference)
        .await?;
    let mut back = url::form_urlencoded::Serializer::new(String::new());
    back.append_pair("reference", reference.as_ref())
        .append_pair("done", "erased");
    Ok(see_other(&format!(
        "/console/data-protection/subject?{}#main",
        back.finish()
    )))
}
