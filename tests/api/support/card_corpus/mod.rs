//! The card-number detector's two corpora, generated from a seed: council text that is not a card
//! number (what councils, their CRMs and their providers write), and card numbers as people and
//! systems write them. The test suite scores a sample (tests/api/card_corpus.rs); the benchmark
//! scores them in full and prints precision and recall (examples/card_guard_bench.rs).
//!
//! A council string is *card-shaped* when one value in it, as that value is written, is a card
//! number by the networks' rules (a network's prefix, a length it issues, Luhn), alone or with an
//! expiry or security code glued on: a random 16-digit provider id does that one time in forty.
//! Those cannot be told from a card number by anyone; the benchmark counts them apart and says
//! how often they occur. The judgement is made here, value by value, by the generator that wrote
//! the value, not by the detector under test.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use counterfoil::domain::card_guard::looks_like_pan;

mod cards;
mod council_values;

pub use cards::cards;
#[allow(unused_imports)]
pub use cards::{fresh_card_number, SEPARATORS};
use council_values::*;

/// One string of a corpus, the kind of thing it is, and (for council text) whether a value in it
/// is card-shaped.
#[derive(Debug, Clone)]
pub struct Sample {
    pub kind: &'static str,
    pub text: String,
    pub card_shaped: bool,
    /// How a card number was written (network, layout, digits, separator, context, escape).
    pub detail: String,
}

/// A value written into a council string, and whether it is card-shaped as written.
struct Value {
    text: String,
    card_shaped: bool,
}

impl Value {
    fn plain(text: String) -> Self {
        Value {
            text,
            card_shaped: false,
        }
    }

    /// A string of digits written whole: card-shaped when it is a card number, alone or with an
    /// expiry (`MMYY`, `MMYYYY`) or a security code glued on.
    fn digits(text: String) -> Self {
        let card_shaped = digits_are_card_shaped(&text);
        Value { text, card_shaped }
    }
}

fn digits_are_card_shaped(digits: &str) -> bool {
    if looks_like_pan(digits) {
        return true;
    }
    let month = |d: &str| d.len() >= 2 && (1..=12).contains(&d[..2].parse::<u32>().unwrap_or(0));
    (13..digits.len().min(20)).any(|len| {
        let (number, rest) = digits.split_at(len);
        let amex = number.len() == 15 && (number.starts_with("34") || number.starts_with("37"));
        let code = |d: &str| d.len() == 3 || (amex && d.len() == 4);
        let expiry =
            |d: &str| (d.len() == 4 && month(d)) || (d.len() == 6 && month(d) && &d[2..4] == "20");
        looks_like_pan(number)
            && (code(rest)
                || expiry(rest)
                || [4, 6]
                    .iter()
                    .any(|&cut| rest.len() > cut && expiry(&rest[..cut]) && code(&rest[cut..])))
    })
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10)))
        .collect()
}

fn letters(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'A' + rng.gen_range(0..26)))
        .collect()
}

fn alnum_lower(rng: &mut StdRng, n: usize) -> String {
    const SET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| char::from(SET[rng.gen_range(0..SET.len())]))
        .collect()
}

fn base62(rng: &mut StdRng, n: usize) -> String {
    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| char::from(SET[rng.gen_range(0..SET.len())]))
        .collect()
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items.choose(rng).expect("not empty")
}

/// Ways councils join the items of a list.
const LIST_JOINERS: &[&str] = &[
    ", ", ",", " / ", "/", "; ", " and ", " & ", "\n", "\r\n", "\t", " | ", ", and ", " ", " - ",
];

fn list(
    rng: &mut StdRng,
    min: usize,
    max: usize,
    mut item: impl FnMut(&mut StdRng) -> Value,
) -> Value {
    let joiner = pick(rng, LIST_JOINERS);
    let count = rng.gen_range(min..=max);
    let items: Vec<Value> = (0..count).map(|_| item(rng)).collect();
    Value {
        card_shaped: items.iter().any(|v| v.card_shaped),
        text: items
            .iter()
            .map(|v| v.text.as_str())
            .collect::<Vec<_>>()
            .join(joiner),
    }
}

type Generator = fn(&mut StdRng) -> Value;

/// Every kind of council value, by name.
const COUNCIL_KINDS: &[(&str, Generator)] = &[
    ("UPRN", uprn),
    ("UPRN list", |rng| list(rng, 2, 6, uprn)),
    ("phone number", phone),
    ("phone numbers", |rng| list(rng, 2, 4, phone)),
    ("date", date),
    ("date range", date_range),
    ("time or timestamp", time),
    ("council tax", council_tax),
    ("business rates", business_rates),
    ("housing rent", housing_rent),
    ("benefit", benefit),
    ("PCN", pcn),
    ("planning", planning),
    ("licence", licence),
    ("invoice or order", invoice),
    ("NHS number", nhs_number),
    ("NI number", ni_number),
    ("amounts", amounts),
    ("postcode or address", postcode),
    ("bank details", bank),
    ("long system id", long_id),
    ("UUID", uuid),
    ("provider id", provider_id),
    ("case reference", case_reference),
    ("vehicle", vehicle),
    ("numbered things", numbered_things),
];

/// The names of the kinds of council value.
#[allow(dead_code)]
pub const COUNCIL_KIND_NAMES: [&str; COUNCIL_KINDS.len()] = {
    let mut names = [""; COUNCIL_KINDS.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = COUNCIL_KINDS[i].0;
        i += 1;
    }
    names
};

/// `count` council strings, the kinds in turn: a description with one or two values of that
/// kind (or another) around it.
pub fn council(seed: u64, count: usize) -> Vec<Sample> {
    let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let (kind, generate) = COUNCIL_KINDS[i % COUNCIL_KINDS.len()];
            let v = generate(&mut rng);
            let w = if rng.gen_bool(0.5) {
                generate(&mut rng)
            } else {
                let (_, other) = COUNCIL_KINDS.choose(&mut rng).expect("kinds");
                other(&mut rng)
            };
            let description = pick(&mut rng, DESCRIPTIONS);
            let text = pick(&mut rng, FORMS)
                .replace("{d}", description)
                .replace("{v}", &v.text)
                .replace("{w}", &w.text);
            let used_w = text.contains(&w.text);
            Sample {
                kind,
                card_shaped: v.card_shaped || (used_w && w.card_shaped),
                text,
                detail: String::new(),
            }
        })
        .collect()
}
