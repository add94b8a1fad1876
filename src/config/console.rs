//! The `[console]` section: the staff console's own listener, branding, session, sign-in by
//! OpenID Connect (or the built-in test identity provider in development) and the two-person rule.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::*;
use crate::domain::staff::{StaffRole, ALL_ROLES};

/// The issuer that means "the built-in test identity provider" (development only).
pub const BUILTIN_ISSUER: &str = "builtin";

/// Where the built-in test identity provider is served, below the console's public URL.
pub const BUILTIN_ISSUER_PATH: &str = "/sandbox/identity";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// Serve the console at all (`/console`).
    pub enabled: bool,
    /// Serve the console on a listener of its own (e.g. staff network only) instead of the
    /// public one.
    pub bind: Option<String>,
    /// Where staff browsers reach the console's own listener (default: `http(s)://<bind>`);
    /// only with `bind`.
    pub public_url: Option<String>,
    /// The council's name, shown in every page's header.
    pub council_name: String,
    /// An image file (SVG or PNG) shown beside the name.
    pub logo_file: Option<PathBuf>,
    /// The header's colour, `#rrggbb`; white text on it must meet WCAG AA contrast (4.5:1).
    pub brand_colour: String,
    /// Signs and encrypts the session cookie: at least 64 bytes. Required in production (every
    /// replica needs the same one); in development a random key is made at start.
    pub session_key: Option<SecretSource>,
    /// A session with no request for this many seconds is signed out.
    pub idle_timeout_seconds: u64,
    /// A session is signed out this many seconds after sign-in, however busy.
    pub absolute_timeout_seconds: u64,
    /// After this many seconds a person goes back through the identity provider (silently, if
    /// their sign-in there is still good), so that roles changed there take effect.
    pub roles_refresh_seconds: u64,
    /// Sign-in attempts (starts and returns from the identity provider) per client per minute.
    pub sign_in_attempts_per_minute: u32,
    /// What one person may refund of a payment alone, in pence, counting everything they have
    /// refunded of it without a second person; beyond it a refund waits for a refund approver
    /// (services may set their own). Applies to finance API keys too.
    pub two_person_threshold_pence: i64,
    /// What one person (or key) may refund alone in a London day, across payments (none: no
    /// daily limit).
    pub two_person_daily_limit_pence: Option<i64>,
    /// Whether finance API keys may refund (under the same rule; over it they get 403
    /// `two_person_rule`). Default: off in production, on elsewhere.
    pub api_refunds: Option<bool>,
    /// A payment still not final this many minutes after it was made is listed under "Needs
    /// attention" (GOV.UK Pay's payment pages expire after 90 minutes).
    pub stuck_after_minutes: u64,
    pub oidc: OidcSettings,
}

impl ConsoleSettings {
    /// Whether finance API keys may refund: as configured, else only outside production.
    pub fn api_refunds_allowed(&self, environment: Environment) -> bool {
        self.api_refunds
            .unwrap_or(environment != Environment::Production)
    }
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: None,
            public_url: None,
            council_name: "Counterfoil (development)".into(),
            logo_file: None,
            brand_colour: "#1d4f91".into(),
            session_key: None,
            idle_timeout_seconds: 30 * 60,
            absolute_timeout_seconds: 10 * 3600,
            roles_refresh_seconds: 3600,
            sign_in_attempts_per_minute: 10,
            two_person_threshold_pence: 50_000,
            two_person_daily_limit_pence: None,
            api_refunds: None,
            stuck_after_minutes: 120,
            oidc: OidcSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcSettings {
    /// The identity provider's issuer URL (Entra ID: `https://login.microsoftonline.com/{tenant}/v2.0`),
    /// or `builtin` for the test identity provider (development only).
    pub issuer: String,
    pub client_id: String,
    /// Required unless the issuer is `builtin` (whose test secret is fixed).
    pub client_secret: Option<SecretSource>,
    /// The ID-token claim that carries the person's roles (Entra ID app roles: `roles`).
    pub roles_claim: String,
    /// Claim value → console roles (viewer, refunder, refund_approver, dpo, admin).
    pub roles: BTreeMap<String, Vec<String>>,
    /// The provider's keys are fetched again after this many seconds (and at once, at most every
    /// 30 seconds, when a token is signed with a key we do not hold).
    pub keys_max_age_seconds: u64,
}

impl Default for OidcSettings {
    fn default() -> Self {
        Self {
            issuer: BUILTIN_ISSUER.into(),
            client_id: "counterfoil-console".into(),
            client_secret: None,
            roles_claim: "roles".into(),
            // None built in: the council's mapping is the only one (a default here would be
            // merged with theirs, so that a claim value they never mapped granted a role).
            roles: BTreeMap::new(),
            keys_max_age_seconds: 3600,
        }
    }
}

impl OidcSettings {
    pub fn is_builtin(&self) -> bool {
        self.issuer == BUILTIN_ISSUER
    }

