//! The staff console: server-rendered pages under `/console` for finance staff, the DPO and
//! administrators, signed in with the council's identity provider. Pages are plain HTML forms and
//! links (no JavaScript); handlers stay thin and call the same services as the API.

mod access;
mod attention;
mod audit;
mod dashboard;
mod data_protection;
mod forms;
mod income;
mod months;
mod pages;
mod payment;
mod payouts;
mod reconciliation;
mod refunds;
mod register;
mod render;
mod search;
mod session;
mod sign_in;
pub use sign_in::callback_url;
mod takings;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use secrecy::ExposeSecret;

use crate::config::{Environment, Settings};
use crate::service::{AppServices, Clock, ServiceError};

pub use render::Templates;
pub use session::Staff;

/// How the council's console looks: its name, logo and colour.
pub struct Brand {
    pub council_name: String,
    pub logo: Option<(Vec<u8>, &'static str)>,
    pub colour: String,
    /// Why this is a test instance (a payment simulator, the test identity provider), if it is:
    /// every page says TEST.
    pub test: Option<&'static str>,
    /// How long a session lasts without a request (the pages warn before it ends).
    pub idle_seconds: u64,
}

/// A council service as the console names it.
#[derive(Clone)]
pub struct ServiceName {
    pub name: String,
    pub fund_code: String,
    /// Where its CRM notifications go (its own, or the default), if anywhere.
    pub crm_url: Option<String>,
}

/// Everything the console's handlers share, built once at start.
pub struct Console {
    pub(crate) templates: Templates,
    pub(crate) brand: Brand,
    pub(crate) sign_in: sign_in::SignIn,
    pub(crate) services: AppServices,
    pub(crate) service_names: BTreeMap<String, ServiceName>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) idle_timeout: chrono::Duration,
    pub(crate) absolute_timeout: chrono::Duration,
    pub(crate) roles_refresh: chrono::Duration,
    sign_in_limiter: DefaultKeyedRateLimiter<IpAddr>,
    trusted_proxies: usize,
}

/// The console ready to mount on a server: its shared state and the session cookie's key.
#[derive(Clone)]
pub struct ConsoleMount {
    console: web::Data<Console>,
    key: Key,
    secure_cookie: bool,
}

impl ConsoleMount {
    /// Builds the console from settings; `public_url` is where browsers reach the console.
    pub fn new(
        settings: &Settings,
        public_url: &str,
        services: AppServices,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let console = &settings.console;
        let key = match &console.session_key {
            Some(source) => Key::derive_from(
                source
                    .resolve()
                    .map_err(anyhow::Error::msg)?
                    .expose_secret()
                    .as_bytes(),
            ),
            None => Key::generate(),
        };
        let logo = match &console.logo_file {
            Some(path) => Some((std::fs::read(path)?, image_type(path))),
            None => None,
        };
        let per_minute =
            NonZeroU32::new(console.sign_in_attempts_per_minute).unwrap_or(NonZeroU32::MIN);
        let state = Console {
            templates: Templates::new(),
            brand: Brand {
                council_name: console.council_name.clone(),
                logo,
                colour: console.brand_colour.clone(),
                test: match (settings.uses_simulator(), console.oidc.is_builtin()) {
                    (true, true) => {
                        Some("payments go to a simulator and sign-in is the test identity provider")
                    }
                    (true, false) => {
                        Some("payments go to a simulator, not a real payment provider")
                    }
                    (false, true) => Some("sign-in is the test identity provider"),
                    (false, false) => None,
                },
                idle_seconds: console.idle_timeout_seconds,
            },
            sign_in: sign_in::SignIn::new(&console.oidc, public_url)?,
            services,
            service_names: settings
                .services
                .iter()
                .map(|(code, s)| {
                    let crm_url = s.crm_url.as_ref();
                    let name = ServiceName {
                        name: s.name.clone(),
                        fund_code: s.fund_code.clone(),
                        crm_url: crm_url
                            .or(settings.notifications.default_url.as_ref())
                            .cloned(),
                    };
                    (code.clone(), name)
                })
                .collect(),
            clock,
            idle_timeout: chrono::Duration::seconds(console.idle_timeout_seconds as i64),
            absolute_timeout: chrono::Duration::seconds(console.absolute_timeout_seconds as i64),
            roles_refresh: chrono::Duration::seconds(console.roles_refresh_seconds as i64),
            sign_in_limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            trusted_proxies: settings.server.trusted_proxy_count(),
        };
        Ok(Self {
            console: web::Data::new(state),
            key,
            secure_cookie: settings.environment == Environment::Production
                || settings.server.tls.is_some(),
        })
    }

