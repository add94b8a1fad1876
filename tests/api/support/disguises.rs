//! Card numbers in disguise for the exit proofs (tests/api/exits.rs), and this suite's own search
//! for them in everything Counterfoil wrote or sent: it reads each character's digit value itself,
//! so it does not share the detector it checks.

use rand::rngs::StdRng;
use rand::Rng;
use unicode_normalization::UnicodeNormalization;

use crate::helpers::{fresh_pan, TestApp};
use crate::support::crm::Crm;
use crate::support::logs;

/// Networks and lengths a council sees: Visa 16 and 13, Mastercard, its 2-series, Amex 15,
/// Maestro UK 19, UnionPay 19.
pub const NETWORKS: &[(&str, usize)] = &[
    ("4", 16),
    ("4", 13),
    ("53", 16),
    ("2221", 16),
    ("37", 15),
    ("6759", 19),
    ("62", 19),
];

/// The first digit of each script the disguises write numbers in (each runs 0 to 9).
pub const DIGIT_ZEROS: &[char] = &[
    '0',         // ASCII
    '\u{FF10}',  // full-width
    '\u{0660}',  // Arabic-Indic
    '\u{06F0}',  // extended Arabic-Indic
    '\u{0966}',  // Devanagari
    '\u{09E6}',  // Bengali
    '\u{0E50}',  // Thai
    '\u{1D7CE}', // mathematical bold
];

/// Digits with no decimal (or NFKC) form: each set's zero, then its one to nine.
pub const ENCLOSED_DIGITS: &[(char, char)] = &[
    ('\u{24FF}', '\u{2776}'),  // dingbat negative circled ❶…❾
    ('\u{1F10B}', '\u{2780}'), // dingbat circled sans-serif ➀…➈
    ('\u{1F10C}', '\u{278A}'), // dingbat negative circled sans-serif ➊…➒
    ('\u{24FF}', '\u{24F5}'),  // double circled ⓵…⓽
];

/// What may stand between two groups of digits, one kind to a number: spaces, dashes, full stops
/// and underscores, Unicode spaces and dashes, and characters a reader does not see (zero-width,
/// bidi marks, the soft hyphen, Hangul fillers).
pub const SEPARATORS: &[&str] = &[
    " ", "-", ".", "_", "  ", " - ", "\u{200B}", "\u{00AD}", "\u{2013}", "\u{2014}", "\u{00A0}",
    "\u{2060}", "\u{200E}", "\u{202E}", "\u{3164}", "\u{FFA0}", "\u{2009}",
];

/// Marks that may ride on each digit: combining accents, the keycap, a strike-through.
pub const MARKS: &[&str] = &["\u{0301}", "\u{20E3}", "\u{0336}", "\u{FE0F}"];

/// How a disguise is written.
#[derive(Debug, Clone)]
pub struct Disguise {
    pub pan: String,
    pub text: String,
}

/// A generated disguise of a fresh card number, as people and systems write one: in a script or
/// a digit form of its own, whole (with an expiry or security code glued on at times) or in a
/// layout (fours, one by one, Amex 4-6-5, Diners 4-6-4) with one kind of separator, marks on its
/// digits at times, sometimes percent-escaped as a whole.
pub fn disguise(rng: &mut StdRng, ascii_only: bool) -> Disguise {
    let (prefix, len) = NETWORKS[rng.gen_range(0..NETWORKS.len())];
    let pan = fresh_pan(rng, prefix, len);
    let digit: Box<dyn Fn(u32) -> char> = if ascii_only || rng.gen_bool(0.6) {
        let zero = if ascii_only {
            '0'
        } else {
            DIGIT_ZEROS[rng.gen_range(0..DIGIT_ZEROS.len())]
        };
        Box::new(move |d| char::from_u32(zero as u32 + d).unwrap())
    } else {
        let (zero, one) = ENCLOSED_DIGITS[rng.gen_range(0..ENCLOSED_DIGITS.len())];
        Box::new(move |d| {
            if d == 0 {
                zero
            } else {
                char::from_u32(one as u32 + d - 1).unwrap()
            }
        })
    };
    let separators: Vec<&str> = SEPARATORS
        .iter()
        .copied()
        .filter(|sep| !ascii_only || sep.bytes().all(|b| b == b' ' || b.is_ascii_graphic()))
        .collect();
    let separator = separators[rng.gen_range(0..separators.len())];
    let mark = (!ascii_only && rng.gen_bool(0.2)).then(|| MARKS[rng.gen_range(0..MARKS.len())]);
    let layout: Vec<usize> = match rng.gen_range(0..4) {
        0 => vec![len],
        1 => vec![1; len],
        2 if len == 15 => vec![4, 6, 5],
        2 if len == 14 => vec![4, 6, 4],
        _ => std::iter::repeat_n(4, len.div_ceil(4)).collect(),
    };
    let mut text = String::new();
    let mut at = 0;
    for (g, size) in layout.iter().enumerate() {
        if g > 0 {
            text.push_str(separator);
        }
        for d in pan[at..(at + size).min(len)].chars() {
            text.push(digit(d.to_digit(10).unwrap()));
            if let Some(mark) = mark {
                text.push_str(mark);
            }
        }
        at += size;
    }
    if layout.len() == 1 && rng.gen_bool(0.4) {
        // An expiry or a security code glued on.
        if rng.gen_bool(0.5) {
            text.push_str(&format!(
                "{:02}{:02}",
                rng.gen_range(1..=12),
                rng.gen_range(26..40)
            ));
        } else {
            text.push_str(&format!("{:03}", rng.gen_range(0..1000)));
        }
    }
    Disguise { pan, text }
}

