//! Bearer API keys: the `Authenticated` extractor (401 on any missing, unknown or revoked key) and
//! role checks (403), and the per-key rate limit.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use super::limits::RateLimits;
use super::problem::ApiError;
use crate::domain::api_key::Role;
use crate::service::{AppServices, Principal};

/// An authenticated caller. Extracted before the body is read, so an unauthenticated request's
/// body is never looked at.
pub struct Authenticated(pub Principal);

impl Authenticated {
    /// Refuses the request with 403 unless the key has one of `roles` (admin has all).
    pub fn require(&self, roles: &[Role]) -> Result<&Principal, ApiError> {
        if self.0.allowed(roles) {
            Ok(&self.0)
        } else {
            Err(crate::service::ServiceError::Forbidden.into())
        }
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let request = req.clone();
        let services = req.app_data::<web::Data<AppServices>>().cloned();
        let limits = req.app_data::<web::Data<RateLimits>>().cloned();
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned());
        Box::pin(async move {
            let services = services.ok_or_else(ApiError::internal)?;
            match services
                .keys
                .authenticate(token.as_deref())
                .await
                .map_err(ApiError::from)?
            {
                Ok(principal) => {
                    // Counted per key only once the key is proven, so nobody can use up another
                    // caller's allowance by naming its key id.
                    // Who is asking, for the access audit (see `audit_access`).
                    request.extensions_mut().insert(principal.clone());
                    if let Some(limits) = limits {
                        limits.check_key(&principal.key_id, &services.metrics)?;
                    }
                    Ok(Authenticated(principal))
                }
                Err(failure) => {
                    tracing::info!(reason = ?failure, "request refused: bad API key");
                    Err(ApiError::unauthorized())
                }
            }
        })
    }
}