    /// The client secret: the configured one, or the test identity provider's fixed one.
    pub fn client_secret(&self) -> Result<secrecy::SecretString, String> {
        match &self.client_secret {
            Some(source) => source.resolve(),
            None if self.is_builtin() => Ok("builtin-test-identity-provider-secret".into()),
            None => Err("console.oidc.client_secret is required".into()),
        }
    }

    /// The role mapping, read (validation has refused unknown role names): exactly the
    /// configured one. Only the built-in test identity provider, whose people carry the
    /// console's own role names, maps each name to itself when none is configured.
    pub fn role_mapping(&self) -> BTreeMap<String, Vec<StaffRole>> {
        if self.roles.is_empty() && self.is_builtin() {
            return ALL_ROLES
                .iter()
                .map(|r| (r.as_str().to_owned(), vec![*r]))
                .collect();
        }
        self.roles
            .iter()
            .map(|(claim, roles)| {
                let roles = roles.iter().filter_map(|r| r.parse().ok()).collect();
                (claim.clone(), roles)
            })
            .collect()
    }
}

impl ConsoleSettings {
    pub(super) fn validate(&self, production: bool) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if let Some(bind) = &self.bind {
            if bind.parse::<std::net::SocketAddr>().is_err() {
                return Err(problem(
                    "console.bind",
                    "must be an address like 0.0.0.0:8443",
                ));
            }
        }
        if self.council_name.trim().is_empty() {
            return Err(problem("console.council_name", "must not be empty"));
        }
        match contrast_with_white(&self.brand_colour) {
            None => return Err(problem("console.brand_colour", "must be a colour like #1d4f91")),
            Some(ratio) if ratio < 4.5 => {
                return Err(problem(
                    "console.brand_colour",
                    &format!("white text on it has a contrast of {ratio:.1}:1; WCAG AA needs 4.5:1, choose a darker colour"),
                ))
            }
            Some(_) => {}
        }
        if let Some(logo) = &self.logo_file {
            if std::fs::metadata(logo).is_err() {
                return Err(problem(
                    "console.logo_file",
                    &format!("cannot read {}", logo.display()),
                ));
            }
        }
        match &self.session_key {
            Some(key) => {
                let secret = key.validate("console.session_key", production)?;
                if secrecy::ExposeSecret::expose_secret(&secret).len() < 64 {
                    return Err(problem("console.session_key", "must be at least 64 bytes"));
                }
            }
            None if production => {
                return Err(problem(
                    "console.session_key",
                    "is required in production (every replica must share it)",
                ))
            }
            None => {}
        }
        self.validate_limits()?;
        self.oidc.validate(production)
    }

    /// Timeouts, attempts and the two-person rule's amounts.
    fn validate_limits(&self) -> Result<(), ConfigError> {
        if self.idle_timeout_seconds == 0
            || self.absolute_timeout_seconds < self.idle_timeout_seconds
        {
            return Err(problem(
                "console.idle_timeout_seconds",
                "must be at least 1, and no more than console.absolute_timeout_seconds",
            ));
        }
        if self.sign_in_attempts_per_minute == 0 {
            return Err(problem(
                "console.sign_in_attempts_per_minute",
                "must be at least 1",
            ));
        }
        if self.two_person_threshold_pence < 0 {
            return Err(problem(
                "console.two_person_threshold_pence",
                "must not be negative",
            ));
        }
        if self.roles_refresh_seconds == 0 {
            return Err(problem(
                "console.roles_refresh_seconds",
                "must be at least 1",
            ));
        }
        if self.two_person_daily_limit_pence.is_some_and(|t| t < 0) {
            return Err(problem(
                "console.two_person_daily_limit_pence",
                "must not be negative",
            ));
        }
        Ok(())
    }
}