    /// Mounts `/console` on `cfg`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let cookie_name = if self.secure_cookie {
            "__Secure-counterfoil-console"
        } else {
            "counterfoil-console"
        };
        let sessions = SessionMiddleware::builder(CookieSessionStore::default(), self.key.clone())
            .cookie_name(cookie_name.into())
            .cookie_path("/console".into())
            .cookie_secure(self.secure_cookie)
            .cookie_http_only(true)
            // Lax, not Strict: the identity provider's redirect back to us is a cross-site
            // navigation that must carry the sign-in's state. Forms carry a CSRF token.
            .cookie_same_site(SameSite::Lax)
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(BrowserSession::default())
            .build();
        cfg.service(
            web::scope("/console")
                .app_data(self.console.clone())
                // A form that cannot be read (its token or a field missing) or an address
                // whose query cannot be: a page in the console's layout, never plain text.
                .app_data(
                    web::FormConfig::default()
                        .limit(16 * 1024)
                        .error_handler(|_, _| ConsoleError::Csrf.into()),
                )
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|_, _| ConsoleError::BadAddress.into()),
                )
                .app_data(
                    web::PathConfig::default().error_handler(|_, _| ConsoleError::NotFound.into()),
                )
                .default_service(web::to(|| async {
                    Err::<HttpResponse, _>(ConsoleError::NotFound)
                }))
                .wrap(from_fn(audit_reads))
                .wrap(from_fn(render_error_pages))
                .wrap(sessions)
                .wrap(from_fn(console_headers))
                .configure(routes),
        );
    }
}

/// The pages for what needs a person: reconciliation, data protection, the audit trail and the
/// needs-attention queue.
fn casework_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/reconciliation", web::get().to(reconciliation::runs))
        .route("/reconciliation", web::post().to(reconciliation::start))
        .route("/reconciliation/{id}", web::get().to(reconciliation::run))
        .route(
            "/reconciliation/{id}/discrepancies.csv",
            web::get().to(reconciliation::csv),
        )
        .route("/data-protection", web::get().to(data_protection::home))
        .route(
            "/data-protection/preview",
            web::post().to(data_protection::preview),
        )
        .route(
            "/data-protection/subject",
            web::get().to(data_protection::subject),
        )
        .route(
            "/data-protection/subject/export.json",
            web::get().to(data_protection::export_json),
        )
        .route(
            "/data-protection/subject/export.csv",
            web::get().to(data_protection::export_csv),
        )
        .route(
            "/data-protection/erase",
            web::get().to(data_protection::confirm_erase),
        )
        .route(
            "/data-protection/erase",
            web::post().to(data_protection::erase),
        )
        .route("/audit", web::get().to(audit::trail))
        .route("/access", web::get().to(access::page))
        .route("/access/keys", web::post().to(access::create_key))
        .route(
            "/access/keys/{id}/revoke",
            web::get().to(access::confirm_revoke),
        )
        .route(
            "/access/keys/{id}/revoke",
            web::post().to(access::revoke_key),
        )
        .route("/access/sessions/end", web::post().to(access::end_session))
        .route("/audit/verify", web::post().to(audit::verify))
        .route("/attention", web::get().to(attention::queue))
        .route(
            "/attention/{kind}/{id}/ask-provider",
            web::post().to(attention::ask_provider),
        )
        .route(
            "/attention/{kind}/{id}/retry",
            web::post().to(attention::retry_notification),
        )
        .route(
            "/attention/{kind}/{id}/resolve",
            web::get().to(attention::confirm_resolve),
        )
        .route(
            "/attention/{kind}/{id}/resolve",
            web::post().to(attention::resolve),
        );
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(dashboard::dashboard))
        .route("/", web::get().to(dashboard::dashboard))
        .route("/assets/console.css", web::get().to(pages::stylesheet))
        .route("/assets/timeout.js", web::get().to(pages::timeout_script))
        .route("/session/keep-alive", web::get().to(pages::keep_alive))
        .route("/assets/brand.css", web::get().to(pages::brand_stylesheet))
        .route("/assets/logo", web::get().to(pages::logo))
        .route("/accessibility", web::get().to(pages::accessibility))
        .route("/sign-in", web::get().to(sign_in::page))
        .route("/sign-in/start", web::get().to(sign_in::start))
        .route("/sign-in/callback", web::get().to(sign_in::callback))
        .route("/sign-out", web::post().to(sign_in::sign_out))
        .route("/payments", web::get().to(search::payments))
        .route("/payments.csv", web::get().to(search::payments_csv))
        .route("/payments/{id}", web::get().to(payment::payment))
        .route("/payments/{id}/refunds", web::post().to(refunds::create))
        .route("/approvals", web::get().to(refunds::approvals))
        .route("/approvals/{id}/approve", web::post().to(refunds::approve))
        .route(
            "/approvals/{id}/decline",
            web::get().to(refunds::confirm_decline),
        )
        .route("/approvals/{id}/decline", web::post().to(refunds::decline))
        .route("/refunds", web::get().to(register::page))
        .route("/refunds.csv", web::get().to(register::csv))
        .route("/takings", web::get().to(takings::summary))
        .route("/takings/ledger.csv", web::get().to(takings::ledger_csv))
        .route("/takings/ledger.json", web::get().to(takings::ledger_json))
        .route("/takings/{day}", web::get().to(takings::day))
        .configure(casework_routes)
        .configure(income::routes);
}

