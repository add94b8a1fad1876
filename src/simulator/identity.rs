//! A built-in OpenID Connect identity provider for development: a clearly marked TEST page
//! offering one test person per console role, the authorisation code flow with PKCE (S256 only),
//! and ID tokens signed with the client secret (HS256). Refused in production by configuration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use openidconnect::core::{
    CoreGenderClaim, CoreHmacKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessToken, AdditionalClaims, Audience, AuthorizationCode, EndUserName, IdToken,
    IdTokenClaims, IssuerUrl, Nonce, StandardClaims, SubjectIdentifier,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::escape_html;

/// Where the test identity provider is mounted.
pub const MOUNT: &str = crate::config::BUILTIN_ISSUER_PATH;

/// The test people, one per role, and one who may both ask for and approve refunds (to show the
/// two-person rule refusing them their own).
pub const TEST_PEOPLE: &[(&str, &str, &[&str])] = &[
    ("test-viewer", "Vera Viewer", &["viewer"]),
    ("test-refunder", "Fiona Finance", &["refunder"]),
    ("test-approver", "Arun Approver", &["refund_approver"]),
    (
        "test-supervisor",
        "Sam Supervisor",
        &["refunder", "refund_approver"],
    ),
    ("test-dpo", "Dana Protection", &["dpo"]),
    ("test-admin", "Ada Admin", &["admin"]),
];

/// The roles claim the test people carry (values are the console's role names).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Roles {
    roles: Vec<String>,
}
impl AdditionalClaims for Roles {}

type TestIdToken =
    IdToken<Roles, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// One authorisation waiting to be exchanged for tokens.
struct Grant {
    subject: String,
    redirect_uri: String,
    nonce: Option<String>,
    code_challenge: String,
    issued: Instant,
}

#[derive(Clone)]
pub struct IdentitySimulator {
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    grants: Arc<Mutex<HashMap<String, Grant>>>,
}

impl IdentitySimulator {
    /// `public_url` is where browsers reach this server; `redirect_uri` the console's callback.
    pub fn new(public_url: &str, client_id: &str, client_secret: &str, redirect_uri: &str) -> Self {
        Self {
            issuer: format!("{}{MOUNT}", public_url.trim_end_matches('/')),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            grants: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.service(
            web::scope(MOUNT)
                .app_data(web::Data::new(self.clone()))
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/jwks", web::get().to(jwks))
                .route("/authorize", web::get().to(choose_person))
                .route("/authorize", web::post().to(authorise))
                .route("/token", web::post().to(token)),
        );
    }
}

async fn discovery(sim: web::Data<IdentitySimulator>) -> HttpResponse {
    let issuer = &sim.issuer;
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["HS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile"],
        "claims_supported": ["sub", "name", "roles"],
    }))
}

/// No public keys: tokens are signed with the client secret.
async fn jwks() -> HttpResponse {
    HttpResponse::Ok().json(json!({"keys": []}))
}

#[derive(Deserialize)]
struct AuthoriseQuery {
    client_id: String,
    redirect_uri: String,
    response_type: String,
    state: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

impl AuthoriseQuery {
    fn refusal(&self, sim: &IdentitySimulator) -> Option<&'static str> {
        if self.client_id != sim.client_id {
            Some("unknown client_id")
        } else if self.redirect_uri != sim.redirect_uri {
            Some("redirect_uri is not the one registered for this client")
        } else if self.response_type != "code" {
            Some("only response_type=code is supported")
        } else if self.code_challenge.is_none()
            || self.code_challenge_method.as_deref() != Some("S256")
        {
            Some("PKCE with code_challenge_method=S256 is required")
        } else {
            None
        }
    }
}

fn page(title: &str, body: &str) -> HttpResponse {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} – TEST identity provider</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}.banner{{background:#d4351c;color:#fff;padding:1em;font-weight:bold}}\
         button{{font-size:1rem;margin:.25em 0;padding:.5em 1em}}button:focus{{outline:3px solid #fd0;outline-offset:0}}</style></head>\
         <body><header><p class=\"banner\">TEST identity provider – Counterfoil's built-in stand-in for the council's sign-in, for development only. It is refused in production.</p></header>\
         <main><h1>{title}</h1>{body}</main></body></html>"
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ))
        .body(html)
}

/// The sign-in page: one button per test person.
async fn choose_person(
    sim: web::Data<IdentitySimulator>,
    query: web::Query<AuthoriseQuery>,
) -> HttpResponse {
    if let Some(why) = query.refusal(&sim) {
        return HttpResponse::BadRequest().body(why);
    }
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            escape_html(value)
        )
    };
    let carried = [
        hidden("client_id", &query.client_id),
        hidden("redirect_uri", &query.redirect_uri),
        hidden("response_type", &query.response_type),
        hidden("state", &query.state),
        hidden("nonce", query.nonce.as_deref().unwrap_or("")),
        hidden(
            "code_challenge",
            query.code_challenge.as_deref().unwrap_or(""),
        ),
        hidden("code_challenge_method", "S256"),
    ]
    .concat();
    let people: String = TEST_PEOPLE
        .iter()
        .map(|(subject, name, roles)| {
            format!(
                "<form method=\"post\" action=\"{}/authorize\">{carried}{}<button type=\"submit\">Sign in as {name} ({})</button></form>",
                sim.issuer,
                hidden("subject", subject),
                roles.join(", ")
            )
        })
        .collect();
    page(
        "Choose a test person",
        &format!("<p>Each test person holds the console roles shown.</p>{people}"),
    )
}

