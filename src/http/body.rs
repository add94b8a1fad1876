//! Reading request bodies safely: JSON only, 64 KiB at most, and never past the card-number guard.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde_json::Value;

use super::problem::ApiError;
use crate::domain::card_guard;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "The request body is too large",
    )
    .detail(format!("Bodies may be at most {MAX_BODY_BYTES} bytes."))
}

/// Reads and parses a JSON body. In order: content type (415), size (413), card numbers anywhere
/// in the raw bytes or the decoded JSON (422, nothing kept or logged), JSON syntax (400).
pub async fn read_json(req: &HttpRequest, payload: web::Payload) -> Result<Value, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" && !(mime.starts_with("application/") && mime.ends_with("+json"))
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "The request body must be JSON",
        )
        .detail("Send `Content-Type: application/json`."));
    }
    let body = read_limited(req, payload).await?;
    guard_then_parse(&body)
}

/// Reads a whole body of at most [`MAX_BODY_BYTES`], refusing early when Content-Length says more.
pub async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "The request body could not be read",
            )
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The guard runs before parsing, so even malformed JSON carrying a card number is refused as
/// card data; and again over the parsed value, to catch digits hidden behind `\u0034` escapes.
pub fn guard_then_parse(body: &[u8]) -> Result<Value, ApiError> {
    if card_guard::contains_card_number(&String::from_utf8_lossy(body)) {
        return Err(ApiError::card_data());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "The request body is not valid JSON",
        )
        // serde_json's message names a line and column, never the content.
        .detail(e.to_string())
    })?;
    if card_guard::json_contains_card_number(&value) {
        return Err(ApiError::card_data());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::card_guard::test_numbers::{grouped, visa};

    #[test]
    fn escaped_digits_are_still_caught() {
        // The first digit written as a JSON escape.
        let spaced = grouped(&visa(), " ");
        let body = format!(r#"{{"description": "\u0034{}"}}"#, &spaced[1..]);
        assert_eq!(
            guard_then_parse(body.as_bytes()).unwrap_err().problem.code,
            "card_data_rejected"
        );
    }

    #[test]
    fn malformed_json_with_a_card_number_is_card_data_not_a_syntax_error() {
        let body = format!(r#"{{"description": "{}""#, visa());
        assert_eq!(
            guard_then_parse(body.as_bytes()).unwrap_err().problem.code,
            "card_data_rejected"
        );
        assert_eq!(
            guard_then_parse(b"{nope").unwrap_err().problem.code,
            "malformed_json"
        );
    }
}
