//! API keys: roles, the `cf_<id>_<secret>` token format and its SHA-256 digest (keys are stored hashed).

use chrono::{DateTime, Utc};
use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// What a key may do. `admin` may do everything the others may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Crm,
    Finance,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crm => "crm",
            Self::Finance => "finance",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role must be one of crm, finance, admin")]
pub struct UnknownRole;

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "crm" => Ok(Self::Crm),
            "finance" => Ok(Self::Finance),
            "admin" => Ok(Self::Admin),
            _ => Err(UnknownRole),
        }
    }
}

/// The visible prefix every key starts with, so leaked keys are easy to spot in code and scanners.
pub const TOKEN_PREFIX: &str = "cf_";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 40;

/// A presented token split into its public id (stored in clear, shown in `keys list`) and the
/// whole token, which is only ever hashed.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedToken<'a> {
    pub key_id: &'a str,
    pub token: &'a str,
}

impl fmt::Debug for PresentedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PresentedToken({}…)", self.key_id)
    }
}

/// Splits `cf_<12 id chars>_<40 secret chars>`; anything else is not one of our keys.
pub fn parse_token(token: &str) -> Option<PresentedToken<'_>> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (key_id, secret) = rest.split_once('_')?;
    let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    (key_id.len() == ID_LEN && secret.len() == SECRET_LEN && alnum(key_id) && alnum(secret))
        .then_some(PresentedToken { key_id, token })
}

/// Builds a token from random alphanumeric parts (the caller supplies the randomness).
pub fn format_token(key_id: &str, secret: &str) -> String {
    debug_assert_eq!(key_id.len(), ID_LEN);
    debug_assert_eq!(secret.len(), SECRET_LEN);
    format!("{TOKEN_PREFIX}{key_id}_{secret}")
}

pub const fn id_len() -> usize {
    ID_LEN
}

pub const fn secret_len() -> usize {
    SECRET_LEN
}

/// SHA-256 of the whole token. Keys are long and random, so a fast hash is the right tool.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// An API key as stored: its hash, never the key.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub role: Role,
    pub label: String,
    pub token_sha256: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// After this the key is refused, as if revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_well_formed_tokens_only() {
        let token = format_token(&"a".repeat(12), &"B".repeat(40));
        let parsed = parse_token(&token).unwrap();
        assert_eq!(parsed.key_id, "aaaaaaaaaaaa");
        assert!(parse_token("cf_short_secret").is_none());
        assert!(parse_token(&token.replace("cf_", "xx_")).is_none());
        assert!(parse_token(&format!("{token}x")).is_none());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let token = format_token(&"a".repeat(12), &"S".repeat(40));
        let parsed = parse_token(&token).unwrap();
        assert!(!format!("{parsed:?}").contains("SSSS"));
    }
}