#[derive(Deserialize)]
struct AuthoriseForm {
    #[serde(flatten)]
    query: AuthoriseQuery,
    subject: String,
}

/// A test person chosen: back to the client with a one-time code.
async fn authorise(
    sim: web::Data<IdentitySimulator>,
    form: web::Form<AuthoriseForm>,
) -> HttpResponse {
    let form = form.into_inner();
    if let Some(why) = form.query.refusal(&sim) {
        return HttpResponse::BadRequest().body(why);
    }
    if !TEST_PEOPLE.iter().any(|(s, _, _)| *s == form.subject) {
        return HttpResponse::BadRequest().body("no such test person");
    }
    let code = uuid::Uuid::new_v4().simple().to_string();
    let grant = Grant {
        subject: form.subject,
        redirect_uri: form.query.redirect_uri.clone(),
        nonce: form.query.nonce.filter(|n| !n.is_empty()),
        code_challenge: form.query.code_challenge.unwrap_or_default(),
        issued: Instant::now(),
    };
    {
        let mut grants = sim.grants.lock().expect("grants lock");
        grants.retain(|_, g| g.issued.elapsed() < Duration::from_secs(300));
        grants.insert(code.clone(), grant);
    }
    let mut target = match url::Url::parse(&form.query.redirect_uri) {
        Ok(url) => url,
        Err(_) => return HttpResponse::BadRequest().body("redirect_uri is not a URL"),
    };
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &form.query.state);
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target.to_string()))
        .finish()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn token_error(error: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": error}))
}

/// The client's credentials: HTTP Basic (form-encoded id and secret), or in the form.
fn client_credentials(req: &HttpRequest, form: &TokenForm) -> Option<(String, String)> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    match basic {
        Some(pair) => {
            let (id, secret) = pair.split_once(':')?;
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        }
        None => Some((form.client_id.clone()?, form.client_secret.clone()?)),
    }
}

/// The code (once only, with its PKCE verifier) for an ID token naming the test person.
async fn token(
    sim: web::Data<IdentitySimulator>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> HttpResponse {
    use subtle::ConstantTimeEq;
    let form = form.into_inner();
    let Some((client_id, secret)) = client_credentials(&req, &form) else {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    };
    let secret_ok: bool = secret.as_bytes().ct_eq(sim.client_secret.as_bytes()).into();
    if client_id != sim.client_id || !secret_ok {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    }
    if form.grant_type != "authorization_code" {
        return token_error("unsupported_grant_type");
    }
    let Some(grant) = sim.grants.lock().expect("grants lock").remove(&form.code) else {
        return token_error("invalid_grant");
    };
    let verifier = form.code_verifier.unwrap_or_default();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if grant.redirect_uri != form.redirect_uri
        || challenge != grant.code_challenge
        || grant.issued.elapsed() > Duration::from_secs(300)
    {
        return token_error("invalid_grant");
    }
    match id_token(&sim, &grant, &form.code) {
        Ok((access_token, id_token)) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            })),
        Err(why) => HttpResponse::InternalServerError().body(why),
    }
}

fn id_token(
    sim: &IdentitySimulator,
    grant: &Grant,
    code: &str,
) -> Result<(String, String), String> {
    let (subject, name, roles) = TEST_PEOPLE
        .iter()
        .find(|(s, _, _)| *s == grant.subject)
        .ok_or("no such test person")?;
    let issuer = IssuerUrl::new(sim.issuer.clone()).map_err(|e| e.to_string())?;
    let now = chrono::Utc::now();
    let claims = IdTokenClaims::new(
        issuer,
        vec![Audience::new(sim.client_id.clone())],
        now + chrono::Duration::minutes(5),
        now,
        StandardClaims::new(SubjectIdentifier::new((*subject).to_owned()))
            .set_name(Some(EndUserName::new((*name).to_owned()).into())),
        Roles {
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        },
    )
    .set_nonce(grant.nonce.clone().map(Nonce::new));
    let access_token = AccessToken::new(uuid::Uuid::new_v4().simple().to_string());
    let token = TestIdToken::new(
        claims,
        &CoreHmacKey::new(sim.client_secret.as_bytes()),
        CoreJwsSigningAlgorithm::HmacSha256,
        Some(&access_token),
        Some(&AuthorizationCode::new(code.to_owned())),
    )
    .map_err(|e| e.to_string())?;
    Ok((access_token.secret().clone(), token.to_string()))
}
