//! What reached a simulator's API: each request's line, headers and body, the last few thousand,
//! served at `_control/journal`, so a test can prove what Counterfoil sent a provider.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

/// The most requests kept; older ones are forgotten first.
const KEPT: usize = 5_000;
/// The most of one request's body kept (a create is well under it).
const BODY_KEPT: usize = 8 * 1024;

#[derive(Clone, Default)]
pub struct Journal(Arc<Mutex<VecDeque<String>>>);

impl Journal {
    fn push(&self, entry: String) {
        let mut entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() == KEPT {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    pub fn entries(&self) -> Vec<String> {
        let entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
        entries.iter().cloned().collect()
    }
}

/// Middleware for a simulator's scope: records every API request (not the control routes or the
/// payer's pages) as it arrived, then hands it on with its body intact.
pub async fn record(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let journal = req.app_data::<web::Data<Journal>>().cloned();
    if let Some(journal) = journal.filter(|_| req.path().contains("/v1/")) {
        let body = req.extract::<web::Bytes>().await.unwrap_or_default();
        let headers: Vec<String> = req
            .headers()
            .iter()
            .filter(|(name, _)| *name != actix_web::http::header::AUTHORIZATION)
            .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
            .collect();
        journal.push(format!(
            "{} {}\n{}\n\n{}",
            req.method(),
            req.uri(),
            headers.join("\n"),
            String::from_utf8_lossy(&body[..body.len().min(BODY_KEPT)])
        ));
        req.set_payload(Payload::from(body));
    }
    next.call(req).await
}

/// `GET _control/journal`: every request recorded, oldest first.
pub async fn list(journal: web::Data<Journal>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "requests": journal.entries() }))
}
