//! The detector's unit and property tests: every network, every disguise, no false positives
//! on council references.

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
                                                   // A letter between the groups ends the run.
    assert!(!contains_card_number(&grouped(&v, "x")));
}

/// Separators a person (or an attacker) might put between the groups; each joins them.
const SEPARATORS: &[&str] = &[
    " ", "-", ".", "_", "/", ",", "  ", " - ", "\t", "\n", "\r\n", "\u{200B}", "\u{200D}",
    "\u{00AD}", "\u{2010}", "\u{2013}", "\u{2014}", "\u{2212}", "\u{00A0}", "\u{202F}", "\u{3000}",
    "\u{FEFF}", "\u{2060}", ":", "|", "*", "'", "\"", "\u{0301}",
];

/// The first character of each script's run of decimal digits, 0 to 9.
const DIGIT_ZEROS: &[char] = &[
    '0',
    '\u{FF10}',
    '\u{0660}',
    '\u{06F0}',
    '\u{0966}',
    '\u{09E6}',
    '\u{0E50}',
    '\u{1D7CE}',
    '\u{1D7EC}',
    '\u{104A0}',
    '\u{1E950}',
];

fn in_script(pan: &str, zero: char) -> String {
    pan.bytes()
        .map(|b| char::from_u32(zero as u32 + u32::from(b - b'0')).expect("a digit"))
        .collect()
}

#[test]
fn any_separator_between_groups_is_read_through() {
    let v = visa();
    for sep in SEPARATORS {
        assert!(contains_card_number(&grouped(&v, sep)), "separator {sep:?}");
        assert!(contains_card_number(&format!(
            "ref {} ok",
            grouped(&v, sep)
        )));
    }
}

#[test]
fn digits_of_every_script_are_read_by_their_value() {
    let v = visa();
    for zero in DIGIT_ZEROS {
        assert!(contains_card_number(&in_script(&v, *zero)), "{zero:?}");
    }
    // Superscript and circled digits fold to digits under NFKC.
    let superscript: String = v
        .bytes()
        .map(|b| {
            [
                '\u{2070}', '\u{00B9}', '\u{00B2}', '\u{00B3}', '\u{2074}', '\u{2075}', '\u{2076}',
                '\u{2077}', '\u{2078}', '\u{2079}',
            ][usize::from(b - b'0')]
        })
        .collect();
    assert!(contains_card_number(&superscript));
}

#[test]
fn digits_glued_on_either_side_do_not_hide_a_number() {
    for v in test_pans() {
        assert!(contains_card_number(&format!("1225{v}")), "expiry before");
        assert!(
            contains_card_number(&format!("{v}123")),
            "security code after"
        );
        assert!(contains_card_number(&format!("0{v}12/27737")));
    }
}

#[test]
fn percent_escapes_are_read_decoded() {
    let v = visa();
    let escaped: String = v.bytes().map(|b| format!("%{b:02X}")).collect();
    assert!(contains_card_number(&format!(
        "https://x.example/{escaped}"
    )));
    let url = format!("https://x.example/{escaped}");
    let redacted = redact(&url);
    assert!(!contains_card_number(&redacted), "{redacted}");
}

#[test]
fn json_is_read_through_its_escapes_and_redacted_inside() {
    let v = visa();
    let stored = serde_json::to_string(&json!({"reason": grouped(&v, "\n")})).unwrap();
    assert!(
        !contains_card_number(&stored),
        "the escapes split it as text"
    );
    assert!(text_or_json_contains_card_number(&stored));
    let redacted = redact_json(
        json!({"a": [grouped(&v, " ")], v.clone(): v.parse::<u64>().unwrap(), "ok": 1}),
    );
    assert!(!json_contains_card_number(&redacted), "{redacted}");
    assert_eq!(redacted["ok"], 1);
}

#[test]
fn timestamps_are_not_read_as_card_numbers() {
    // 02:30:11.412345678+01:00 is 19 digits joined by punctuation.
    for text in [
        "2026-12-01T02:30:11.412345678+00:00",
        "from 2026-12-01 04:11:11.111111111-01:30 to 2026-12-02T00:00:00Z",
        "2026-12-01 02:30:11.412345+00",
    ] {
        assert!(!contains_card_number(text), "{text}");
    }
    // Outside a time's ranges the digits are read.
    let v = visa();
    assert!(contains_card_number(&format!(
        "{}:{}:{}",
        &v[..2],
        &v[2..4],
        &v[4..]
    )));
}

#[test]
fn redaction_removes_only_the_number_and_never_returns_it() {
    let v = visa();
    let text = format!("before {} after", grouped(&v, "\u{00AD}"));
    let redacted = redact(&text);
    assert_eq!(redacted, format!("before {REDACTED} after"));
    assert!(!contains_card_number(&redacted));
    let wide = format!("x{}y", in_script(&v, '\u{FF10}'));
    assert_eq!(redact(&wide), format!("x{REDACTED}y"));
    assert!(matches!(
        redact("nothing here 2024-05-01"),
        Cow::Borrowed(_)
    ));
}

/// Ways a person might type a card number: groups of 4 with spaces or dashes, Amex 4-6-5,
/// arbitrary single separators, with text around it.
fn formatted(pan: String) -> impl Strategy<Value = String> {
    let seps = proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("-")], pan.len());
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
    fn every_disguise_is_caught(
        v in any_test_pan(),
        zero in proptest::sample::select(DIGIT_ZEROS),
        seps in proptest::collection::vec(proptest::sample::select(SEPARATORS), 19),
        cut in proptest::collection::vec(any::<bool>(), 19),
        before in "[0-9]{0,4}",
        after in "[0-9]{0,4}",
        text in "[A-Za-z :=#]{0,8}",
    ) {
        let mut disguised = text.clone();
        disguised.push_str(&before);
        for (i, digit) in in_script(&v, zero).chars().enumerate() {
            if i > 0 && cut[i] {
                disguised.push_str(seps[i]);
            }
            disguised.push(digit);
        }
        disguised.push_str(&after);
        disguised.push_str(&text);
        prop_assert!(contains_card_number(&disguised), "{:?}", disguised);
        prop_assert!(!contains_card_number(&redact(&disguised)));
    }

    #[test]
    fn timestamps_are_never_caught(at in 0i64..4_102_444_800, nanos in 0u32..1_000_000_000, offset in -86_340i32..86_340) {
        let offset = chrono::FixedOffset::east_opt(offset / 60 * 60).expect("in range");
        let time = chrono::DateTime::from_timestamp(at, nanos).expect("in range").with_timezone(&offset);
        let text = time.to_rfc3339();
        prop_assert!(!contains_card_number(&text), "{}", text);
        let text = time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        prop_assert!(!contains_card_number(&text), "{}", text);
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
