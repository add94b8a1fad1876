//! Idempotency fingerprints: one SHA-256 over the route, the caller and the canonical request body,
//! written in letters (see `refs::in_letters`) so that no stored digest holds a run of digits.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Same route + same caller + same JSON (whatever its key order or spacing) gives the same
/// fingerprint; anything else differs. serde_json's map keeps keys sorted, so `to_string` is canonical.
pub fn fingerprint(route: &str, principal: &str, body: &Value) -> String {
    let mut hasher = Sha256::new();
    for part in [route, principal, &body.to_string()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    crate::domain::refs::in_letters(&hasher.finalize())
}

/// A request that may be repeated: the caller's Idempotency-Key, the route it was sent to and the
/// fingerprint of what it asked, so a repeat is answered as the first was and a different request
/// under the same key is refused.
#[derive(Debug, Clone)]
pub struct Idempotent {
    pub key: super::IdempotencyKey,
    pub route: String,
    pub fingerprint: String,
}

impl Idempotent {
    pub fn new(key: super::IdempotencyKey, route: String, principal: &str, body: &Value) -> Self {
        let fingerprint = fingerprint(&route, principal, body);
        Self {
            key,
            route,
            fingerprint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_spacing_do_not_matter() {
        let a: Value = serde_json::from_str(r#"{"a":1, "b":{"c":"x","d":2}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{ "b": {"d":2,"c":"x"}, "a": 1 }"#).unwrap();
        assert_eq!(fingerprint("r", "p", &a), fingerprint("r", "p", &b));
    }

    #[test]
    fn a_fingerprint_holds_no_digits() {
        // A stored hex digest can hold a card's last four by chance, which a data scan must not
        // have to explain away.
        let print = fingerprint("r", "p", &json!({"amount": 1234}));
        assert_eq!(print.len(), 64);
        assert!(print.bytes().all(|b| (b'a'..=b'p').contains(&b)), "{print}");
    }

    #[test]
    fn body_route_and_caller_all_count() {
        let body = json!({"a": 1});
        let base = fingerprint("r", "p", &body);
        assert_ne!(base, fingerprint("r", "p", &json!({"a": 2})));
        assert_ne!(base, fingerprint("r2", "p", &body));
        assert_ne!(base, fingerprint("r", "p2", &body));
    }
}
