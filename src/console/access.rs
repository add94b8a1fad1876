//! Keys and access, for administrators: API keys (made with a one-time display, an expiry,
//! revoked, with their last use), where CRM notifications go and how the recent ones fared, who
//! signed in recently with which roles, and the console sessions live now, each of which can be
//! ended.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::forms::DateFields;
use super::pages::{html_with_status, CsrfForm, FieldProblem, CARD_NUMBER_REFUSED};
use super::render::{layout, status_text, uk_time, with};
use super::sign_in::see_other;
use super::{Console, ConsoleError, Staff};
use crate::domain::api_key::Role;
use crate::domain::audit::AuditQuery;
use crate::domain::card_guard::contains_card_number;
use crate::domain::ledger::london_days;
use crate::domain::staff::Permission;
use crate::service::ServiceError;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AccessQuery {
    done: String,
}

/// Keys, CRM endpoints, sign-ins and sessions.
pub async fn page(
    console: web::Data<Console>,
    staff: Staff,
    query: web::Query<AccessQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ManageAccess)?;
    let banner = match query.done.as_str() {
        "revoked" => Some(
            json!({"title": "Key revoked", "text": "It is refused from now on, everywhere.", "success": true}),
        ),
        "session_ended" => Some(
            json!({"title": "Session ended", "text": "That browser is signed out at its next request; a copy of its cookie signs nobody in.", "success": true}),
        ),
        _ => None,
    };
    access_page(
        &console,
        &staff,
        &KeyForm::default(),
        Vec::new(),
        banner,
        StatusCode::OK,
    )
    .await
}

async fn access_page(
    console: &Console,
    staff: &Staff,
    form: &KeyForm,
    problems: Vec<FieldProblem>,
    banner: Option<Value>,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let services = &console.services;
    let keys = keys_view(console).await?;
    let endpoints: Vec<Value> = console
        .service_names
        .iter()
        .map(|(code, s)| json!({"service": s.name, "code": code, "url": s.crm_url.as_deref().map(shown_url)}))
        .collect();
    let deliveries: Vec<Value> = services
        .notifications
        .list(None)
        .await?
        .into_iter()
        .take(25)
        .map(|n| {
            json!({"type": n.event_type, "payment_id": n.payment_id,
                        "status": n.status, "status_text": status_text(&n.status),
                        "attempts": n.attempts, "last_error": n.last_error,
                        "created": shown_time(&n.created_at),
                        "delivered": n.delivered_at.as_deref().map(shown_time)})
        })
        .collect();
    let signed_in = AuditQuery {
        action: Some("console.signed_in".into()),
        limit: 25,
        ..AuditQuery::default()
    };
    let (sign_ins, _) = services.audit.search(&signed_in).await?;
    let sign_ins: Vec<Value> = sign_ins
        .iter()
        .map(|e| json!({"at": uk_time(e.at), "who": e.actor_label, "subject": e.actor_key_id}))
        .collect();
    let sessions = sessions_view(console, staff).await?;
    let context = layout(&console.brand, Some(staff), "access", "Keys and access");
    let context = with(with(context, "keys", keys), "endpoints", endpoints);
    let context = with(
        with(context, "deliveries", deliveries),
        "sign_ins",
        sign_ins,
    );
    let context = with(with(context, "sessions", sessions), "banner", banner);
    let context = with(with(context, "form", form), "errors", problems);
    html_with_status(console, "access.html", context, status)
}

/// Every key with its state now.
async fn keys_view(console: &Console) -> Result<Vec<Value>, ConsoleError> {
    let now = console.clock.now();
    let services = &console.services;
    let keys: Vec<Value> = services
        .keys
        .list()
        .await?
        .iter()
        .map(|k| {
            let state = if k.revoked_at.is_some() {
                "Revoked"
            } else if k.expires_at.is_some_and(|at| at <= now) {
                "Expired"
            } else {
                "Active"
            };
            json!({"id": k.id, "label": k.label, "role": k.role.as_str(),
                   "created": uk_time(k.created_at), "expires": k.expires_at.map(uk_time),
                   "last_used": k.last_used_at.map(uk_time), "state": state,
                   "active": state == "Active"})
        })
        .collect();
    Ok(keys)
}

/// The console sessions live now, the person's own marked.
async fn sessions_view(console: &Console, staff: &Staff) -> Result<Vec<Value>, ConsoleError> {
    let services = &console.services;
    let sessions: Vec<Value> = services
        .staff_sessions
        .live(console.idle_timeout, console.absolute_timeout)
        .await?
        .iter()
        .map(|s| {
            json!({"handle": s.handle, "name": s.name, "subject": s.subject,
                        "roles": s.roles.replace(',', ", "), "signed_in": uk_time(s.signed_in_at),
                        "last_seen": uk_time(s.last_seen),
                        "yours": s.subject == staff.member.actor_id()})
        })
        .collect();
    Ok(sessions)
}