fn image_type(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

impl Console {
    /// Takes one sign-in attempt from the client's allowance.
    pub(crate) fn allow_sign_in(&self, req: &actix_web::HttpRequest) -> Result<(), ConsoleError> {
        let ip = crate::edge::client_address(
            req.peer_addr().map(|a| a.ip()),
            req.headers()
                .get_all("x-forwarded-for")
                .map(|v| v.as_bytes()),
            self.trusted_proxies,
        );
        match ip {
            Some(ip) if self.sign_in_limiter.check_key(&ip).is_err() => {
                tracing::info!("console sign-in refused: too many attempts");
                Err(ConsoleError::TooManyAttempts)
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn service_name(&self, code: &str) -> String {
        self.service_names
            .get(code)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| code.to_owned())
    }

    pub(crate) fn fund_code(&self, code: &str) -> String {
        self.service_names
            .get(code)
            .map(|s| s.fund_code.clone())
            .unwrap_or_default()
    }
}

/// Every page of personal data a person reads is in the audit trail, as reads by API key are:
/// who, the route, what it was about (a payment's id, a day) and which filters were used (their
/// names, never what was typed). If the entry cannot be written, nothing is shown.
async fn audit_reads(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let reads = req.method() == actix_web::http::Method::GET;
    let console = req.app_data::<web::Data<Console>>().cloned();
    let res = next.call(req).await?.map_into_boxed_body();
    let route = res.request().match_pattern().unwrap_or_default();
    let quiet = ["/console", "/console/", "/console/accessibility"].contains(&route.as_str())
        || route.starts_with("/console/assets")
        || route.starts_with("/console/sign-")
        || route.starts_with("/console/session/");
    let member = res
        .request()
        .extensions()
        .get::<crate::domain::staff::StaffMember>()
        .cloned();
    let (true, false, true, Some(member), Some(console)) =
        (reads, quiet, res.status().is_success(), member, console)
    else {
        return Ok(res);
    };
    let subject = res
        .request()
        .match_info()
        .iter()
        .next()
        .map(|(_, v)| v.to_owned())
        .filter(|v| !crate::domain::card_guard::contains_card_number(v))
        .unwrap_or_else(|| route.clone());
    let filters: Vec<String> = url::form_urlencoded::parse(res.request().query_string().as_bytes())
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, _)| k.into_owned())
        .filter(|k| {
            k.len() <= 32
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .collect();
    let actor = crate::domain::Actor::Person(member);
    let detail = serde_json::json!({"route": route, "filters": filters});
    match console
        .services
        .audit
        .record(&actor, "console.viewed", &subject, detail)
        .await
    {
        Ok(()) => Ok(res),
        Err(e) => {
            tracing::error!(error = %e, "a console read could not be audited; page withheld");
            let (request, _) = res.into_parts();
            let mut response = HttpResponse::ServiceUnavailable().finish();
            response.extensions_mut().insert(ErrorPage {
                heading: "Sorry, there is a problem",
                message: "The page could not be shown because its reading could not be recorded. Try again later.",
            });
            Ok(ServiceResponse::new(request, response))
        }
    }
}

/// The console's own headers: a strict CSP (nothing inline, nothing from elsewhere), no framing,
/// no caching, no referrer.
async fn console_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    Ok(res)
}

/// What went wrong, as a page a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("not signed in")]
    NotSignedIn { timed_out: bool },
    /// Time to go back through the identity provider (roles re-read), then on to `return_to`.
    #[error("sign in again")]
    SignInAgain { return_to: Option<String> },
    #[error("forbidden")]
    Forbidden,
    #[error("the form's token did not match")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error("the address could not be read")]
    BadAddress,
    #[error("a page could not be rendered")]
    Template,
    #[error("too many sign-in attempts")]
    TooManyAttempts,
    #[error("sign-in failed: {0}")]
    SignInFailed(String),
    #[error("{0}")]
    Service(#[from] ServiceError),
}

/// The page an error renders as (the middleware adds the layout).
#[derive(Debug, Clone)]
struct ErrorPage {
    heading: &'static str,
    message: &'static str,
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotSignedIn { .. } | Self::SignInAgain { .. } => StatusCode::SEE_OTHER,
            Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadAddress => StatusCode::BAD_REQUEST,
            Self::Template => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            Self::SignInFailed(_) => StatusCode::UNAUTHORIZED,
            Self::Service(e) => crate::edge::status_of(e),
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        if let Self::NotSignedIn { timed_out } = self {
            let to = if *timed_out {
                "/console/sign-in?reason=timeout"
            } else {
                "/console/sign-in"
            };
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to))
                .finish();
        }
        if let Self::SignInAgain { return_to } = self {
            let to = match return_to {
                Some(path) => format!(
                    "/console/sign-in/start?{}",
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("return_to", path)
                        .finish()
                ),
                None => "/console/sign-in/start".to_owned(),
            };
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to))
                .finish();
        }
        let page = match self {
            Self::Forbidden => ErrorPage { heading: "You cannot do that", message: "Your roles do not allow this. If you need to, ask your council's IT service desk for the role." },
            Self::Csrf => ErrorPage { heading: "This form has expired", message: "Go back, reload the page and try again. Nothing was changed." },
            Self::NotFound => ErrorPage { heading: "Page not found", message: "If you typed the address, check it is correct." },
            Self::BadAddress => ErrorPage { heading: "The page address could not be read", message: "If you typed or changed the address, check it. Otherwise go back and use the form on the page." },
            Self::Template => ErrorPage { heading: "Sorry, there is a problem", message: "This page could not be shown. Try again later; nothing was changed." },
            Self::Service(ServiceError::Validation(_)) => ErrorPage { heading: "Check what you asked for", message: "Something in the address, such as a date or a period, could not be used. Go back and check it. Nothing was changed." },
            Self::TooManyAttempts => ErrorPage { heading: "Too many attempts to sign in", message: "Wait a minute, then try again." },
            Self::SignInFailed(why) => {
                tracing::warn!(reason = %why, "console sign-in failed");
                ErrorPage { heading: "Sign-in did not work", message: "Try signing in again. If it keeps happening, tell your council's IT service desk." }
            }
            Self::Service(ServiceError::PaymentNotFound | ServiceError::ApprovalNotFound) => ErrorPage { heading: "Not found", message: "There is no such payment or refund." },
            Self::Service(e) => {
                tracing::warn!(error = %e, "console request failed");
                ErrorPage { heading: "Sorry, there is a problem", message: "Try again later. Nothing you did was lost: check the payment before trying again." }
            }
            Self::NotSignedIn { .. } | Self::SignInAgain { .. } => unreachable!("handled above"),
        };
        let mut response = HttpResponse::build(self.status_code()).finish();
        response.extensions_mut().insert(page);
        response
    }
}

/// The status a service error is shown with in the console.
/// Gives an error's bare response its page, in the console's layout.
async fn render_error_pages(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let console = req.app_data::<web::Data<Console>>().cloned();
    let res = next.call(req).await?.map_into_boxed_body();
    let page = res.response().extensions().get::<ErrorPage>().cloned();
    match (page, console) {
        (Some(page), Some(console)) => {
            let status = res.status();
            let staff = session::current(res.request());
            let html = console.templates.render_error(
                &console.brand,
                staff.as_ref(),
                page.heading,
                page.message,
            );
            Ok(res.into_response(
                HttpResponse::build(status)
                    .content_type("text/html; charset=utf-8")
                    .body(html),
            ))
        }
        _ => Ok(res),
    }
}
