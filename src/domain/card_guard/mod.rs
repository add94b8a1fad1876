//! The card-number detector: finds a payment card number (PAN) in text or JSON as people and
//! systems write one, for every guard (the door, the store, logs and traces, outbound requests,
//! the audit trail, metrics) and for `pci-scan`, and refuses nothing else.
//!
//! Text is read as a person sees it ([`reading`]): digits of every script and form by their value,
//! invisible characters (zero-width, bidi, soft hyphens, fillers, combining marks) as nothing.
//! The digits then fall into *groups*, each a run of digits with nothing visible between them, and
//! a card number is found in one of three shapes ([`layout`]):
//!
//! - one group that is a whole card number (a network's prefix, a length that network issues, and
//!   the Luhn check), also inside a word or a URL (`ref4539…467x`);
//! - one group that is a card number with an expiry (`MMYY`, `MMYYYY`) and or a security code
//!   glued on after it;
//! - consecutive groups written in a layout people use (groups of 1 to 4 with a shorter last one,
//!   `4-4-4-4`, Amex `4-6-5`, Diners `4-6-4`, `4-4-5`, `6-13`) and joined by one kind of separator
//!   repeated: white space, a dash, a full stop, a slash or an underscore.
//!
//! A word, a comma or a semicolon between two groups, or separators of different kinds, mean the
//! digits are separate numbers: a list of amounts, two UPRNs, a date range. Percent-escapes and
//! JSON's and Rust's backslash escapes are read decoded as well as left as they are.
//!
//! The detector answers yes or no, or removes what it found ([`redact`]); it never returns the
//! digits it matched, so a caller cannot leak them by accident.

mod layout;
mod networks;
mod reading;

use std::borrow::Cow;

use serde_json::Value;

pub use networks::{luhn_valid, MAX_DIGITS, MIN_DIGITS};

/// What [`redact`] puts where a card number was.
pub const REDACTED: &str = "[card number removed]";

/// True when `text` contains a card number anywhere in it, as written, percent-decoded or with
/// its backslash escapes read.
pub fn contains_card_number(text: &str) -> bool {
    !layout::card_spans(text, true).is_empty() || hidden_by_escapes(text)
}

/// Stricter than [`contains_card_number`], for a value we may decline at no cost (a caller's trace
/// id): true when any run of digits holds a card number anywhere inside it, whatever is around it,
/// inside a hex id or a UUID too.
pub fn contains_card_digits(text: &str) -> bool {
    layout::digit_runs_hold_card_number(text)
}

/// A card number that shows only once `text`'s percent-escapes or backslash escapes are decoded.
fn hidden_by_escapes(text: &str) -> bool {
    percent_decoded(text).is_some_and(|decoded| !layout::card_spans(&decoded, true).is_empty())
        || escapes_decoded(text).is_some_and(|decoded| {
            !layout::card_spans(&decoded, true).is_empty()
                || percent_decoded(&decoded)
                    .is_some_and(|twice| !layout::card_spans(&twice, true).is_empty())
        })
}

/// `text` with every card number in it replaced by [`REDACTED`]; borrowed when there was none.
/// When a card number shows only once escapes are decoded, the whole text is replaced.
pub fn redact(text: &str) -> Cow<'_, str> {
    let spans = layout::card_spans(text, false);
    if spans.is_empty() {
        return if hidden_by_escapes(text) {
            Cow::Borrowed(REDACTED)
        } else {
            Cow::Borrowed(text)
        };
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        out.push_str(&text[at..span.start]);
        out.push_str(REDACTED);
        at = span.end;
    }
    out.push_str(&text[at..]);
    // A number hidden by escapes in what is left goes too.
    if contains_card_number(&out) {
        return Cow::Borrowed(REDACTED);
    }
    Cow::Owned(out)
}

/// True when any string, object key or number anywhere inside `value` holds a card number.
pub fn json_contains_card_number(value: &Value) -> bool {
    match value {
        Value::String(s) => contains_card_number(s),
        Value::Number(n) => contains_card_number(&n.to_string()),
        Value::Array(items) => items.iter().any(json_contains_card_number),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| contains_card_number(k) || json_contains_card_number(v)),
        Value::Bool(_) | Value::Null => false,
    }
}

/// True when `text`, or the strings inside it when it is a JSON document, hold a card number.
pub fn text_or_json_contains_card_number(text: &str) -> bool {
    contains_card_number(text)
        || (text.trim_start().starts_with(['{', '[', '"'])
            && serde_json::from_str::<Value>(text).is_ok_and(|v| json_contains_card_number(&v)))
}

