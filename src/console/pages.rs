//! What every console page is made with (rendering, a refused field, the card-number message),
//! and the pages with nothing to look up: the accessibility statement, the stylesheets, the logo,
//! the idle warning's script and its keep-alive.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use serde_json::{Map, Value};

use super::render::layout;
use super::session::{self, Staff};
use super::{Console, ConsoleError};

/// Renders a page as HTML.
pub(super) fn html(
    console: &Console,
    template: &str,
    context: Map<String, Value>,
) -> Result<HttpResponse, ConsoleError> {
    html_with_status(console, template, context, actix_web::http::StatusCode::OK)
}

pub(super) fn html_with_status(
    console: &Console,
    template: &str,
    context: Map<String, Value>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let body = console
        .templates
        .render(template, &Value::Object(context))
        .map_err(|e| {
            tracing::error!(template, error = %e, "console template failed");
            ConsoleError::Template
        })?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// One refused form field: the input's id and what to do about it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct FieldProblem {
    pub field: &'static str,
    pub message: String,
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(include_str!("assets/console.css"))
}

/// The idle-timeout warning's script (the only script the console has).
pub async fn timeout_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(include_str!("assets/timeout.js"))
}

/// "Stay signed in": the session is touched (by asking for `Staff`) and nothing else happens.
pub async fn keep_alive(_staff: Staff) -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// The council's colour (checked at start-up to carry white text at WCAG AA contrast).
pub async fn brand_stylesheet(console: web::Data<Console>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(format!(
            ".header {{ background-color: {}; }}\n",
            console.brand.colour
        ))
}

pub async fn logo(console: web::Data<Console>) -> Result<HttpResponse, ConsoleError> {
    let (bytes, content_type) = console.brand.logo.clone().ok_or(ConsoleError::NotFound)?;
    Ok(HttpResponse::Ok().content_type(content_type).body(bytes))
}

pub async fn accessibility(
    console: web::Data<Console>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let staff = session::current(&req);
    let context = layout(
        &console.brand,
        staff.as_ref(),
        "accessibility",
        "Accessibility statement",
    );
    html(&console, "accessibility.html", context)
}

/// What a person is told when they type a card number: it is refused and never repeated.
/// Empties every field that holds a card number (so the page, its links and the audit trail
/// never repeat it) and says so for each: what every search form does first.
pub(super) fn refuse_card_numbers<'a>(
    fields: impl IntoIterator<Item = (&'static str, &'a mut String)>,
) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    for (field, value) in fields {
        if crate::domain::card_guard::contains_card_number(value) {
            value.clear();
            problems.push(FieldProblem {
                field,
                message: CARD_NUMBER_REFUSED.to_owned(),
            });
        }
    }
    problems
}

/// A form whose only field is its CSRF token (a button that changes something).
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    pub csrf_token: String,
}

pub(super) const CARD_NUMBER_REFUSED: &str =
    "Do not enter card numbers: the council never keeps card details. Remove the card number";
