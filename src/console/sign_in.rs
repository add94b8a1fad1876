//! Sign-in with the council's identity provider by OpenID Connect (authorisation code + PKCE,
//! state and nonce), role mapping from the configured claim, and sign-out. Every sign-in and
//! sign-out is in the audit trail under the person's own name.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix_session::Session;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::render::{layout, with};
use super::session::{self, Staff};
use super::{Console, ConsoleError};
use crate::config::OidcSettings;
use crate::domain::staff::{roles_from_claim, StaffMember, StaffRole};
use crate::domain::Actor;

const PENDING_KEY: &str = "sign_in";

/// Where the identity provider sends a person back to, for a console at `public_url`.
pub fn callback_url(public_url: &str) -> String {
    format!(
        "{}/console/sign-in/callback",
        public_url.trim_end_matches('/')
    )
}

/// The relying party: who we are to the identity provider, and how its answers are read.
pub struct SignIn {
    issuer: String,
    client_id: String,
    client_secret: SecretString,
    redirect_uri: String,
    roles_claim: String,
    mapping: BTreeMap<String, Vec<StaffRole>>,
    builtin: bool,
    http: reqwest::Client,
    /// The discovery document and its key set, and when they were fetched.
    metadata: tokio::sync::Mutex<Option<(CoreProviderMetadata, Instant)>>,
    /// Keys are fetched again after this long, so a withdrawn key stops being trusted.
    keys_max_age: Duration,
}

/// How soon after one fetch a token signed with an unknown key may cause another (a rotation
/// is picked up at once; a stream of bad tokens cannot make us hammer the provider).
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(30);

/// What the session keeps between sending the person to the identity provider and their return.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    /// Where to go once signed in (a console page's path), if not the dashboard.
    #[serde(default)]
    return_to: Option<String>,
}

#[derive(Deserialize)]
pub struct StartQuery {
    return_to: Option<String>,
}

/// A console page to return to after sign-in: a path under /console (never another site, never
/// sign-in itself), short, with no card number in it.
fn safe_return(path: &str) -> Option<String> {
    let ok = path.starts_with("/console/")
        && !path.starts_with("/console/sign-")
        && !path.contains("//")
        && !path.contains('\\')
        && path.len() <= 512
        && !crate::domain::card_guard::contains_card_number(path);
    ok.then(|| path.to_owned())
}

impl SignIn {
    pub fn new(oidc: &OidcSettings, public_url: &str) -> anyhow::Result<Self> {
        let public_url = public_url.trim_end_matches('/');
        let issuer = if oidc.is_builtin() {
            format!("{public_url}{}", crate::config::BUILTIN_ISSUER_PATH)
        } else {
            oidc.issuer.clone()
        };
        Ok(Self {
            issuer,
            client_id: oidc.client_id.clone(),
            client_secret: oidc.client_secret().map_err(anyhow::Error::msg)?,
            redirect_uri: callback_url(public_url),
            roles_claim: oidc.roles_claim.clone(),
            mapping: oidc.role_mapping(),
            builtin: oidc.is_builtin(),
            // Never follow redirects: an identity provider's endpoints answer directly.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(10))
                .build()?,
            metadata: tokio::sync::Mutex::new(None),
            keys_max_age: Duration::from_secs(oidc.keys_max_age_seconds),
        })
    }

    /// Forgets the key set if it is older than [`REFETCH_AT_MOST_EVERY`]: a token signed with a
    /// key we do not know (the provider rotated its keys) gets one fresh look. True if it did.
    async fn forget_keys(&self) -> bool {
        let mut cached = self.metadata.lock().await;
        match cached.as_ref() {
            Some((_, fetched)) if fetched.elapsed() >= REFETCH_AT_MOST_EVERY => {
                *cached = None;
                true
            }
            _ => false,
        }
    }