/// `value` with every card number in its strings, keys and numbers replaced by [`REDACTED`].
pub fn redact_json(value: Value) -> Value {
    match value {
        Value::String(s) => match redact(&s) {
            Cow::Borrowed(_) => Value::String(s),
            Cow::Owned(cleaned) => Value::String(cleaned),
        },
        Value::Number(n) if contains_card_number(&n.to_string()) => Value::String(REDACTED.into()),
        Value::Array(items) => Value::Array(items.into_iter().map(redact_json).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (redact(&k).into_owned(), redact_json(v)))
                .collect(),
        ),
        other => other,
    }
}

/// True when these digits, as written with nothing between them, are a card number: a length and
/// prefix a network issues, and the Luhn check.
pub fn looks_like_pan(digits: &str) -> bool {
    digits.bytes().all(|b| b.is_ascii_digit())
        && networks::is_card_number(&digits.bytes().map(|b| b - b'0').collect::<Vec<_>>())
}

/// The text with its percent-escapes (and a form's `+` for a space) decoded, when it has any.
fn percent_decoded(text: &str) -> Option<String> {
    if !text.contains(['%', '+']) {
        return None;
    }
    let decoded = url::form_urlencoded::parse(text.as_bytes())
        .flat_map(|(k, v)| [k.into_owned(), v.into_owned()])
        .collect::<Vec<_>>()
        .join("\n");
    (decoded != text).then_some(decoded)
}

/// Reads the backslash escapes that JSON and log formatters write (`\n`, `\u0034`, Rust's
/// `\u{200b}`, `\x34`) back into the characters they stand for; `None` when there are none.
pub fn escapes_decoded(text: &str) -> Option<String> {
    if !text.contains('\\') {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(kind @ ('u' | 'x')) => {
                let braced = kind == 'u' && chars.peek() == Some(&'{');
                if braced {
                    chars.next();
                }
                let most = match (kind, braced) {
                    ('x', _) => 2,
                    (_, true) => 6,
                    _ => 4,
                };
                let mut hex = String::new();
                while let Some(&h) = chars.peek() {
                    if h.is_ascii_hexdigit() && hex.len() < most {
                        hex.push(h);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if braced && chars.peek() == Some(&'}') {
                    chars.next();
                }
                let code = u32::from_str_radix(&hex, 16).unwrap_or(u32::MAX);
                match char::from_u32(code) {
                    Some(decoded) => out.push(decoded),
                    // A UTF-16 surrogate pair, as JSON writes a character beyond the BMP.
                    None if (0xD800..0xDC00).contains(&code) => match low_surrogate(&mut chars) {
                        Some(low) => out.extend(char::decode_utf16([code as u16, low]).flatten()),
                        None => out.push(' '),
                    },
                    None => out.push(' '),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    (out != text).then_some(out)
}

/// The low half of a surrogate pair written as `\uDCxx` next, consumed when it is there.
fn low_surrogate(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<u16> {
    let mut ahead = chars.clone();
    if ahead.next() != Some('\\') || ahead.next() != Some('u') {
        return None;
    }
    let hex: String = ahead.by_ref().take(4).collect();
    let low = u16::from_str_radix(&hex, 16)
        .ok()
        .filter(|u| (0xDC00..0xE000).contains(u))?;
    *chars = ahead;
    Some(low)
}

/// Card numbers for tests, built at run time from a network prefix and a length (the check digit
/// computed), so that no complete card number is ever written down in the code.
#[cfg(test)]
pub(crate) mod test_numbers {
    /// A Luhn-valid number of `len` digits starting with `prefix`.
    pub fn pan(prefix: &str, len: usize) -> String {
        let body: String = prefix
            .chars()
            .chain("73104829".chars().cycle())
            .take(len - 1)
            .collect();
        ('0'..='9')
            .map(|check| format!("{body}{check}"))
            .find(|candidate| {
                super::luhn_valid(&candidate.bytes().map(|b| b - b'0').collect::<Vec<_>>())
            })
            .expect("one check digit fits")
    }

    /// A 16-digit Visa-range number.
    pub fn visa() -> String {
        pan("4", 16)
    }

    /// The number in groups of four joined by `separator`, as people type it.
    pub fn grouped(pan: &str, separator: &str) -> String {
        pan.as_bytes()
            .chunks(4)
            .map(|group| std::str::from_utf8(group).expect("digits"))
            .collect::<Vec<_>>()
            .join(separator)
    }
}

#[cfg(test)]
mod tests;