/// Every `%XX` escape decoded (as UTF-8, lossily).
pub fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// JSON's and Rust's escapes (`\n`, `\u0034`, `\u{200b}`) read back.
pub fn unescaped(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => {
                let braced = chars.peek() == Some(&'{');
                if braced {
                    chars.next();
                }
                let hex: String = std::iter::from_fn(|| chars.next_if(|h| h.is_ascii_hexdigit()))
                    .take(if braced { 6 } else { 4 })
                    .collect();
                if braced {
                    chars.next_if_eq(&'}');
                }
                if let Some(decoded) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(decoded);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The digits a person reads in `text`, everything else dropped.
pub fn digits_read(text: &str) -> String {
    let mut digits = String::new();
    let mut push = |c: char| {
        if let Some(zero) = DIGIT_ZEROS
            .iter()
            .find(|zero| (**zero..=char::from_u32(**zero as u32 + 9).unwrap()).contains(&c))
        {
            digits.push(char::from_digit(c as u32 - *zero as u32, 10).unwrap());
        } else if let Some(d) = ENCLOSED_DIGITS.iter().find_map(|(zero, one)| {
            if c == *zero {
                Some(0)
            } else {
                (*one..=char::from_u32(*one as u32 + 8).unwrap())
                    .contains(&c)
                    .then(|| c as u32 - *one as u32 + 1)
            }
        }) {
            digits.push(char::from_digit(d, 10).unwrap());
        }
    };
    for c in text.chars() {
        if c.is_ascii() {
            push(c);
        } else {
            std::iter::once(c).nfkc().for_each(&mut push);
        }
    }
    digits
}

/// The digits read in `text` as it is, through its percent-escapes, and through JSON's or Rust's
/// escapes: a number is in the text when it is in one of these, whatever stood between its digits.
pub fn readings(text: &str) -> [String; 4] {
    let decoded = percent_decoded(text);
    [
        digits_read(text),
        digits_read(&unescaped(text)),
        digits_read(&unescaped(&decoded)),
        digits_read(&decoded),
    ]
}

/// Whether `text` holds `pan` (see [`readings`]).
pub fn holds(text: &str, pan: &str) -> bool {
    readings(text).iter().any(|digits| digits.contains(pan))
}

/// Everything Counterfoil has written or sent, by where it went, and the digits read in each.
pub struct Sinks(pub Vec<(String, String)>, pub Vec<[String; 4]>);

impl Sinks {
    /// What `app` wrote and sent, and (from `log_mark` on) what was logged.
    pub async fn collect(app: &TestApp, crm: &Crm, log_mark: (usize, usize)) -> Self {
        let mut found = Vec::new();
        let store = &app.services.store;
        for column in store.describe_schema().await.unwrap() {
            let place = format!("table {}.{}", column.table, column.column);
            let mut values = Vec::new();
            if column.is_text {
                store
                    .scan_text_column(&column, &mut |_, value| values.push(value.to_owned()))
                    .await
                    .unwrap();
            }
            found.extend(values.into_iter().map(|v| (place.clone(), v)));
        }
        // The number columns a number could be put in, read straight from the database.
        let pool = app.raw().await;
        for (table, column) in [
            ("payments", "amount"),
            ("payments", "refunded_amount"),
            ("refunds", "amount"),
        ] {
            let rows = sqlx::query(&format!("SELECT {column} FROM {table}"))
                .fetch_all(&pool)
                .await
                .unwrap();
            for row in rows {
                use sqlx::Row;
                let n: i64 = row.get(0);
                found.push((format!("table {table}.{column}"), n.to_string()));
            }
        }
        pool.close().await;
        found.extend(
            logs::captured()
                .lines()
                .map(|l| ("log".to_owned(), l.to_owned())),
        );
        for span in logs::spans_since(log_mark) {
            let mut text = vec![
                span.name.to_string(),
                span.span_context.trace_state().header(),
                span.span_context.trace_id().to_string(),
                format!("{:?}", span.status),
            ];
            text.extend(
                span.attributes
                    .iter()
                    .map(|kv| format!("{}={}", kv.key, kv.value)),
            );
            for event in span.events.iter() {
                text.push(event.name.to_string());
                text.extend(
                    event
                        .attributes
                        .iter()
                        .map(|kv| format!("{}={}", kv.key, kv.value)),
                );
            }
            found.push(("span".to_owned(), text.join("\n")));
        }
        found.push(("metrics".to_owned(), app.metrics_page().await));
        for provider in ["govuk-pay", "stripe"] {
            let journal = app
                .control(&format!("/sandbox/{provider}/_control/journal"))
                .await;
            for request in journal["requests"].as_array().unwrap() {
                found.push((
                    format!("{provider} simulator"),
                    request.as_str().unwrap().to_owned(),
                ));
            }
        }
        for received in crm.received() {
            found.push((
                "CRM".to_owned(),
                format!(
                    "{} {} {}",
                    received.id,
                    received.signature,
                    String::from_utf8_lossy(&received.body)
                ),
            ));
        }
        let read = found.iter().map(|(_, text)| readings(text)).collect();
        Sinks(found, read)
    }

    pub fn assert_free_of(&self, planted: &[(String, Disguise)]) {
        let mut leaks = Vec::new();
        for (entry, disguise) in planted {
            for ((place, _), read) in self.0.iter().zip(&self.1) {
                if read.iter().any(|digits| digits.contains(&disguise.pan)) {
                    leaks.push(format!("{entry} ({:?}) reached {place}", disguise.text));
                }
            }
        }
        assert!(
            leaks.is_empty(),
            "card numbers leaked:\n{}",
            leaks.join("\n")
        );
    }

    pub fn assert_sees(&self, what: &str) {
        assert!(
            self.0.iter().any(|(place, _)| place == what),
            "the search reads {what} (else it would pass vacuously)"
        );
    }
}
