//! Who is signed in: the session named by the encrypted cookie and held on the server (so that
//! sign-out, an administrator or a change of roles ends it, and a copied cookie is worth nothing
//! afterwards), its idle and absolute timeouts, the `Staff` extractor every console page asks
//! for, and the CSRF token every form carries. API keys are never looked at here.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Console, ConsoleError};
use crate::domain::staff::{Permission, StaffMember, StaffRole};

const STAFF_KEY: &str = "staff";

/// What the session cookie holds about the person (no tokens from the identity provider).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SignedIn {
    pub subject: String,
    pub name: String,
    pub roles: Vec<String>,
    pub csrf: String,
    /// Names the server's record of the session (kept there only as a hash).
    pub token: String,
    pub signed_in_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// A signed-in person, with their session's form token.
#[derive(Debug, Clone)]
pub struct Staff {
    pub member: StaffMember,
    pub csrf: String,
    pub(super) token: String,
}

impl Staff {
    /// Refuses (403) unless the person's roles allow `permission`.
    /// The person as services and the audit trail know them.
    pub fn actor(&self) -> crate::domain::Actor {
        crate::domain::Actor::Person(self.member.clone())
    }

    pub fn require(&self, permission: Permission) -> Result<(), ConsoleError> {
        if self.member.may(permission) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden)
        }
    }

    /// Refuses a form whose token is not this session's (constant-time comparison).
    pub fn check_csrf(&self, presented: &str) -> Result<(), ConsoleError> {
        use subtle::ConstantTimeEq;
        if self.csrf.as_bytes().ct_eq(presented.as_bytes()).into() {
            Ok(())
        } else {
            tracing::info!("console form refused: CSRF token did not match");
            Err(ConsoleError::Csrf)
        }
    }
}

/// Starts a session for `member` (a new session id, so nothing from before sign-in carries over),
/// recorded on the server.
pub(super) async fn begin(
    console: &Console,
    session: &Session,
    member: &StaffMember,
    now: DateTime<Utc>,
) -> Result<(), ConsoleError> {
    session.renew();
    let token = random_token();
    console
        .services
        .staff_sessions
        .begin(member, &token, now)
        .await?;
    let signed_in = SignedIn {
        subject: member.subject.clone(),
        name: member.name.clone(),
        roles: member.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        csrf: random_token(),
        token,
        signed_in_at: now,
        last_seen: now,
    };
    session
        .insert(STAFF_KEY, signed_in)
        .map_err(|e| ConsoleError::SignInFailed(e.to_string()))
}

/// 32 random bytes in URL-safe base64.
pub(super) fn random_token() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a session is no longer valid.
fn expired(s: &SignedIn, console: &Console, now: DateTime<Utc>) -> bool {
    now - s.last_seen > console.idle_timeout || now - s.signed_in_at > console.absolute_timeout
}

/// The signed-in person, if any, without moving their idle clock.
pub(super) fn current(req: &HttpRequest) -> Option<Staff> {
    let console = req.app_data::<web::Data<Console>>()?;
    let signed_in = req.get_session().get::<SignedIn>(STAFF_KEY).ok()??;
    (!expired(&signed_in, console, console.clock.now())).then(|| staff_of(signed_in))
}

fn staff_of(s: SignedIn) -> Staff {
    let roles: BTreeSet<StaffRole> = s.roles.iter().filter_map(|r| r.parse().ok()).collect();
    Staff {
        member: StaffMember {
            subject: s.subject,
            name: s.name,
            roles,
        },
        csrf: s.csrf,
        token: s.token,
    }
}

impl FromRequest for Staff {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let console = req.app_data::<web::Data<Console>>().cloned();
        let session = req.get_session();
        let req = req.clone();
        Box::pin(async move {
            let console = console.ok_or(ConsoleError::NotSignedIn { timed_out: false })?;
            let signed_in = session
                .get::<SignedIn>(STAFF_KEY)
                .ok()
                .flatten()
                .ok_or(ConsoleError::NotSignedIn { timed_out: false })?;
            let now = console.clock.now();
            let live = !expired(&signed_in, &console, now)
                && console
                    .services
                    .staff_sessions
                    .check(
                        &signed_in.token,
                        console.idle_timeout,
                        console.absolute_timeout,
                    )
                    .await?;
            if !live {
                session.purge();
                return Err(ConsoleError::NotSignedIn { timed_out: true });
            }
            if now - signed_in.signed_in_at > console.roles_refresh {
                // Back through the identity provider, so that its roles are read again.
                console
                    .services
                    .staff_sessions
                    .end(&signed_in.token, "roles_refresh")
                    .await?;
                session.purge();
                let return_to = (req.method() == actix_web::http::Method::GET)
                    .then(|| req.uri().path_and_query().map(|p| p.to_string()))
                    .flatten();
                return Err(ConsoleError::SignInAgain { return_to });
            }
            let refreshed = SignedIn {
                last_seen: now,
                ..signed_in
            };
            session
                .insert(STAFF_KEY, &refreshed)
                .map_err(|e| ConsoleError::SignInFailed(e.to_string()))?;
            let staff = staff_of(refreshed);
            // For the audit of what this person reads (see `audit_reads`).
            req.extensions_mut().insert(staff.member.clone());
            Ok(staff)
        })
    }
}
