//! Refund routes (role finance): ask for a refund once per Idempotency-Key, list a payment's.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::Authenticated;
use super::body::read_json;
use super::payments::{idempotency_key, payment_id};
use super::problem::ApiError;
use super::requests;
use crate::domain::api_key::Role;
use crate::domain::idempotency::Idempotent;
use crate::service::refunds::{RefundChannel, RefundResponse};
use crate::service::AppServices;
use crate::views::RefundView;

const FINANCE: &[Role] = &[Role::Finance];

pub async fn create_refund(
    auth: Authenticated,
    services: web::Data<AppServices>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(FINANCE)?;
    let payment = payment_id(&id)?;
    let key = idempotency_key(&req)?;
    let body = read_json(&req, payload).await?;
    let new = requests::new_refund(&body)?;
    let route = format!("POST /v1/payments/{payment}/refunds");
    let request = Idempotent::new(key, route, &principal.key_id, &body);
    match services
        .refunds
        .request(
            &principal.actor(),
            &payment,
            request,
            new,
            RefundChannel::Api,
        )
        .await?
    {
        RefundResponse::Created(refund) => {
            Ok(HttpResponse::Created().json(RefundView::from(&*refund)))
        }
        RefundResponse::Replayed { status, body } => Ok(HttpResponse::build(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        )
        .content_type("application/json")
        .insert_header(("Idempotent-Replayed", "true"))
        .body(body)),
    }
}

pub async fn list_refunds(
    auth: Authenticated,
    services: web::Data<AppServices>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(FINANCE)?;
    let refunds = services.refunds.list(&payment_id(&id)?).await?;
    let items: Vec<RefundView> = refunds.iter().map(RefundView::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}