    /// The provider's discovery document and keys, fetched on first use (the provider may be
    /// down when Counterfoil starts), kept, and fetched again once older than `keys_max_age`.
    async fn client(
        &self,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        ConsoleError,
    > {
        let failed = |e: &dyn std::fmt::Display| ConsoleError::SignInFailed(e.to_string());
        let mut cached = self.metadata.lock().await;
        let metadata = match cached.as_ref() {
            Some((metadata, fetched)) if fetched.elapsed() < self.keys_max_age => metadata.clone(),
            _ => {
                let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| failed(&e))?;
                let found = CoreProviderMetadata::discover_async(issuer, &self.http)
                    .await
                    .map_err(|e| failed(&e))?;
                *cached = Some((found.clone(), Instant::now()));
                found
            }
        };
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.client_id.clone()),
            Some(ClientSecret::new(
                self.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).map_err(|e| failed(&e))?))
    }

    /// The person named by a verified ID token, with the console roles its role claim maps to.
    fn member_of(&self, token: &CoreIdToken, subject: String, name: Option<String>) -> StaffMember {
        let values = claim_values(&token.to_string(), &self.roles_claim);
        StaffMember {
            name: name.unwrap_or_else(|| subject.clone()),
            subject,
            roles: roles_from_claim(&values, &self.mapping),
        }
    }
}

/// The string values of `claim` in a JWT's payload (already verified): an array of strings or a
/// single string.
fn claim_values(jwt: &str, claim: &str) -> Vec<String> {
    let payload = jwt
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    match payload.as_ref().and_then(|p| p.get(claim)) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

#[derive(Deserialize)]
pub struct SignInQuery {
    reason: Option<String>,
}

/// The sign-in page (or the dashboard, for someone already signed in).
pub async fn page(
    console: web::Data<Console>,
    req: HttpRequest,
    query: web::Query<SignInQuery>,
) -> Result<HttpResponse, ConsoleError> {
    if session::current(&req).is_some() {
        return Ok(see_other("/console"));
    }
    let banner = match query.reason.as_deref() {
        Some("timeout") => Some(
            json!({"title": "You have been signed out", "text": "You were signed out because you had not done anything for a while. Sign in again to carry on."}),
        ),
        Some("signed_out") => Some(
            json!({"title": "You have signed out", "text": "You have signed out of the payments console.", "success": true}),
        ),
        Some("no_roles") => Some(
            json!({"title": "You do not have access", "text": "You signed in, but your account has no role in the payments console. Ask your council's IT service desk for one."}),
        ),
        _ => None,
    };
    let context = with(
        with(
            layout(&console.brand, None, "sign-in", "Sign in"),
            "banner",
            banner,
        ),
        "builtin",
        console.sign_in.builtin,
    );
    super::pages::html(&console, "sign_in.html", context)
}

/// Sends the person to the identity provider.
pub async fn start(
    console: web::Data<Console>,
    req: HttpRequest,
    session: Session,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, ConsoleError> {
    console.allow_sign_in(&req)?;
    let client = console.sign_in.client().await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let pending = Pending {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        return_to: query.return_to.as_deref().and_then(safe_return),
    };
    session
        .insert(PENDING_KEY, pending)
        .map_err(|e| ConsoleError::SignInFailed(e.to_string()))?;
    Ok(see_other(url.as_str()))
}

/// The error codes OAuth 2.0 (RFC 6749 §4.1.2.1) and OpenID Connect (Core §3.1.2.6) define: the
/// caller's `error` is logged as one of these or as `other`, never as written (it is the
/// browser's to set, and could forge a log line or carry anything).
const PROVIDER_ERRORS: &[&str] = &[
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
    "invalid_request_uri",
    "invalid_request_object",
    "request_not_supported",
    "request_uri_not_supported",
    "registration_not_supported",
];

/// The identity provider's error as a bounded code.
fn provider_error_code(error: &str) -> &'static str {
    PROVIDER_ERRORS
        .iter()
        .find(|known| **known == error)
        .copied()
        .unwrap_or("other")
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The identity provider sends the person back: exchange the code, verify the ID token, map the
/// roles and start the session.
pub async fn callback(
    console: web::Data<Console>,
    req: HttpRequest,
    session: Session,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ConsoleError> {
    use subtle::ConstantTimeEq;
    console.allow_sign_in(&req)?;
    let failed = |why: &str| ConsoleError::SignInFailed(why.to_owned());
    let pending: Pending = session
        .remove_as(PENDING_KEY)
        .and_then(Result::ok)
        .ok_or_else(|| failed("no sign-in was started in this browser"))?;
    if let Some(error) = &query.error {
        let code = provider_error_code(error);
        return Err(failed(&format!("the identity provider answered {code}")));
    }
    let (Some(code), Some(state)) = (&query.code, &query.state) else {
        return Err(failed("the identity provider's answer had no code"));
    };
    if !bool::from(state.as_bytes().ct_eq(pending.state.as_bytes())) {
        return Err(failed("the state did not match"));
    }
    let return_to = pending.return_to.clone();
    let member = verified_member(&console, code, pending).await?;
    if member.roles.is_empty() {
        tracing::info!("console sign-in refused: no console role");
        return Ok(see_other("/console/sign-in?reason=no_roles"));
    }
    let now = console.clock.now();
    session::begin(&console, &session, &member, now).await?;
    console
        .services
        .audit
        .record(
            &Actor::Person(member.clone()),
            "console.signed_in",
            &member.actor_id(),
            json!({}),
        )
        .await?;
    Ok(see_other(
        return_to
            .as_deref()
            .and_then(safe_return)
            .as_deref()
            .unwrap_or("/console"),
    ))
}

async fn verified_member(
    console: &Console,
    code: &str,
    pending: Pending,
) -> Result<StaffMember, ConsoleError> {
    let failed = |e: &dyn std::fmt::Display| ConsoleError::SignInFailed(e.to_string());
    let sign_in = &console.sign_in;
    let client = sign_in.client().await?;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| failed(&e))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&sign_in.http)
        .await
        .map_err(|e| failed(&e))?;
    let token = tokens
        .id_token()
        .ok_or_else(|| failed(&"the token answer had no ID token"))?;
    let nonce = Nonce::new(pending.nonce);
    let mut verifier = client.id_token_verifier();
    if sign_in.builtin {
        // The test identity provider signs with the client secret; real ones with their keys.
        verifier = verifier.set_allowed_algs([CoreJwsSigningAlgorithm::HmacSha256]);
    }
    let claims = match token.claims(&verifier, &nonce) {
        Ok(claims) => claims.clone(),
        // Signed with a key we do not hold: the provider may have rotated its keys. Fetch them
        // again (at most every 30 seconds) and look once more.
        Err(ClaimsVerificationError::SignatureVerification(_)) if sign_in.forget_keys().await => {
            tracing::info!("console sign-in: token signed with an unknown key; keys fetched again");
            let fresh = sign_in.client().await?;
            let verifier = fresh.id_token_verifier();
            token
                .claims(&verifier, &nonce)
                .map_err(|e| failed(&e))?
                .clone()
        }
        Err(e) => return Err(failed(&e)),
    };
    let name = claims
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_owned())
        .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()));
    Ok(sign_in.member_of(token, claims.subject().as_str().to_owned(), name))
}

