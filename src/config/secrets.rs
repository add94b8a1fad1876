//! Secrets by reference (`{ env = … }`, `{ file = … }`) and how they are resolved.

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::*;

/// Where a secret comes from. Secrets are never written inline in production, never printed.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    /// `{ env = "GOVUK_PAY_API_KEY" }`
    Env(String),
    /// `{ file = "/run/secrets/govuk_pay_api_key" }` (trailing newline trimmed)
    File(PathBuf),
    /// `{ value = "…" }`: development only, refused when `environment = "production"`.
    Value(String),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Value(_) => f.write_str("value:[redacted]"),
        }
    }
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;
        const EXPECTED: &str =
            "a table: { env = \"NAME\" }, { file = \"/path\" } or, in development only, { value = \"...\" }";

        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = SecretSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            // Never echo what was given: it may be the secret itself.
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "a secret may not be written as a bare string; use {EXPECTED}"
                )))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut found: Option<SecretSource> = None;
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    let source = match key.as_str() {
                        "env" => SecretSource::Env(value),
                        "file" => SecretSource::File(value.into()),
                        "value" => SecretSource::Value(value),
                        _ => return Err(de::Error::custom(format!("expected {EXPECTED}"))),
                    };
                    if found.replace(source).is_some() {
                        return Err(de::Error::custom(format!("give exactly one of {EXPECTED}")));
                    }
                }
                found.ok_or_else(|| de::Error::custom(format!("expected {EXPECTED}")))
            }
        }
        deserializer.deserialize_any(SourceVisitor)
    }
}

impl SecretSource {
    /// Reads the secret. Errors name the variable or file, never the content.
    pub fn resolve(&self) -> Result<SecretString, String> {
        let value = match self {
            Self::Env(name) => std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set"))?,
            Self::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            Self::Value(value) => value.clone(),
        };
        if value.is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(SecretString::from(value))
    }
}

impl SecretSource {
    /// Checks that the secret at `key` can be read and, in production, is not written inline.
    pub(super) fn validate(
        &self,
        key: &str,
        production: bool,
    ) -> Result<SecretString, ConfigError> {
        if production && matches!(self, SecretSource::Value(_)) {
            return Err(problem(
                key,
                "inline secret values are refused in production; use { env = ... } or { file = ... }",
            ));
        }
        self.resolve().map_err(|why| problem(key, &why))
    }
}
