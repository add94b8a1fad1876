//! Payment handlers: authenticate → read input → one service call → JSON.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::Authenticated;
use super::body::read_json;
use super::problem::ApiError;
use super::requests;
use crate::domain::api_key::Role;
use crate::domain::idempotency::Idempotent;
use crate::domain::{IdempotencyKey, PaymentId};
use crate::service::payments::CreateResponse;
use crate::service::{AppServices, FieldIssue};
use crate::views::{PaymentEventView, PaymentPage, PaymentView};

const CRM: &[Role] = &[Role::Crm];
const READERS: &[Role] = &[Role::Crm, Role::Finance];

pub(super) fn idempotency_key(req: &HttpRequest) -> Result<IdempotencyKey, ApiError> {
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "idempotency_key_missing",
            "An Idempotency-Key header is required",
        )
        .detail("Send a unique Idempotency-Key (e.g. a UUID) with every create, and the same one when retrying it."));
    };
    value
        .to_str()
        .map_err(|_| crate::domain::FieldError::new("invalid_format", "must be ASCII"))
        .and_then(IdempotencyKey::parse)
        .map_err(|e| ApiError::validation(vec![FieldIssue::new("Idempotency-Key", e)]))
}

pub(super) fn payment_id(raw: &str) -> Result<PaymentId, ApiError> {
    // An id that cannot be ours cannot exist: the same 404 as an unknown one.
    PaymentId::parse(raw).map_err(|_| ApiError::from(crate::service::ServiceError::PaymentNotFound))
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::build(status).json(body)
}

/// The route a payment is created on, part of its idempotency fingerprint.
const CREATE_ROUTE: &str = "POST /v1/payments";

pub async fn create(
    auth: Authenticated,
    services: web::Data<AppServices>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(CRM)?;
    let key = idempotency_key(&req)?;
    let body = read_json(&req, payload).await?;
    let payments = &services.payments;
    let new = requests::new_payment(
        &body,
        |service| payments.offers(service),
        payments.allows_loopback_return(),
    )?;
    let request = Idempotent::new(key, CREATE_ROUTE.to_owned(), &principal.key_id, &body);
    match payments.create(&principal.actor(), request, new).await? {
        CreateResponse::Created(payment) => {
            Ok(json(StatusCode::CREATED, &PaymentView::from(&*payment)))
        }
        CreateResponse::Replayed { status, body } => Ok(HttpResponse::build(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        )
        .content_type("application/json")
        .insert_header(("Idempotent-Replayed", "true"))
        .body(body)),
    }
}

pub async fn get(
    auth: Authenticated,
    services: web::Data<AppServices>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(READERS)?;
    let payment = services.payments.get(&payment_id(&id)?).await?;
    Ok(json(StatusCode::OK, &PaymentView::from(&payment)))
}

pub async fn list(
    auth: Authenticated,
    services: web::Data<AppServices>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    auth.require(READERS)?;
    let page = services.payments.list(&query).await?;
    let page = PaymentPage {
        items: page.items.iter().map(PaymentView::from).collect(),
        next_cursor: page.next_cursor,
    };
    Ok(json(StatusCode::OK, &page))
}

pub async fn cancel(
    auth: Authenticated,
    services: web::Data<AppServices>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(CRM)?;
    let payment = services.payments.cancel(&payment_id(&id)?).await?;
    Ok(json(StatusCode::OK, &PaymentView::from(&payment)))
}

pub async fn events(
    auth: Authenticated,
    services: web::Data<AppServices>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(READERS)?;
    let events = services.payments.events(&payment_id(&id)?).await?;
    let items: Vec<PaymentEventView> = events.iter().map(PaymentEventView::from).collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "items": items })))
}
