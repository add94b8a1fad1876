//! "Needs attention": one queue of what the service could not heal itself, newest first, with the
//! actions that fit each item (ask the provider, retry the notification, mark resolved with a
//! note), each taken in the person's name.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::forms::{decode_cursor, encode_cursor, page_of, query_string};
use super::pages::{html_with_status, FieldProblem, CARD_NUMBER_REFUSED};
use super::render::{layout, money, uk_time, with};
use super::sign_in::see_other;
use super::{Console, ConsoleError, Staff};
use crate::domain::attention::{AttentionAction, AttentionItem, AttentionKind};
use crate::domain::card_guard::contains_card_number;
use crate::domain::staff::Permission;
use crate::domain::ServiceCode;
use crate::service::attention::ActionOutcome;
use crate::service::ServiceError;

const PAGE: u32 = 25;

/// The queue's filters as typed.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct QueueForm {
    kind: String,
    service: String,
    #[serde(skip_serializing)]
    cursor: String,
    #[serde(skip_serializing)]
    done: String,
}

/// The queue, 25 at a time, newest first.
pub async fn queue(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Query<QueueForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ViewPayments)?;
    let form = form.into_inner();
    let banner = done_banner(&form.done);
    queue_page(&console, &staff, &form, banner, StatusCode::OK).await
}

async fn queue_page(
    console: &Console,
    staff: &Staff,
    form: &QueueForm,
    banner: Option<Value>,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let kind = form.kind.parse::<AttentionKind>().ok();
    let service = ServiceCode::parse(form.service.trim())
        .ok()
        .filter(|s| console.service_names.contains_key(s.as_ref()));
    let before = decode_cursor(&form.cursor).and_then(|(at, id)| {
        let (kind, id) = id.split_once(':')?;
        Some((at, kind.parse().ok()?, id.to_owned()))
    });
    let attention = &console.services.attention;
    let found = attention.page(kind, service, before, PAGE + 1).await?;
    let filters = QueueForm {
        kind: kind.map(|k| k.as_str().to_owned()).unwrap_or_default(),
        service: form.service.clone(),
        ..QueueForm::default()
    };
    let query_string = query_string(&filters);
    let (found, next_page) = page_of(found, PAGE, "/console/attention", &query_string, |i| {
        encode_cursor(i.at, &format!("{}:{}", i.kind.as_str(), i.item_id))
    });
    let may_act = staff.member.may(Permission::ActOnAttention);
    let items: Vec<Value> = found
        .iter()
        .map(|i| item_view(console, i, may_act))
        .collect();
    let counts = attention.counts().await?;
    let kinds: Vec<Value> = AttentionKind::ALL
        .iter()
        .map(|k| json!({"value": k.as_str(), "text": k.title(), "count": counts.text_of(*k)}))
        .collect();
    let services: Vec<Value> = console
        .service_names
        .iter()
        .map(|(code, s)| json!({"code": code, "name": s.name}))
        .collect();
    let stuck_minutes = attention.stuck_after().num_minutes();
    let context = layout(&console.brand, Some(staff), "attention", "Needs attention");
    let context = with(with(context, "items", items), "next_page", next_page);
    let context = with(with(context, "kinds", kinds), "services", services);
    let context = with(with(context, "q", &filters), "banner", banner);
    let context = with(context, "stuck_minutes", stuck_minutes);
    html_with_status(console, "attention.html", context, status)
}

/// An item as the page shows it.
fn item_view(console: &Console, item: &AttentionItem, may_act: bool) -> Value {
    let actions: Vec<&str> = if may_act {
        item.kind.actions().iter().map(|a| a.as_str()).collect()
    } else {
        Vec::new()
    };
    json!({
        "kind": item.kind.as_str(),
        "kind_text": item.kind.title(),
        "id": item.item_id,
        "at": uk_time(item.at),
        "payment_id": item.payment_id,
        "request_ref": item.request_ref,
        "service_name": item.service.as_deref().map(|s| console.service_name(s)),
        "amount": item.amount.map(money),
        "what": item.what_happened(),
        "tried": item.what_was_tried(|at| format!("at {}", uk_time(at))),
        "actions": actions,
        "run_id": item.run_id,
    })
}

fn done_banner(done: &str) -> Option<Value> {
    let (title, text) = match done {
        "settled" => (
            "The provider answered",
            "The payment is up to date and no longer needs anyone.",
        ),
        "waiting" => (
            "The provider answered: nothing has changed",
            "The payment is still not finished at the provider. It stays here; ask again later or mark it resolved with a note.",
        ),
        "retried" => (
            "Notification sent again",
            "It is back in the outbox with a fresh set of attempts and will be delivered in the next few seconds.",
        ),
        "resolved" => (
            "Marked as resolved",
            "Your note is kept with the item and in the audit trail under your name.",
        ),
        _ => return None,
    };
    Some(json!({"title": title, "text": text, "success": true}))
}

