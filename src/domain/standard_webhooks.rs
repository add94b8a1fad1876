//! Standard Webhooks signing for our notifications to the CRM: secrets written `whsec_<base64>`,
//! and `v1,<base64 HMAC-SHA256>` over `{id}.{timestamp}.{body}`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a symmetric Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("must start with whsec_")]
    Prefix,
    #[error("must be whsec_ followed by base64")]
    Base64,
    #[error("must hold 24 to 64 random bytes")]
    Length,
}

/// The HMAC key inside a `whsec_…` secret (the base64-decoded bytes, as the specification says).
pub fn secret_key(secret: &str) -> Result<Vec<u8>, SecretError> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or(SecretError::Prefix)?;
    let key = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
    if (24..=64).contains(&key.len()) {
        Ok(key)
    } else {
        Err(SecretError::Length)
    }
}

/// One `v1,<base64>` signature of a message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per active key, space-separated (rotation).
pub fn signature_header(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| sign(key, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's published test vector (its reference libraries' tests).
    #[test]
    fn matches_the_published_test_vector() {
        let key = secret_key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let signature = sign(
            &key,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(signature, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn two_keys_give_two_signatures_and_bad_secrets_are_refused() {
        let a = secret_key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let b = secret_key(&format!("whsec_{}", STANDARD.encode([7u8; 32]))).unwrap();
        let header = signature_header(&[a, b], "evt_1", 1, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.split(' ').all(|s| s.starts_with("v1,")));
        assert_eq!(
            secret_key("C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            Err(SecretError::Prefix)
        );
        assert_eq!(secret_key("whsec_!!!"), Err(SecretError::Base64));
        assert_eq!(
            secret_key(&format!("whsec_{}", STANDARD.encode([1u8; 8]))),
            Err(SecretError::Length)
        );
    }
}
