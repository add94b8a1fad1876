//! LocalGov IMS's API (`POST /api/TransactionImport`, `GET /api/ProcessedTransactions`), through
//! the one guarded outbound client.

use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Response};
use secrecy::{ExposeSecret, SecretString};

use super::{IncomeSystem, IncomeSystemError};
use crate::outbound::{OutboundClient, OutboundError};

pub struct LocalGovIms {
    base_url: String,
    api_key: Option<SecretString>,
    http: OutboundClient,
}

impl LocalGovIms {
    /// `base_url` is the API's root: its paths start `/api/`.
    pub fn new(base_url: &str, api_key: Option<SecretString>, http: OutboundClient) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            http,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Response, IncomeSystemError> {
        let request = match &self.api_key {
            Some(key) => request.bearer_auth(key.expose_secret()),
            None => request,
        };
        match self.http.send(request).await {
            Ok(response) => Ok(response),
            Err(OutboundError::CardData) => Err(IncomeSystemError::CardData),
            Err(OutboundError::Transport(e)) if e.is_connect() => {
                Err(IncomeSystemError::NotSent(e.without_url().to_string()))
            }
            Err(OutboundError::Transport(e)) => {
                Err(IncomeSystemError::Unknown(e.without_url().to_string()))
            }
        }
    }
}

/// What a refusal said, kept short (its body is the system's own message, never ours to trust
/// at length).
async fn refusal(response: Response) -> String {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(300).collect();
    format!("HTTP {status}: {}", body.trim())
}

#[async_trait]
impl IncomeSystem for LocalGovIms {
    #[tracing::instrument(name = "income_system", skip_all, fields(otel.name = "localgov_ims import", otel.kind = "client"))]
    async fn import(&self, body: Vec<u8>) -> Result<(), IncomeSystemError> {
        let request = self
            .http
            .request(
                Method::POST,
                format!("{}/api/TransactionImport", self.base_url),
            )
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let response = self.send(request).await?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_client_error() {
            Err(IncomeSystemError::Refused(refusal(response).await))
        } else {
            Err(IncomeSystemError::Unknown(refusal(response).await))
        }
    }

    #[tracing::instrument(name = "income_system", skip_all, fields(otel.name = "localgov_ims find", otel.kind = "client"))]
    async fn holds(&self, internal_reference: &str) -> Result<bool, IncomeSystemError> {
        let request = self
            .http
            .request(
                Method::GET,
                format!("{}/api/ProcessedTransactions", self.base_url),
            )
            .query(&[("InternalReference", internal_reference)]);
        let response = self.send(request).await?;
        match response.status().as_u16() {
            404 => Ok(false),
            200 => {
                let found: Vec<serde_json::Value> = response.json().await.map_err(|e| {
                    IncomeSystemError::Unknown(format!("unreadable search answer: {e}"))
                })?;
                Ok(found
                    .iter()
                    .any(|t| t["InternalReference"].as_str() == Some(internal_reference)))
            }
            _ => Err(IncomeSystemError::Unknown(refusal(response).await)),
        }
    }
}