#[derive(Deserialize)]
pub struct ActionForm {
    csrf_token: String,
    #[serde(default)]
    note: String,
    /// The reconciliation run whose page the person came from, to go back to.
    #[serde(default)]
    back: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct BackQuery {
    back: String,
}

/// A run id to go back to, if `back` is one (letters, digits and `_` only: it becomes a path).
fn run_to_go_back_to(back: &str) -> Option<&str> {
    let plain = back.starts_with("rec_")
        && back.len() <= 64
        && back.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    plain.then_some(back)
}

fn kind_of(path: &(String, String)) -> Result<AttentionKind, ConsoleError> {
    path.0.parse().map_err(|_| ConsoleError::NotFound)
}

/// Asks the provider about the item's payment now.
pub async fn ask_provider(
    console: web::Data<Console>,
    staff: Staff,
    path: web::Path<(String, String)>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, ConsoleError> {
    act(&console, &staff, &path, &form, AttentionAction::AskProvider).await
}

/// Puts the item's notification back in the outbox.
pub async fn retry_notification(
    console: web::Data<Console>,
    staff: Staff,
    path: web::Path<(String, String)>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, ConsoleError> {
    act(
        &console,
        &staff,
        &path,
        &form,
        AttentionAction::RetryNotification,
    )
    .await
}

async fn act(
    console: &Console,
    staff: &Staff,
    path: &(String, String),
    form: &ActionForm,
    action: AttentionAction,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    staff.require(Permission::ActOnAttention)?;
    let kind = kind_of(path)?;
    let actor = staff.actor();
    let result = console
        .services
        .attention
        .act(&actor, kind, &path.1, action, "")
        .await;
    let done = match result {
        Ok(ActionOutcome::Settled) if action == AttentionAction::RetryNotification => "retried",
        Ok(ActionOutcome::Settled) => "settled",
        Ok(ActionOutcome::StillWaiting) => "waiting",
        Err(e) => return refused(console, staff, e).await,
    };
    Ok(see_other(&format!("/console/attention?done={done}#main")))
}

/// Asks for the note that resolving an item needs.
pub async fn confirm_resolve(
    console: web::Data<Console>,
    staff: Staff,
    path: web::Path<(String, String)>,
    query: web::Query<BackQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ActOnAttention)?;
    let back = run_to_go_back_to(&query.back);
    let form = (String::new(), back);
    resolve_page(&console, &staff, &path, &form, Vec::new(), StatusCode::OK).await
}

/// The resolve form: `typed` is the note so far and the run to go back to.
async fn resolve_page(
    console: &Console,
    staff: &Staff,
    path: &(String, String),
    typed: &(String, Option<&str>),
    problems: Vec<FieldProblem>,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let kind = kind_of(path)?;
    let Some(item) = console.services.attention.waiting(kind, &path.1).await? else {
        return refused(console, staff, ServiceError::NotWaiting).await;
    };
    let context = layout(&console.brand, Some(staff), "attention", "Mark as resolved");
    let context = with(context, "item", item_view(console, &item, true));
    let context = with(with(context, "note", &typed.0), "errors", problems);
    let context = with(context, "back", typed.1);
    html_with_status(console, "resolve.html", context, status)
}

/// Marks an item resolved with the person's note.
pub async fn resolve(
    console: web::Data<Console>,
    staff: Staff,
    path: web::Path<(String, String)>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    staff.require(Permission::ActOnAttention)?;
    let kind = kind_of(&path)?;
    let note = form.note.trim();
    let back = run_to_go_back_to(&form.back);
    if contains_card_number(note) {
        let problems = vec![FieldProblem {
            field: "note",
            message: CARD_NUMBER_REFUSED.to_owned(),
        }];
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        let typed = (String::new(), back);
        return resolve_page(&console, &staff, &path, &typed, problems, status).await;
    }
    let actor = staff.actor();
    let result = console
        .services
        .attention
        .act(&actor, kind, &path.1, AttentionAction::Resolve, note)
        .await;
    match result {
        Ok(_) => Ok(see_other(&match back {
            Some(run) => format!("/console/reconciliation/{run}?done=resolved#main"),
            None => "/console/attention?done=resolved#main".to_owned(),
        })),
        Err(ServiceError::Validation(issues)) => {
            let problems = issues
                .into_iter()
                .map(|i| FieldProblem {
                    field: "note",
                    message: i.error.message,
                })
                .collect();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            let typed = (note.to_owned(), back);
            resolve_page(&console, &staff, &path, &typed, problems, status).await
        }
        Err(e) => refused(&console, &staff, e).await,
    }
}

/// An action that could not be taken, on the queue's page (nothing changed, so no redirect).
async fn refused(
    console: &Console,
    staff: &Staff,
    error: ServiceError,
) -> Result<HttpResponse, ConsoleError> {
    let (banner, status) = match error {
        ServiceError::NotWaiting => (
            json!({"title": "This no longer needs anyone", "text": "Someone else dealt with it, or the service healed it, since the page was shown."}),
            StatusCode::CONFLICT,
        ),
        ServiceError::AccountNotConfigured(_) => (
            json!({"title": "The provider cannot be asked", "text": "This payment's provider account is no longer configured. Mark it resolved with a note, or configure the account again."}),
            StatusCode::CONFLICT,
        ),
        e => return Err(e.into()),
    };
    let form = QueueForm::default();
    queue_page(console, staff, &form, Some(banner), status).await
}