/// A CRM address as the page shows it: scheme, host and path (never a query or credentials).
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.path()
        ),
        Err(_) => "(not a valid address)".into(),
    }
}

fn shown_time(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| uk_time(t.with_timezone(&Utc)))
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// The new-key form as typed.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct KeyForm {
    #[serde(skip_serializing)]
    csrf_token: String,
    label: String,
    role: String,
    #[serde(rename = "expires-day")]
    day: String,
    #[serde(rename = "expires-month")]
    month: String,
    #[serde(rename = "expires-year")]
    year: String,
}

impl KeyForm {
    fn read(
        &mut self,
        today: chrono::NaiveDate,
    ) -> Result<(Role, Option<DateTime<Utc>>), Vec<FieldProblem>> {
        let mut problems = Vec::new();
        if contains_card_number(&self.label) {
            self.label.clear();
            problems.push(FieldProblem {
                field: "label",
                message: CARD_NUMBER_REFUSED.to_owned(),
            });
        }
        let label = self.label.trim();
        if label.is_empty() || label.chars().count() > 100 {
            problems.push(FieldProblem {
                field: "label",
                message: "Enter what the key is for, in 100 characters or fewer".into(),
            });
        }
        let role = match self.role.as_str() {
            "crm" => Some(Role::Crm),
            "finance" => Some(Role::Finance),
            "admin" => Some(Role::Admin),
            _ => {
                problems.push(FieldProblem {
                    field: "role",
                    message: "Select what the key may do".into(),
                });
                None
            }
        };
        let typed = DateFields {
            day: self.day.clone(),
            month: self.month.clone(),
            year: self.year.clone(),
        };
        let expires = match typed.read("expires", "The expiry date") {
            Ok(Some(day)) if day <= today => {
                problems.push(FieldProblem {
                    field: "expires",
                    message: "The expiry date must be in the future".into(),
                });
                None
            }
            // The key works until the end of that London day.
            Ok(day) => day.map(|d| london_days(d, d).1),
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        match role {
            Some(role) if problems.is_empty() => Ok((role, expires)),
            _ => Err(problems),
        }
    }
}

/// Makes a key and shows it, once.
pub async fn create_key(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Form<KeyForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    staff.require(Permission::ManageAccess)?;
    let mut form = form.into_inner();
    let today = crate::domain::ledger::london_day(console.clock.now());
    let (role, expires) = match form.read(today) {
        Ok(read) => read,
        Err(problems) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return access_page(&console, &staff, &form, problems, None, status).await;
        }
    };
    let made = console
        .services
        .keys
        .create_expiring(&staff.actor(), role, form.label.trim(), expires)
        .await;
    let (record, token) = match made {
        Ok(made) => made,
        Err(ServiceError::Validation(issues)) => {
            let problems = issues
                .into_iter()
                .map(|i| FieldProblem {
                    field: "label",
                    message: format!("The label {}", i.error.message),
                })
                .collect();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return access_page(&console, &staff, &form, problems, None, status).await;
        }
        Err(e) => return Err(e.into()),
    };
    let context = layout(&console.brand, Some(&staff), "access", "Your new API key");
    let context = with(
        context,
        "key",
        json!({"id": record.id, "label": record.label,
        "role": record.role.as_str(), "expires": record.expires_at.map(uk_time), "token": token}),
    );
    let mut response = html_with_status(&console, "key_created.html", context, StatusCode::OK)?;
    // Shown once: never kept by a browser's cache or history.
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// Asks an administrator to confirm revoking a key.
pub async fn confirm_revoke(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ManageAccess)?;
    let keys = console.services.keys.list().await?;
    let key = keys
        .iter()
        .find(|k| k.id == *id && k.revoked_at.is_none())
        .ok_or(ConsoleError::NotFound)?;
    let context = layout(&console.brand, Some(&staff), "access", "Revoke this key");
    let context = with(
        context,
        "key",
        json!({"id": key.id, "label": key.label, "role": key.role.as_str(),
        "last_used": key.last_used_at.map(uk_time)}),
    );
    html_with_status(&console, "revoke_key.html", context, StatusCode::OK)
}

/// Revokes a key.
pub async fn revoke_key(
    console: web::Data<Console>,
    staff: Staff,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    staff.require(Permission::ManageAccess)?;
    if !console.services.keys.revoke(&staff.actor(), &id).await? {
        return Err(ConsoleError::NotFound);
    }
    Ok(see_other("/console/access?done=revoked#keys"))
}

#[derive(Deserialize)]
pub struct SessionForm {
    csrf_token: String,
    handle: String,
}

/// Ends one live console session.
pub async fn end_session(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Form<SessionForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    staff.require(Permission::ManageAccess)?;
    console
        .services
        .staff_sessions
        .revoke(&form.handle, &staff.actor())
        .await?;
    Ok(see_other("/console/access?done=session_ended#sessions"))
}
