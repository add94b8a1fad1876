//! The card-number detector: finds anything that could be a payment card number (PAN) in text
//! or JSON, whatever its disguise, for every guard (the door, the store, logs and traces, outbound
//! requests, the audit trail) and for `pci-scan`.
//!
//! Text is read the way a person would read it back: each character in its NFKC form (full-width,
//! superscript and circled digits become digits), every Unicode decimal digit by its value
//! (Arabic-Indic, Devanagari, …), percent-escapes decoded as well as left as they are. Digits joined
//! by any run of characters that are neither letters nor digits (spaces, dashes, dots, slashes,
//! tabs, newlines, zero-width and soft-hyphen characters, …) are one run, and every window of
//! 13–19 digits inside a run is a candidate: it is a card number when it passes the Luhn check and
//! starts with a card network's prefix. A letter ends a run. Two shapes are read as words, not
//! digits, because random ones would otherwise match: a UUID (8-4-4-4-12 hex digits) and an
//! RFC 3339 time of day (`HH:MM:SS.fffffffff+HH:MM`, each field in its range).
//!
//! The detector answers yes or no, or removes what it found ([`redact`]); it never returns the
//! digits it matched, so a caller cannot leak them by accident.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::Value;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

const MIN_DIGITS: usize = 13;
const MAX_DIGITS: usize = 19;

/// What [`redact`] puts where a card number was.
pub const REDACTED: &str = "[card number removed]";

/// True when `text` contains something that could be a card number anywhere in it.
pub fn contains_card_number(text: &str) -> bool {
    !card_spans(text, true).is_empty()
        || percent_decoded(text).is_some_and(|decoded| !card_spans(&decoded, true).is_empty())
}

