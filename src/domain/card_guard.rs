//! The card-number guard: finds anything that looks like a payment card number (PAN) in text or JSON.
//!
//! A candidate is 13–19 digits, optionally separated by single spaces or dashes, that passes the Luhn
//! check and starts with a card network's IIN prefix. The guard answers yes or no and never returns
//! or echoes the digits it matched, so a caller cannot leak them by accident.

use serde_json::Value;

const MIN_DIGITS: usize = 13;
const MAX_DIGITS: usize = 19;

/// True when `text` contains something that looks like a card number anywhere in it.
pub fn contains_card_number(text: &str) -> bool {
    let text = mask_uuids(text);
    digit_runs(&text)
        .iter()
        .any(|groups| run_contains_pan(groups))
}

/// Blanks out UUIDs (8-4-4-4-12 hex digits): a random one sometimes starts with three all-digit
/// groups that happen to pass Luhn with a card prefix, and nobody writes a card number that way.
fn mask_uuids(text: &str) -> std::borrow::Cow<'_, str> {
    const SHAPE: [usize; 5] = [8, 4, 4, 4, 12];
    const LEN: usize = 36;
    let bytes = text.as_bytes();
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
        let before = start.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(start + LEN).copied();
        !before.is_some_and(|b| b.is_ascii_alphanumeric())
            && !after.is_some_and(|b| b.is_ascii_alphanumeric())
    };
    let starts: Vec<usize> = (0..bytes.len().saturating_sub(LEN - 1))
        .filter(|&i| is_uuid_at(i))
        .collect();
    if starts.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut masked = bytes.to_vec();
    for start in starts {
        masked[start..start + LEN].fill(b'x');
    }
    // Only ASCII was replaced with ASCII, so this is still UTF-8.
    std::borrow::Cow::Owned(String::from_utf8(masked).expect("still UTF-8"))
}

/// True when any string, object key or number anywhere inside `value` looks like a card number.
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