#[derive(Deserialize)]
pub struct TokenForm {
    csrf_token: String,
}

/// Signs out: the session is emptied and its cookie removed.
pub async fn sign_out(
    console: web::Data<Console>,
    staff: Staff,
    session: Session,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf_token)?;
    // Ended on the server: the cookie, if copied, no longer signs anyone in.
    console
        .services
        .staff_sessions
        .end(&staff.token, "signed_out")
        .await?;
    session.purge();
    console
        .services
        .audit
        .record(
            &Actor::Person(staff.member.clone()),
            "console.signed_out",
            &staff.member.actor_id(),
            json!({}),
        )
        .await?;
    Ok(see_other("/console/sign-in?reason=signed_out"))
}

pub(super) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_claims_are_read_as_a_list_or_a_single_value() {
        let jwt = |payload: Value| {
            format!(
                "e30.{}.sig",
                URL_SAFE_NO_PAD.encode(payload.to_string().as_bytes())
            )
        };
        assert_eq!(
            claim_values(&jwt(json!({"roles": ["a", "b", 3]})), "roles"),
            ["a", "b"]
        );
        assert_eq!(claim_values(&jwt(json!({"groups": "g"})), "groups"), ["g"]);
        assert!(claim_values(&jwt(json!({})), "roles").is_empty());
        assert!(claim_values("garbage", "roles").is_empty());
    }
}
