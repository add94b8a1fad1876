//! The `[telemetry]` section: logs and OTLP traces.

use serde::{Deserialize, Serialize};

use super::*;

/// Traces: exported over OTLP/HTTP (protobuf) when an endpoint is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// e.g. `http://otel-collector:4318/v1/traces`; none means no export.
    pub otlp_endpoint: Option<String>,
    /// `service.name` on every span.
    pub service_name: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "counterfoil".into(),
        }
    }
}

impl TelemetrySettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(endpoint) = &self.otlp_endpoint {
            if !matches!(url::Url::parse(endpoint), Ok(u) if u.scheme() == "http" || u.scheme() == "https")
            {
                return Err(problem(
                    "telemetry.otlp_endpoint",
                    "must be an http(s) URL, e.g. http://otel-collector:4318/v1/traces",
                ));
            }
        }
        Ok(())
    }
}
