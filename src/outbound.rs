//! The one way Counterfoil sends an HTTP request, to a provider or to the CRM: redirects are never
//! followed, only our own `traceparent` goes along, and nothing leaves that holds a card number in
//! its URL, headers or body. The card-number check runs on the request exactly as it will be sent.

use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, IntoUrl, Method, Request, RequestBuilder, Response};

use crate::domain::card_guard;

/// Why a request was not answered.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The request held a card number, so it was not sent.
    #[error("the request held a card number and was not sent")]
    CardData,
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// An HTTP client for requests that leave Counterfoil.
#[derive(Clone)]
pub struct OutboundClient {
    client: Client,
}

impl OutboundClient {
    pub fn new(connect_timeout: Duration, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            // A provider or CRM that redirects is misconfigured or compromised; we never follow
            // it, with our credentials, to a host nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("counterfoil/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }

    /// A request of ours, carrying the current span's `traceparent`.
    pub fn request(&self, method: Method, url: impl IntoUrl) -> RequestBuilder {
        crate::telemetry::propagate(self.client.request(method, url))
    }

    /// Builds the request, checks it and, if it holds no card number, sends it.
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, OutboundError> {
        let request = request.build()?;
        if holds_card_number(&request) {
            tracing::warn!(
                method = %request.method(),
                "outbound request not sent: it held a card number"
            );
            return Err(OutboundError::CardData);
        }
        Ok(self.client.execute(request).await?)
    }
}

/// Whether anything in the request as it would be sent reads as a card number. Two headers are
/// ours and left out: the credential in `Authorization`, from configuration, and `traceparent`,
/// random hex ids (one in two hundred reads as a card number by chance; a caller's that does is
/// never adopted).
pub fn holds_card_number(request: &Request) -> bool {
    card_guard::contains_card_number(request.url().as_str())
        || headers_hold_card_number(request.headers())
        || request
            .body()
            .and_then(|body| body.as_bytes())
            .is_some_and(|bytes| body_holds_card_number(request.headers(), bytes))
}

fn headers_hold_card_number(headers: &HeaderMap) -> bool {
    headers
        .iter()
        .filter(|(name, _)| *name != AUTHORIZATION && name.as_str() != "traceparent")
        .any(|(name, value)| {
            card_guard::contains_card_number(name.as_str())
                || card_guard::contains_card_number(&String::from_utf8_lossy(value.as_bytes()))
        })
}

/// A JSON body is read as JSON too: its escapes (`\n`, `\u0034`) would otherwise split a number.
fn body_holds_card_number(headers: &HeaderMap, bytes: &[u8]) -> bool {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    card_guard::contains_card_number(&String::from_utf8_lossy(bytes))
        || (is_json
            && serde_json::from_slice::<serde_json::Value>(bytes)
                .is_ok_and(|value| card_guard::json_contains_card_number(&value)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::card_guard::test_numbers::{grouped, visa};

    fn client() -> OutboundClient {
        OutboundClient::new(Duration::from_secs(1), Duration::from_secs(1)).unwrap()
    }

    fn built(request: RequestBuilder) -> Request {
        request.build().unwrap()
    }

    #[test]
    fn a_number_anywhere_in_the_request_is_seen() {
        let c = client();
        let v = visa();
        let url = "http://127.0.0.1:9/v1/payments";
        assert!(!holds_card_number(&built(
            c.request(Method::POST, url)
                .json(&serde_json::json!({"a": "CRM-1"}))
        )));
        assert!(holds_card_number(&built(
            c.request(Method::GET, format!("{url}?q={v}"))
        )));
        assert!(holds_card_number(&built(
            c.request(Method::GET, url)
                .header("x-note", grouped(&v, "."))
        )));
        assert!(holds_card_number(&built(
            c.request(Method::POST, url)
                .json(&serde_json::json!({"d": grouped(&v, "\u{2014}")}))
        )));
        assert!(holds_card_number(&built(
            c.request(Method::POST, url)
                .form(&[("description", grouped(&v, " "))])
        )));
        // Our own credential is not read.
        assert!(!holds_card_number(&built(
            c.request(Method::GET, url).bearer_auth(&v)
        )));
    }

    #[tokio::test]
    async fn a_redirect_is_answered_not_followed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 1024];
            let _ = socket.read(&mut buffer).await;
            // Followed, this would go to a port nothing listens on.
            let _ = socket
                .write_all(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\n\r\n")
                .await;
        });
        let c = client();
        let answer = c
            .send(c.request(Method::GET, format!("http://{address}/v1/payments")))
            .await
            .expect("an answer, not a connection error at the redirect's target");
        assert_eq!(answer.status(), 302);
    }

    #[tokio::test]
    async fn a_request_holding_a_number_is_not_sent() {
        // Nothing listens on port 9; a request that was sent would fail to connect instead.
        let c = client();
        let refused = c
            .send(
                c.request(Method::POST, "http://127.0.0.1:9/x")
                    .json(&serde_json::json!({"d": visa()})),
            )
            .await;
        assert!(matches!(refused, Err(OutboundError::CardData)));
    }
}