/// `text` with every card number in it replaced by [`REDACTED`]; borrowed when there was none.
/// When a card number shows only once percent-escapes are decoded, the whole text is replaced.
pub fn redact(text: &str) -> Cow<'_, str> {
    let spans = card_spans(text, false);
    if spans.is_empty() {
        return match percent_decoded(text) {
            Some(decoded) if !card_spans(&decoded, true).is_empty() => Cow::Borrowed(REDACTED),
            _ => Cow::Borrowed(text),
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
    // A number hidden by percent-escapes in what is left goes too.
    if contains_card_number(&out) {
        return Cow::Borrowed(REDACTED);
    }
    Cow::Owned(out)
}

/// True when any string, object key or number anywhere inside `value` could be a card number.
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

/// True when `text`, or the strings inside it when it is a JSON document, could hold a card
/// number: JSON escapes (`\n`, `\u0034`) would otherwise split one where a reader sees it whole.
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

/// The text with its percent-escapes decoded, when it has any that decode to something else.
fn percent_decoded(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let decoded = url::form_urlencoded::parse(text.as_bytes())
        .flat_map(|(k, v)| [k.into_owned(), v.into_owned()])
        .collect::<Vec<_>>()
        .join("\n");
    (decoded != text).then_some(decoded)
}

/// One digit as read: its value and the bytes of the character it came from.
#[derive(Clone, Copy)]
struct Digit {
    value: u8,
    chars: (usize, usize),
}

/// How one character reads: as a digit, as a letter (which ends a run of digits), or as neither
/// (which joins the digits either side of it).
enum Reading {
    Digit(u8),
    Letter,
    Joiner,
}

/// The byte ranges of `text` that hold card numbers (merged where they overlap). With `first_only`
/// it stops at the first one found.
fn card_spans(text: &str, first_only: bool) -> Vec<Range<usize>> {
    let masked = masked_spans(text);
    let mut spans: Vec<Range<usize>> = Vec::new();
    let mut run: Vec<Digit> = Vec::new();
    let mut readings: Vec<Reading> = Vec::with_capacity(4);
    for (at, ch) in text.char_indices() {
        let end = at + ch.len_utf8();
        readings.clear();
        if masked.iter().any(|span| span.contains(&at)) {
            readings.push(Reading::Letter);
        } else {
            read_char(ch, &mut readings);
        }
        for reading in &readings {
            match reading {
                Reading::Digit(value) => run.push(Digit {
                    value: *value,
                    chars: (at, end),
                }),
                Reading::Letter => {
                    check_run(&run, &mut spans);
                    run.clear();
                }
                Reading::Joiner => {}
            }
        }
        if first_only && !spans.is_empty() {
            return spans;
        }
    }
    check_run(&run, &mut spans);
    spans
}

/// Reads one character through its NFKC form.
fn read_char(ch: char, readings: &mut Vec<Reading>) {
    if ch.is_ascii() {
        readings.push(if ch.is_ascii_digit() {
            Reading::Digit(ch as u8 - b'0')
        } else if ch.is_ascii_alphabetic() {
            Reading::Letter
        } else {
            Reading::Joiner
        });
        return;
    }
    for folded in std::iter::once(ch).nfkc() {
        readings.push(match decimal_value(folded) {
            Some(value) => Reading::Digit(value),
            None if folded.is_alphanumeric() => Reading::Letter,
            None => Reading::Joiner,
        });
    }
}

/// The value of any Unicode decimal digit (general category Nd). Unicode assigns them only in
/// contiguous runs of ten, 0 to 9, so a digit's value is its distance from the start of its run.
fn decimal_value(ch: char) -> Option<u8> {
    if ch.is_ascii_digit() {
        return Some(ch as u8 - b'0');
    }
    if ch.general_category() != GeneralCategory::DecimalNumber {
        return None;
    }
    let mut behind = 0u32;
    while let Some(previous) = char::from_u32(ch as u32 - behind - 1) {
        if previous.general_category() != GeneralCategory::DecimalNumber {
            break;
        }
        behind += 1;
    }
    Some((behind % 10) as u8)
}

/// Adds the span of every card-number window in one run of digits.
fn check_run(run: &[Digit], spans: &mut Vec<Range<usize>>) {
    if run.len() < MIN_DIGITS {
        return;
    }
    let digits: String = run.iter().map(|d| char::from(b'0' + d.value)).collect();
    for start in 0..=run.len() - MIN_DIGITS {
        for len in MIN_DIGITS..=MAX_DIGITS.min(run.len() - start) {
            if looks_like_pan(&digits[start..start + len]) {
                let span = run[start].chars.0..run[start + len - 1].chars.1;
                match spans.last_mut() {
                    Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
                    _ => spans.push(span),
                }
            }
        }
    }
}

/// The byte ranges of shapes that are read as words, not digits: UUIDs and times of day.
fn masked_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = uuid_spans(text);
    spans.extend(time_spans(text));
    spans
}

/// The byte ranges of UUIDs (8-4-4-4-12 hex digits, not glued to other letters or digits): a
/// random one sometimes starts with three all-digit groups that pass Luhn with a card prefix, and
/// nobody writes a card number that way.
fn uuid_spans(text: &str) -> Vec<Range<usize>> {
    const SHAPE: [usize; 5] = [8, 4, 4, 4, 12];
    const LEN: usize = 36;
    let bytes = text.as_bytes();
    if bytes.len() < LEN || !text.contains('-') {
        return Vec::new();
    }
    let is_uuid_at = |start: usize| {
        let Some(window) = bytes.get(start..start + LEN) else {
            return false;
        };
        let mut at = 0;
        for (i, len) in SHAPE.iter().enumerate() {
            if i > 0 {
                if window[at] != b'-' {
                    return false;
                }
                at += 1;
            }
            if !window[at..at + len].iter().all(u8::is_ascii_hexdigit) {
                return false;
            }
            at += len;
        }
        standalone(bytes, start, start + LEN)
    };
    (0..=bytes.len() - LEN)
        .filter(|&i| is_uuid_at(i))
        .map(|i| i..i + LEN)
        .collect()
}

/// Whether `bytes[start..end]` is not glued to a letter or digit on either side.
fn standalone(bytes: &[u8], start: usize, end: usize) -> bool {
    let before = start.checked_sub(1).map(|i| bytes[i]);
    let after = bytes.get(end).copied();
    !before.is_some_and(|b| b.is_ascii_alphanumeric())
        && !after.is_some_and(|b| b.is_ascii_alphanumeric())
}