/// Splits text into runs of digit groups: digits joined by at most one space or dash between groups.
/// `"ref dddd dddd-dddd dddd."` gives one run of four groups of four digits.
fn digit_runs(text: &str) -> Vec<Vec<&str>> {
    let bytes = text.as_bytes();
    let mut runs: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            current.push(&text[start..i]);
            // A single separator followed by a digit continues the run.
            let continues = i + 1 < bytes.len()
                && (bytes[i] == b' ' || bytes[i] == b'-')
                && bytes[i + 1].is_ascii_digit();
            if continues {
                i += 1;
            } else {
                runs.push(std::mem::take(&mut current));
            }
        } else {
            i += 1;
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// Checks every window of whole groups in a run. A card number written among other numbers
/// ("order 12 dddd dddd dddd dddd") is still found, while one long unbroken string of digits is
/// judged only as a whole (an unbroken 20+ digit reference is not a card number).
fn run_contains_pan(groups: &[&str]) -> bool {
    for start in 0..groups.len() {
        let mut digits = String::new();
        for group in &groups[start..] {
            digits.push_str(group);
            if digits.len() > MAX_DIGITS {
                break;
            }
            if digits.len() >= MIN_DIGITS && looks_like_pan(&digits) {
                return true;
            }
        }
    }
    false
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
mod tests {
    use super::test_numbers::{grouped, pan, visa};
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Each network's prefix and a length it issues (Visa, Visa 13, Mastercard and its 2-series,
    /// Amex, Discover, Maestro UK and Maestro, JCB, Diners, UnionPay 16 and 19).
    const NETWORKS: &[(&str, usize)] = &[
        ("4", 16),
        ("400005", 16),
        ("4", 13),
        ("55", 16),
        ("2223", 16),
        ("52", 16),
        ("34", 15),
        ("37", 15),
        ("6011", 16),
        ("65", 16),
        ("6759", 16),
        ("6304", 16),
        ("3566", 16),
        ("305", 14),
        ("36", 14),
        ("62", 16),
        ("62", 19),
    ];

    fn test_pans() -> Vec<String> {
        NETWORKS
            .iter()
            .map(|(prefix, len)| pan(prefix, *len))
            .collect()
    }

    #[test]
    fn every_test_pan_is_valid_input_for_these_tests() {
        for pan in test_pans() {
            assert!(looks_like_pan(&pan), "{pan} should look like a PAN");
        }
    }

    #[test]
    fn finds_a_pan_in_free_text_and_json() {
        let v = visa();
        assert!(contains_card_number(&format!(
            "my card is {} thanks",
            grouped(&v, " ")
        )));
        assert!(contains_card_number(&format!("ABC{}XYZ", grouped(&v, "-"))));
        assert!(json_contains_card_number(
            &json!({"metadata": {"a": ["x", {"deep": pan("55", 16)}]}})
        ));
        let mut keyed = serde_json::Map::new();
        keyed.insert(v.clone(), json!("key"));
        assert!(json_contains_card_number(&Value::Object(keyed)));
        assert!(json_contains_card_number(
            &json!({"amount": v.parse::<u64>().unwrap()})
        ));
    }

    #[test]
    fn finds_a_pan_that_follows_other_numbers() {
        let v = visa();
        assert!(contains_card_number(&format!(
            "order 12 {}",
            grouped(&v, " ")
        )));
        assert!(contains_card_number(&format!("2024-{}", grouped(&v, "-"))));
    }

    #[test]
    fn a_uuid_whose_digit_groups_look_like_a_pan_is_not_one() {
        // 12345678-1234-4123 would be 1234567812344123 (but it is a UUID's start).
        let digits = "12345678-1234-5678-9012-abcdefabcdef";
        assert!(!contains_card_number(digits));
        assert!(!contains_card_number(&format!("key {digits} used")));
        // A real card number next to a UUID is still found.
        let v = visa();
        assert!(contains_card_number(&format!(
            "{digits} {}",
            grouped(&v, " ")
        )));
        let uuid_head = format!("{}-{}-{}", &v[..8], &v[8..12], &v[12..]);
        let uuid_with_pan_prefix = format!("{uuid_head}-aaaa-bbbbbbbbbbbb");
        assert!(!contains_card_number(&uuid_with_pan_prefix));
        assert!(
            contains_card_number(&uuid_head),
            "without the rest it is no UUID"
        );
    }

    #[test]
    fn ignores_numbers_that_are_not_pans() {
        let v = visa();
        let last = v.as_bytes()[15] - b'0';
        let luhn_fails = format!("{}{}", &v[..15], (last + 1) % 10);
        assert!(!contains_card_number(&luhn_fails));
        assert!(!contains_card_number(&pan("9", 16))); // no network starts with 9
        assert!(!contains_card_number(&pan("4", 12))); // too short
        assert!(!contains_card_number(&pan("4", 23))); // one unbroken 23-digit string
        assert!(!contains_card_number(&grouped(&v, ","))); // commas don't join groups
        assert!(!contains_card_number(&grouped(&v, "  "))); // double spaces don't either
    }

    /// Ways a person might type a card number: groups of 4 with spaces or dashes, Amex 4-6-5,
    /// arbitrary single separators, with text around it.
    fn formatted(pan: String) -> impl Strategy<Value = String> {
        let seps =
            proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("-")], pan.len());
        let prefix = "[A-Za-z :=#/]{0,12}";
        let suffix = "[A-Za-z .,;/]{0,12}";
        (seps, prefix, suffix).prop_map(move |(seps, pre, post)| {
            let mut out = pre;
            // A prefix ending in a digit-separator would glue onto the PAN; the regex has no digits.
            for (i, ch) in pan.chars().enumerate() {
                if i > 0 {
                    out.push_str(seps[i]);
                }
                out.push(ch);
            }
            out.push_str(&post);
            out
        })
    }

    fn any_test_pan() -> impl Strategy<Value = String> {
        proptest::sample::select(test_pans())
    }

    /// References councils actually use: CRM case numbers, UPRNs, dates, postcodes, phone numbers.
    fn council_reference() -> impl Strategy<Value = String> {
        prop_oneof![
            "CRM-[0-9]{6,8}",
            "[A-Z]{2,4}/20[0-9]{2}/[0-9]{4,6}",
            "REQ-20[0-9]{2}-[01][0-9]-[0-9]{6}",
            "[0-9]{12}",                          // UPRN
            "[0-9]{4}-[0-9]{2}-[0-9]{2}",         // a date
            "0[0-9]{3} [0-9]{3} [0-9]{4}",        // a UK phone number (11 digits)
            "[A-Z]{2}[0-9]{6}[A-D]",              // NI-number shape
            "[A-Z]{1,2}[0-9]{1,2} [0-9][A-Z]{2}", // postcode
            "PCN [A-Z]{2}[0-9]{8}",               // parking charge notice
            "INV[0-9]{7}",
            "[0-9]{20,30}", // long unbroken system identifiers
            "9[0-9]{15}",   // 16 digits, but no card network starts with 9
            "[A-Za-z ]{1,40}",
        ]
    }

    proptest! {
        #[test]
        fn every_formatting_of_a_test_pan_is_caught(text in any_test_pan().prop_flat_map(formatted)) {
            prop_assert!(contains_card_number(&text));
            let body = json!({"description": text.clone()});
            prop_assert!(json_contains_card_number(&body));
        }

        #[test]
        fn uuids_are_never_caught(groups in prop::collection::vec("[0-9a-f]{4}", 8)) {
            let uuid = format!(
                "{}{}-{}-{}-{}-{}{}{}",
                groups[0], groups[1], groups[2], groups[3], groups[4], groups[5], groups[6], groups[7]
            );
            prop_assert!(!contains_card_number(&uuid), "{}", uuid);
        }

        #[test]
        fn all_digit_uuids_are_never_caught(groups in prop::collection::vec("[0-9]{4}", 8)) {
            let uuid = format!(
                "{}{}-{}-{}-{}-{}{}{}",
                groups[0], groups[1], groups[2], groups[3], groups[4], groups[5], groups[6], groups[7]
            );
            prop_assert!(!contains_card_number(&uuid), "{}", uuid);
        }

        #[test]
        fn typical_council_references_are_not_caught(reference in council_reference()) {
            prop_assert!(!contains_card_number(&reference), "false positive on {reference}");
        }
    }
}
