//! Identifier and text newtypes that parse on the way in: request references, service codes,
//! payment ids, descriptions, emails, return URLs, metadata and idempotency keys.

use std::collections::BTreeMap;
use std::fmt;

use url::Url;

/// Why a value was refused. The message never repeats the value (it may be personal or card data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Characters GOV.UK Pay's firewall refuses in request bodies (`< > " \ |`).
pub const FIREWALL_REFUSED: &[char] = &['<', '>', '"', '\\', '|'];

fn check_text(value: &str, max: usize) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new("required", "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(
            "too_long",
            format!("must be at most {max} characters"),
        ));
    }
    if value.contains(FIREWALL_REFUSED) {
        return Err(FieldError::new(
            "forbidden_characters",
            "must not contain any of < > \" \\ | (the payment provider refuses them)",
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(
            "forbidden_characters",
            "must not contain control characters",
        ));
    }
    Ok(())
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl $name {
            pub fn into_inner(self) -> String {
                self.0
            }
        }
    };
}

/// The CRM's reference for the service request being paid for: 1..64 of `[A-Za-z0-9_./-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestRef(String);
string_newtype!(RequestRef);

impl RequestRef {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        if value.is_empty() || value.len() > 64 {
            return Err(FieldError::new(
                "invalid_length",
                "must be 1 to 64 characters",
            ));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'))
        {
            return Err(FieldError::new(
                "invalid_format",
                "may contain only letters, digits and _ . / -",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

/// A configured council service's code, e.g. `parking-permits`: 1..64 of `[a-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceCode(String);
string_newtype!(ServiceCode);

impl ServiceCode {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        if value.is_empty()
            || value.len() > 64
            || !value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(FieldError::new(
                "invalid_format",
                "must be 1 to 64 of lowercase letters, digits, _ and -",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

/// A new id for something Counterfoil makes: `prefix` and a UUIDv7 written with the sixteen letters
/// `a`-`p` for its hex digits. Ids still sort by time, and hold no digits at all, so no id of ours
/// can ever look like a card number (hex ids do, about one in 500).
pub fn new_id(prefix: &str) -> String {
    id_from_uuid(prefix, uuid::Uuid::now_v7())
}

fn id_from_uuid(prefix: &str, uuid: uuid::Uuid) -> String {
    format!("{prefix}{}", in_letters(uuid.as_bytes()))
}

/// Bytes written as hex, but with the sixteen letters `a`-`p` for the digits `0`-`f`. Every id and
/// digest Counterfoil stores is written this way, so none can hold a run of digits that a
/// card-number scan (or a search for a card's last four) would match by chance.
pub fn in_letters(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0f])
        .map(|nibble| char::from(b'a' + nibble))
        .collect()
}

/// Counterfoil's own payment id: `pay_` and 32 letters `a`-`p` (a UUIDv7, so ids sort by time).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentId(String);
string_newtype!(PaymentId);

impl PaymentId {
    pub const PREFIX: &'static str = "pay_";

    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        Self(id_from_uuid(Self::PREFIX, uuid))
    }

    pub fn new() -> Self {
        Self::from_uuid(uuid::Uuid::now_v7())
    }

    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let ok = value.strip_prefix(Self::PREFIX).is_some_and(|rest| {
            rest.len() == 32 && rest.bytes().all(|b| (b'a'..=b'p').contains(&b))
        });
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(FieldError::new(
                "invalid_format",
                "is not a Counterfoil payment id",
            ))
        }
    }
}

impl Default for PaymentId {
    fn default() -> Self {
        Self::new()
    }
}

/// What the citizen is paying for, shown on the provider's page: 1..255 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);
string_newtype!(Description);

impl Description {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        check_text(value, 255)?;
        Ok(Self(value.to_owned()))
    }
}

/// The citizen's email, to prefill the provider's page: at most 254 characters, one `@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);
string_newtype!(Email);

impl Email {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        check_text(value, 254)?;
        let mut parts = value.split('@');
        let (local, domain) = (parts.next(), parts.next());
        let well_formed = matches!((local, domain, parts.next()), (Some(l), Some(d), None)
            if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.'))
            && !value.contains(char::is_whitespace);
        if !well_formed {
            return Err(FieldError::new("invalid_format", "is not an email address"));
        }
        Ok(Self(value.to_owned()))
    }
}

/// Where the provider sends the citizen back to. https, or http to a loopback host outside production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnUrl(Url);

impl ReturnUrl {
    pub fn parse(value: &str, allow_loopback_http: bool) -> Result<Self, FieldError> {
        if value.len() > 2000 {
            return Err(FieldError::new(
                "too_long",
                "must be at most 2000 characters",
            ));
        }
        if value.contains(FIREWALL_REFUSED) || value.chars().any(char::is_whitespace) {
            return Err(FieldError::new(
                "forbidden_characters",
                "must not contain spaces or any of < > \" \\ |",
            ));
        }
        let url = Url::parse(value)
            .map_err(|_| FieldError::new("invalid_format", "is not an absolute URL"))?;
        let loopback = match url.host() {
            Some(url::Host::Domain(name)) => name == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match url.scheme() {
            "https" if url.host().is_some() => {}
            "http" if allow_loopback_http && loopback => {}
            _ => {
                return Err(FieldError::new(
                    "insecure_url",
                    "must be an https URL (http is allowed only to localhost outside production)",
                ))
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FieldError::new(
                "invalid_format",
                "must not contain credentials",
            ));
        }
        // Checked again in the form that is kept and sent: parsing turns a host's full-width
        // or percent-escaped digits into plain ones.
        if super::card_guard::contains_card_number(url.as_str()) {
            return Err(FieldError::new(
                "card_data_rejected",
                "appears to contain a card number",
            ));
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Up to 10 string pairs the CRM attaches to a payment; keys 1..30, values 0..100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    pub const MAX_PAIRS: usize = 10;

    /// Keys prefixed like this are Counterfoil's own and refused from callers.
    pub const RESERVED_PREFIX: &'static str = "counterfoil";

    pub fn parse(pairs: BTreeMap<String, String>) -> Result<Self, FieldError> {
        if pairs.len() > Self::MAX_PAIRS {
            return Err(FieldError::new("too_many", "may hold at most 10 pairs"));
        }
        for (key, value) in &pairs {
            let key_ok = !key.is_empty()
                && key.chars().count() <= 30
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !key_ok {
                return Err(FieldError::new(
                    "invalid_key",
                    "keys must be 1 to 30 of letters, digits, _ - .",
                ));
            }
            if key.to_ascii_lowercase().starts_with(Self::RESERVED_PREFIX) {
                return Err(FieldError::new(
                    "reserved_key",
                    "keys starting with 'counterfoil' are reserved",
                ));
            }
            if value.chars().count() > 100 {
                return Err(FieldError::new(
                    "too_long",
                    "values must be at most 100 characters",
                ));
            }
            if value.contains(FIREWALL_REFUSED) || value.chars().any(char::is_control) {
                return Err(FieldError::new(
                    "forbidden_characters",
                    "values must not contain control characters or any of < > \" \\ |",
                ));
            }
        }
        Ok(Self(pairs))
    }

    pub fn pairs(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The `Idempotency-Key` header: 1..255 of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);
string_newtype!(IdempotencyKey);

impl IdempotencyKey {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        if value.is_empty() || value.len() > 255 {
            return Err(FieldError::new(
                "invalid_length",
                "must be 1 to 255 characters",
            ));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(FieldError::new(
                "invalid_format",
                "may contain only letters, digits, _ and -",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

#[cfg(test)]
mod return_url_tests {
    use super::*;

    #[test]
    fn a_card_number_that_parsing_reveals_is_refused() {
        let v = crate::domain::card_guard::test_numbers::visa();
        // Full-width digits in a host come out of parsing as plain ones.
        let wide: String = v
            .chars()
            .map(|c| char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap())
            .collect();
        let error = ReturnUrl::parse(&format!("https://{wide}.example.org/"), false).unwrap_err();
        assert_eq!(error.code, "card_data_rejected");
        assert!(ReturnUrl::parse("https://council.example.gov.uk/paid", false).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_refs() {
        assert!(RequestRef::parse("CRM-2024/000123_a.b").is_ok());
        assert!(RequestRef::parse("").is_err());
        assert!(RequestRef::parse(&"a".repeat(65)).is_err());
        assert!(RequestRef::parse("has space").is_err());
        assert!(RequestRef::parse("a<b").is_err());
    }

    #[test]
    fn description_refuses_firewall_characters_and_length() {
        assert!(Description::parse("Parking permit, zone A (12 months)").is_ok());
        for bad in ["a<b", "a>b", "say \"hi\"", "back\\slash", "pipe|"] {
            assert_eq!(
                Description::parse(bad).unwrap_err().code,
                "forbidden_characters"
            );
        }
        assert_eq!(
            Description::parse(&"é".repeat(256)).unwrap_err().code,
            "too_long"
        );
        assert!(Description::parse(&"é".repeat(255)).is_ok());
    }

    #[test]
    fn return_url_must_be_https_except_loopback_in_development() {
        assert!(ReturnUrl::parse("https://council.gov.uk/paid", false).is_ok());
        assert!(ReturnUrl::parse("http://council.gov.uk/paid", true).is_err());
        assert!(ReturnUrl::parse("http://127.0.0.1:3000/paid", true).is_ok());
        assert!(ReturnUrl::parse("http://localhost/paid", true).is_ok());
        assert!(ReturnUrl::parse("http://localhost/paid", false).is_err());
        assert!(ReturnUrl::parse("ftp://council.gov.uk/", true).is_err());
        assert!(ReturnUrl::parse("not a url", true).is_err());
        assert!(ReturnUrl::parse("https://user:pw@council.gov.uk/", false).is_err());
    }

    #[test]
    fn metadata_limits() {
        let ok: BTreeMap<_, _> = (0..10)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        assert!(Metadata::parse(ok.clone()).is_ok());
        let mut too_many = ok;
        too_many.insert("k10".into(), "v".into());
        assert_eq!(Metadata::parse(too_many).unwrap_err().code, "too_many");
        let long_key = BTreeMap::from([("k".repeat(31), "v".to_string())]);
        assert_eq!(Metadata::parse(long_key).unwrap_err().code, "invalid_key");
        let long_value = BTreeMap::from([("k".to_string(), "v".repeat(101))]);
        assert_eq!(Metadata::parse(long_value).unwrap_err().code, "too_long");
        let reserved = BTreeMap::from([("counterfoil_id".to_string(), "x".to_string())]);
        assert_eq!(Metadata::parse(reserved).unwrap_err().code, "reserved_key");
    }

    #[test]
    fn ids_sort_by_time_and_hold_no_digits() {
        let first = PaymentId::new();
        let second = PaymentId::new();
        assert!(first < second);
        assert!(!first.as_ref().bytes().any(|b| b.is_ascii_digit()));
        assert!(new_id("rfd_").starts_with("rfd_"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5000))]

        /// Hex ids tripped the card guard about one time in 500; ours never can.
        #[test]
        fn no_id_of_ours_looks_like_a_card_number(bits in proptest::prelude::any::<u128>()) {
            let id = PaymentId::from_uuid(uuid::Uuid::from_u128(bits));
            proptest::prop_assert!(!crate::domain::card_guard::contains_card_number(id.as_ref()));
            proptest::prop_assert_eq!(PaymentId::parse(id.as_ref()), Ok(id.clone()));
        }
    }

    #[test]
    fn payment_ids_round_trip() {
        let id = PaymentId::from_uuid(uuid::Uuid::now_v7());
        assert_eq!(PaymentId::parse(id.as_ref()).unwrap(), id);
        assert!(PaymentId::parse("pay_xyz").is_err());
        assert!(PaymentId::parse("hu20sqlact5260q2nanm0q8u93").is_err());
    }

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse("550e8400-e29b-41d4-a716-446655440000").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"a".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("a b").is_err());
    }

    #[test]
    fn emails() {
        assert!(Email::parse("citizen@example.org").is_ok());
        assert!(Email::parse("no-at-sign").is_err());
        assert!(Email::parse("a@b@c.org").is_err());
        assert!(Email::parse("a@localhost").is_err());
    }
}
