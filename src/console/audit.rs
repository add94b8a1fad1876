//! The audit trail for the data-protection officer and administrators: filtered by who, what,
//! when and what it was done to, newest first and paged, with the last verification of its hash
//! chain, the chain's head now, and a way to verify it again.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::forms::{query_string, DateRange};
use super::pages::{html_with_status, refuse_card_numbers, CsrfForm, FieldProblem};
use super::render::{layout, uk_time, with};
use super::sign_in::see_other;
use super::{Console, ConsoleError, Staff};
use crate::domain::audit::{AuditEntry, AuditQuery};
use crate::domain::ledger::london_days;
use crate::domain::staff::Permission;

const PAGE: u32 = 50;

/// The trail's filters as typed.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct TrailForm {
    who: String,
    action: String,
    reference: String,
    #[serde(flatten)]
    dates: DateRange,
    #[serde(skip_serializing)]
    cursor: String,
    #[serde(skip_serializing)]
    done: String,
}

impl TrailForm {
    fn parse(&mut self) -> Result<AuditQuery, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let fields = [
            ("who", &mut self.who),
            ("action", &mut self.action),
            ("reference", &mut self.reference),
        ];
        problems.extend(refuse_card_numbers(
            fields.into_iter().chain(self.dates.boxes_mut()),
        ));
        let given = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned);
        let (from, to) = self.dates.read(&mut problems);
        let query = AuditQuery {
            who: given(&self.who),
            action: given(&self.action),
            subject: given(&self.reference),
            from: from.map(|d| london_days(d, d).0),
            to: to.map(|d| london_days(d, d).1),
            before: self.cursor.parse().ok(),
            limit: PAGE,
        };
        if problems.is_empty() {
            Ok(query)
        } else {
            Err(problems)
        }
    }
}

/// The trail, 50 entries a page, newest first.
pub async fn trail(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Query<TrailForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Permission::ProtectData)?;
    let mut form = form.into_inner();
    let parsed = form.parse();
    let audit = &console.services.audit;
    let last = audit.last_verification().await?;
    let head = audit.head().await?;
    let verification = last.as_ref().map(|e| {
        json!({"at": uk_time(e.at), "by": e.actor_label, "intact": e.detail["intact"],
               "entries": e.detail["entries"], "head_seq": e.detail["head_seq"],
               "head_hash": e.detail["head_hash"]})
    });
    let banner = (form.done == "verified").then(|| match &verification {
        Some(v) if v["intact"] == json!(true) => json!({"title": "The audit trail is intact", "text": "Every entry's hash and link was checked. Keep a copy of the head hash somewhere else.", "success": true}),
        _ => json!({"title": "The audit trail is broken", "text": "An entry was changed, removed or inserted after it was written. Tell your security team; the first broken entry is named below."}),
    });
    let context = layout(&console.brand, Some(&staff), "audit", "Audit trail");
    let context = with(with(context, "q", &form), "verification", verification);
    let context = with(
        context,
        "head",
        json!({"seq": head.last_seq, "hash": head.last_hash}),
    );
    let context = with(context, "banner", banner);
    let query = match parsed {
        Ok(query) => query,
        Err(problems) => {
            let context = with(context, "errors", problems);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return html_with_status(&console, "audit.html", context, status);
        }
    };
    let (entries, next) = audit.search(&query).await?;
    let query_string = query_string(&form);
    let next_page = next.map(|id| {
        let joiner = if query_string.is_empty() { "?" } else { "&" };
        format!("/console/audit{query_string}{joiner}cursor={id}")
    });
    let rows: Vec<Value> = entries.iter().map(entry_row).collect();
    let context = with(with(context, "entries", rows), "next_page", next_page);
    html_with_status(&console, "audit.html", context, StatusCode::OK)
}

fn entry_row(e: &AuditEntry) -> Value {
    let detail = match &e.detail {
        Value::Object(map) if map.is_empty() => String::new(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    };
    json!({"at": uk_time(e.at), "who": e.actor_label, "who_id": e.actor_key_id,
           "action": e.action, "subject": e.subject, "detail": detail})
}

/// Verifies the hash chain now and records the result under the person.
pub async fn verify(
    console: web::Data<Console>,
    staff: Staff,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    staff.require(Permission::ProtectData)?;
    console
        .services
        .audit
        .verify_and_record(&staff.actor())
        .await?;
    Ok(see_other("/console/audit?done=verified#main"))
}