impl OidcSettings {
    fn validate(&self, production: bool) -> Result<(), ConfigError> {
        if self.is_builtin() {
            if production {
                return Err(problem(
                    "console.oidc.issuer",
                    "the built-in test identity provider may not run when environment = \"production\"; set the council's issuer",
                ));
            }
        } else if !is_web_url(&self.issuer, production) {
            return Err(problem(
                "console.oidc.issuer",
                "must be an https URL (the tenant-specific issuer for Entra ID), or \"builtin\" outside production",
            ));
        } else if self.issuer.contains("{tenantid}") || self.issuer.contains("/common/") {
            return Err(problem(
                "console.oidc.issuer",
                "use the tenant-specific issuer (https://login.microsoftonline.com/<tenant id>/v2.0), not common",
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(problem("console.oidc.client_id", "must not be empty"));
        }
        match &self.client_secret {
            Some(secret) => {
                secret.validate("console.oidc.client_secret", production)?;
            }
            None if self.is_builtin() => {}
            None => return Err(problem("console.oidc.client_secret", "is required")),
        }
        if self.roles_claim.trim().is_empty() {
            return Err(problem("console.oidc.roles_claim", "must not be empty"));
        }
        if self.roles.is_empty() && !self.is_builtin() {
            return Err(problem(
                "console.oidc.roles",
                "map at least one value of the roles claim to console roles, e.g. \
                 \"Payments.Refunder\" = [\"refunder\"]",
            ));
        }
        for (claim, roles) in &self.roles {
            for role in roles {
                if role.parse::<StaffRole>().is_err() {
                    return Err(problem(
                        format!("console.oidc.roles.{claim}"),
                        "console roles are viewer, refunder, refund_approver, dpo and admin",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The contrast ratio of white text on `#rrggbb` (WCAG 2 relative luminance), or None if the
/// text is not such a colour.
pub fn contrast_with_white(colour: &str) -> Option<f64> {
    let hex = colour.strip_prefix('#')?;
    if hex.len() != 6 {
        return None;
    }
    let channel = |i: usize| -> Option<f64> {
        let v = f64::from(u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()?) / 255.0;
        Some(if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        })
    };
    let luminance = 0.2126 * channel(0)? + 0.7152 * channel(2)? + 0.0722 * channel(4)?;
    Some(1.05 / (luminance + 0.05))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brand_colours_must_carry_white_text() {
        assert!(contrast_with_white("#1d4f91").unwrap() > 4.5);
        assert!(contrast_with_white("#ffdd00").unwrap() < 4.5);
        assert!((contrast_with_white("#000000").unwrap() - 21.0).abs() < 0.01);
        assert!(contrast_with_white("blue").is_none());
        assert!(contrast_with_white("#12345").is_none());
    }

    #[test]
    fn production_refuses_the_test_identity_provider_and_a_missing_session_key() {
        let console = ConsoleSettings::default();
        let message = console.validate(true).unwrap_err().0;
        assert!(message.starts_with("console.session_key"), "{message}");
        let console = ConsoleSettings {
            session_key: Some(SecretSource::Env(
                "COUNTERFOIL_TEST_SESSION_KEY_UNSET".into(),
            )),
            ..ConsoleSettings::default()
        };
        assert!(console.validate(true).is_err());
        assert!(OidcSettings::default()
            .validate(true)
            .unwrap_err()
            .0
            .contains("built-in test identity provider"));
        assert!(OidcSettings::default().validate(false).is_ok());
    }

    #[test]
    fn role_mappings_name_console_roles_and_issuers_are_tenant_specific() {
        let mut oidc = OidcSettings {
            issuer: "https://login.microsoftonline.com/common/v2.0".into(),
            client_secret: Some(SecretSource::Value("s".into())),
            ..OidcSettings::default()
        };
        assert!(oidc
            .validate(false)
            .unwrap_err()
            .0
            .contains("tenant-specific"));
        oidc.issuer = "https://login.microsoftonline.com/1f2e3d4c/v2.0".into();
        assert!(oidc
            .validate(false)
            .unwrap_err()
            .0
            .starts_with("console.oidc.roles"));
        oidc.roles
            .insert("Payments.Viewer".into(), vec!["viewer".into()]);
        assert!(oidc.validate(false).is_ok());
        // Exactly the council's mapping: a claim value named like a console role grants nothing.
        let mapping = oidc.role_mapping();
        assert_eq!(mapping.len(), 1);
        assert!(!mapping.contains_key("admin"));
        oidc.roles
            .insert("Finance.Boss".into(), vec!["superuser".into()]);
        assert!(oidc
            .validate(false)
            .unwrap_err()
            .0
            .starts_with("console.oidc.roles.Finance.Boss"));
    }
}