/// The byte ranges of ASCII times of day as RFC 3339 writes them, `HH:MM:SS`, with an optional
/// fraction of at most nine digits and an optional offset (`Z`, `+HH:MM`, `-HHMM`, `+HH`), each
/// field in its range. A timestamp's time with nanoseconds and an offset has 19 digits joined by
/// punctuation, which would otherwise read as a run that may hold a card number by chance.
fn time_spans(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    if !text.contains(':') {
        return Vec::new();
    }
    let two = |at: usize, max: u8| -> bool {
        bytes.get(at..at + 2).is_some_and(|pair| {
            pair.iter().all(u8::is_ascii_digit) && (pair[0] - b'0') * 10 + (pair[1] - b'0') <= max
        })
    };
    let mut spans = Vec::new();
    let mut start = 0;
    while start + 8 <= bytes.len() {
        let is_time = two(start, 23)
            && bytes[start + 2] == b':'
            && two(start + 3, 59)
            && bytes[start + 5] == b':'
            && two(start + 6, 60)
            && !start
                .checked_sub(1)
                .is_some_and(|i| bytes[i].is_ascii_digit());
        if !is_time {
            start += 1;
            continue;
        }
        let mut end = start + 8;
        if bytes.get(end) == Some(&b'.') {
            let digits = bytes[end + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if !(1..=9).contains(&digits) {
                start += 1;
                continue;
            }
            end += 1 + digits;
        }
        match bytes.get(end) {
            Some(b'Z' | b'z') => end += 1,
            Some(b'+' | b'-') if two(end + 1, 23) => {
                end += 3;
                if bytes.get(end) == Some(&b':') && two(end + 1, 59) {
                    end += 3;
                } else if two(end, 59) {
                    end += 2;
                }
            }
            _ => {}
        }
        if bytes.get(end).is_some_and(u8::is_ascii_digit) {
            start += 1;
            continue;
        }
        spans.push(start..end);
        start = end;
    }
    spans
}

/// A digit string of PAN length that passes Luhn and starts with a known network prefix.
pub fn looks_like_pan(digits: &str) -> bool {
    (MIN_DIGITS..=MAX_DIGITS).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && has_network_prefix(digits)
        && luhn_valid(digits)
}

/// The Luhn (mod 10) checksum used by every card network.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn prefix_in(digits: &str, len: usize, low: u32, high: u32) -> bool {
    digits
        .get(..len)
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| (low..=high).contains(&p))
}

/// Issuer identification number prefixes of the networks a UK council can be paid with.
fn has_network_prefix(digits: &str) -> bool {
    let ranges: &[(usize, u32, u32)] = &[
        (1, 4, 4),           // Visa
        (2, 51, 55),         // Mastercard
        (4, 2221, 2720),     // Mastercard 2-series
        (2, 34, 34),         // American Express
        (2, 37, 37),         // American Express
        (4, 6011, 6011),     // Discover
        (3, 644, 649),       // Discover
        (2, 65, 65),         // Discover
        (6, 622126, 622925), // Discover co-branded (inside UnionPay's 62)
        (4, 5018, 5018),     // Maestro
        (4, 5020, 5020),     // Maestro
        (4, 5038, 5038),     // Maestro
        (4, 5893, 5893),     // Maestro
        (4, 6304, 6304),     // Maestro
        (4, 6759, 6759),     // Maestro (UK)
        (4, 6761, 6763),     // Maestro
        (4, 3528, 3589),     // JCB
        (3, 300, 305),       // Diners Club
        (3, 309, 309),       // Diners Club
        (2, 36, 36),         // Diners Club
        (2, 38, 39),         // Diners Club
        (2, 62, 62),         // UnionPay
        (2, 81, 81),         // UnionPay (newer ranges)
    ];
    ranges
        .iter()
        .any(|&(len, low, high)| prefix_in(digits, len, low, high))
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
            .find(|candidate| super::luhn_valid(candidate))
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
