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

// ---- Council values, one generator per kind ----

fn uprn(rng: &mut StdRng) -> Value {
    let n = if rng.gen_bool(0.6) {
        format!("10{}", digits(rng, 10))
    } else {
        let len = rng.gen_range(5..=12);
        format!("{}{}", rng.gen_range(1..10), digits(rng, len - 1))
    };
    Value::digits(n)
}

fn phone(rng: &mut StdRng) -> Value {
    let text = match rng.gen_range(0..9) {
        0 => format!("01632 {}", digits(rng, 6)),
        1 => format!("07700 {}", digits(rng, 6)),
        2 => format!("0{} {} {}", digits(rng, 3), digits(rng, 3), digits(rng, 4)),
        3 => format!("020 {} {}", digits(rng, 4), digits(rng, 4)),
        4 => format!("+44 7{} {}", digits(rng, 3), digits(rng, 6)),
        5 => format!("+44 (0)20 {} {}", digits(rng, 4), digits(rng, 4)),
        6 => format!("0{}", digits(rng, 10)),
        7 => format!("0800 {} {}", digits(rng, 3), digits(rng, 4)),
        _ => format!("0{}-{}-{}", digits(rng, 3), digits(rng, 3), digits(rng, 4)),
    };
    Value::plain(text)
}

fn date(rng: &mut StdRng) -> Value {
    let (d, m, y) = (
        rng.gen_range(1..=28),
        rng.gen_range(1..=12),
        rng.gen_range(2015..=2030),
    );
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let text = match rng.gen_range(0..12) {
        0 => format!("{d:02}/{m:02}/{y}"),
        1 => format!("{d:02}-{m:02}-{y}"),
        2 => format!("{d:02}.{m:02}.{y}"),
        3 => format!("{d} {} {y}", MONTHS[m - 1]),
        4 => format!("{y}-{m:02}-{d:02}"),
        5 => format!("{d:02}/{m:02}/{:02}", y % 100),
        6 => format!("{d:02}{m:02}{y}"),
        7 => format!("{y}{m:02}{d:02}"),
        8 => format!("{d}/{m}/{y}"),
        9 => format!("{d:02} {m:02} {y}"),
        10 => format!("{} {y}", &MONTHS[m - 1][..3]),
        _ => format!(
            "{d}{} {} {y}",
            ["st", "nd", "rd", "th"][rng.gen_range(0..4)],
            MONTHS[m - 1]
        ),
    };
    Value::plain(text)
}

fn date_range(rng: &mut StdRng) -> Value {
    let style = rng.gen_range(0..12);
    let one = |rng: &mut StdRng| -> String {
        let (d, m, y) = (
            rng.gen_range(1..=28),
            rng.gen_range(1..=12),
            rng.gen_range(2015..=2030),
        );
        match style {
            0..=2 => format!("{d:02}/{m:02}/{y}"),
            3 | 4 => format!("{y}-{m:02}-{d:02}"),
            5 => format!("{d:02}.{m:02}.{y}"),
            6 => format!("{d:02}-{m:02}-{y}"),
            7 => format!("{d:02}{m:02}{y}"),
            8 => format!("{y}{m:02}{d:02}"),
            9 => format!("{d:02}/{m:02}/{:02}", y % 100),
            10 => format!("{d:02} {m:02} {y}"),
            _ => format!("{d}/{m}/{y}"),
        }
    };
    let joiner = pick(
        rng,
        &[
            " - ", " to ", "–", " – ", "-", " until ", " — ", "/", " ", "\u{2013}",
        ],
    );
    Value::plain(format!("{}{joiner}{}", one(rng), one(rng)))
}

fn time(rng: &mut StdRng) -> Value {
    let (h, m, s) = (
        rng.gen_range(0..24),
        rng.gen_range(0..60),
        rng.gen_range(0..60),
    );
    let text = match rng.gen_range(0..9) {
        0 => format!("{h:02}:{m:02}"),
        1 => format!("{h:02}.{m:02}–{:02}.{m:02}", (h + 1) % 24),
        2 => format!("{}.{m:02}{}", h % 12 + 1, pick(rng, &["am", "pm"])),
        3 => {
            let at = chrono::DateTime::from_timestamp(
                rng.gen_range(1_400_000_000..2_000_000_000),
                rng.gen_range(0..1_000_000_000),
            )
            .unwrap();
            at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, rng.gen_bool(0.5))
        }
        4 => format!(
            "2026-{:02}-{:02} {h:02}:{m:02}:{s:02}",
            rng.gen_range(1..13),
            rng.gen_range(1..29)
        ),
        5 => rng.gen_range(1_400_000_000u64..2_000_000_000).to_string(),
        6 => rng
            .gen_range(1_400_000_000_000u64..2_000_000_000_000)
            .to_string(),
        7 => format!(
            "2026{:02}{:02}{h:02}{m:02}{s:02}",
            rng.gen_range(1..13),
            rng.gen_range(1..29)
        ),
        _ => format!("{h:02}:{m:02}:{s:02}.{}", digits(rng, 6)),
    };
    Value::digits_or_plain(text)
}

impl Value {
    /// Card-shaped only when it is all digits and those are.
    fn digits_or_plain(text: String) -> Self {
        if text.bytes().all(|b| b.is_ascii_digit()) {
            Value::digits(text)
        } else {
            Value::plain(text)
        }
    }
}

fn council_tax(rng: &mut StdRng) -> Value {
    let account = digits(rng, 10);
    let year = rng.gen_range(2015..=2030);
    let text = match rng.gen_range(0..7) {
        0 => format!("CTAX-{account}-{year}"),
        1 => format!("Council tax account {}", digits(rng, 8)),
        2 => format!("CT ref {account}"),
        3 => account,
        4 => format!("{account} / {}", digits(rng, 10)),
        5 => format!("{year}/{} CTAX {account}", (year + 1) % 100),
        _ => format!("CTAX{account}"),
    };
    Value::digits_or_plain(text)
}

fn business_rates(rng: &mut StdRng) -> Value {
    Value::plain(match rng.gen_range(0..4) {
        0 => format!("NNDR {} / {}", digits(rng, 10), digits(rng, 6)),
        1 => format!("Business rates account {}", digits(rng, 9)),
        2 => format!("NNDR ref {}", digits(rng, 10)),
        _ => format!("{} {}", digits(rng, 10), digits(rng, 6)),
    })
}

fn housing_rent(rng: &mut StdRng) -> Value {
    Value::plain(match rng.gen_range(0..4) {
        0 => format!("Rent account {}/{}", digits(rng, 8), digits(rng, 2)),
        1 => format!("HRA-{}", digits(rng, 9)),
        2 => format!("Garage rent {} {}", digits(rng, 6), digits(rng, 4)),
        _ => format!("Tenancy {}-{}", digits(rng, 7), digits(rng, 3)),
    })
}

fn benefit(rng: &mut StdRng) -> Value {
    Value::plain(match rng.gen_range(0..3) {
        0 => format!("HB overpayment {} claim {}", digits(rng, 8), digits(rng, 7)),
        1 => format!("CTR claim {}", digits(rng, 9)),
        _ => format!("Overpayment invoice {} {}", digits(rng, 8), digits(rng, 8)),
    })
}

fn pcn(rng: &mut StdRng) -> Value {
    Value::plain(match rng.gen_range(0..4) {
        0 => format!("PCN {}{}", letters(rng, 2), digits(rng, 8)),
        1 => format!(
            "PCN {} {} {}",
            letters(rng, 2),
            digits(rng, 4),
            digits(rng, 4)
        ),
        2 => format!(
            "PCNs {}{}, {}{}",
            letters(rng, 2),
            digits(rng, 8),
            letters(rng, 2),
            digits(rng, 8)
        ),
        _ => format!(
            "Bus lane PCN {}{} vehicle {}{} {}",
            letters(rng, 2),
            digits(rng, 8),
            letters(rng, 2),
            digits(rng, 2),
            letters(rng, 3)
        ),
    })
}

fn planning(rng: &mut StdRng) -> Value {
    let year = rng.gen_range(15..=30);
    Value::plain(match rng.gen_range(0..5) {
        0 => format!("{year}/{}/FUL", digits(rng, 5)),
        1 => format!("PP-{}", digits(rng, 8)),
        2 => format!("20{year}/{}/HOU", digits(rng, 4)),
        3 => format!("Pre-application advice {}/{}/PREAPP", year, digits(rng, 5)),
        _ => format!("Building control {}/{}/BC", digits(rng, 2), digits(rng, 5)),
    })
}

fn licence(rng: &mut StdRng) -> Value {
    Value::plain(match rng.gen_range(0..5) {
        0 => format!("Premises licence LN/{}", digits(rng, 9)),
        1 => format!("Licence {}-{}", digits(rng, 6), digits(rng, 4)),
        2 => format!("Taxi driver badge {}", digits(rng, 5)),
        3 => format!(
            "Street trading consent ST{} {}",
            digits(rng, 6),
            digits(rng, 4)
        ),
        _ => format!(
            "Animal licence {}/{}",
            rng.gen_range(2015..2031),
            digits(rng, 5)
        ),
    })
}

fn invoice(rng: &mut StdRng) -> Value {
    let text = match rng.gen_range(0..9) {
        0 => format!("Invoice {} / {}", digits(rng, 8), digits(rng, 8)),
        1 => format!("INV-{}-{}", rng.gen_range(2015..2031), digits(rng, 6)),
        2 => format!("PO 45{}", digits(rng, 8)),
        3 => format!("Sales invoice 91{}", digits(rng, 8)),
        4 => format!(
            "Invoices {}, {} and {}",
            digits(rng, 8),
            digits(rng, 8),
            digits(rng, 8)
        ),
        5 => format!("Invoice {} {}", digits(rng, 8), digits(rng, 8)),
        6 => format!("Order {}", digits(rng, 7)),
        7 => format!("Order #{} line {}", digits(rng, 9), rng.gen_range(1..20)),
        _ => format!("Invoice no. {}", digits(rng, 10)),
    };
    Value::plain(text)
}

fn nhs_number(rng: &mut StdRng) -> Value {
    let one = |rng: &mut StdRng| match rng.gen_range(0..3) {
        0 => format!("{} {} {}", digits(rng, 3), digits(rng, 3), digits(rng, 4)),
        1 => digits(rng, 10),
        _ => format!("{}-{}-{}", digits(rng, 3), digits(rng, 3), digits(rng, 4)),
    };
    if rng.gen_bool(0.3) {
        list(rng, 2, 3, |rng| Value::plain(one(rng)))
    } else {
        Value::plain(format!("NHS number {}", one(rng)))
    }
}

fn ni_number(rng: &mut StdRng) -> Value {
    let (a, b, c) = (digits(rng, 2), digits(rng, 2), digits(rng, 2));
    let l = letters(rng, 2);
    Value::plain(match rng.gen_range(0..2) {
        0 => format!("{l} {a} {b} {c} {}", pick(rng, &["A", "B", "C", "D"])),
        _ => format!("{l}{a}{b}{c}{}", pick(rng, &["A", "B", "C", "D"])),
    })
}

fn amount(rng: &mut StdRng) -> String {
    let pence: u32 = rng.gen_range(1..500_000);
    match rng.gen_range(0..4) {
        0 => format!("{}.{:02}", pence / 100, pence % 100),
        1 => format!("£{}.{:02}", pence / 100, pence % 100),
        2 if pence >= 100_000 => format!(
            "£{},{:03}.{:02}",
            pence / 100_000,
            pence / 100 % 1000,
            pence % 100
        ),
        _ => format!("{}", pence / 100),
    }
}

fn amounts(rng: &mut StdRng) -> Value {
    if rng.gen_bool(0.3) {
        return Value::plain(format!("{} x {}", rng.gen_range(1..10), amount(rng)));
    }
    let mut value = list(rng, 2, 12, |rng| Value::plain(amount(rng)));
    if rng.gen_bool(0.2) {
        value.text.push_str(", …");
    }
    value
}

fn postcode(rng: &mut StdRng) -> Value {
    let area = rng.gen_range(1..=2);
    let code = format!(
        "{}{} {}{}",
        letters(rng, area),
        rng.gen_range(1..30),
        rng.gen_range(0..10),
        letters(rng, 2)
    );
    Value::plain(match rng.gen_range(0..3) {
        0 => code,
        1 => format!(
            "Flat {}, {} High Street, Anytown {code}",
            rng.gen_range(1..40),
            rng.gen_range(1..300)
        ),
        _ => format!(
            "{} {} Road {code}",
            rng.gen_range(1..300),
            pick(rng, &["Station", "Church", "Mill", "Park"])
        ),
    })
}

/// A GB IBAN with a correct check: four letters of bank, a sort code and an account number.
fn iban(rng: &mut StdRng) -> String {
    let bban = format!("{}{}{}", letters(rng, 4), digits(rng, 6), digits(rng, 8));
    let numeric: String = format!("{bban}GB00")
        .chars()
        .map(|c| c.to_digit(36).expect("alphanumeric").to_string())
        .collect();
    let remainder = numeric
        .bytes()
        .fold(0u32, |r, b| (r * 10 + u32::from(b - b'0')) % 97);
    let iban = format!("GB{:02}{bban}", 98 - remainder);
    if rng.gen_bool(0.5) {
        iban.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        iban
    }
}

fn bank(rng: &mut StdRng) -> Value {
    let (a, b, c) = (digits(rng, 2), digits(rng, 2), digits(rng, 2));
    let account = digits(rng, 8);
    match rng.gen_range(0..6) {
        0 => Value::plain(format!("Sort code {a}-{b}-{c} account {account}")),
        1 => Value::plain(format!("{a}-{b}-{c} {account}")),
        2 => Value::plain(format!("{a}{b}{c} {account}")),
        3 => Value::digits(format!("{a}{b}{c}{account}")),
        4 => Value::plain(format!("Refund to {}", iban(rng))),
        _ => Value::plain(format!("BACS ref {a}{b}{c}/{account}")),
    }
}

fn long_id(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..6) {
        0 => {
            let len = rng.gen_range(13..=30);
            Value::digits(digits(rng, len))
        }
        1 => Value::digits(format!("1{}", digits(rng, 18))),
        2 => Value::digits(format!(
            "2026{:02}{:02}{}",
            rng.gen_range(1..13),
            rng.gen_range(1..29),
            digits(rng, 8)
        )),
        3 => {
            let n = rng.gen_range(1..10_000_000u32);
            Value::digits(format!("{n:020}"))
        }
        4 => Value::plain(format!("{:x}", rng.gen::<u128>())),
        _ => {
            let len = rng.gen_range(13..=24);
            Value::digits(digits(rng, len))
        }
    }
}

fn uuid(rng: &mut StdRng) -> Value {
    let id = uuid::Uuid::from_u128(rng.gen());
    let text = match rng.gen_range(0..6) {
        0 => id.hyphenated().to_string(),
        1 => id.hyphenated().to_string().to_uppercase(),
        2 => id.simple().to_string(),
        3 => id.simple().to_string().to_uppercase(),
        4 => id.braced().to_string(),
        _ => id.urn().to_string(),
    };
    Value::plain(text)
}

fn provider_id(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..10) {
        0 => Value::plain(alnum_lower(rng, 26)),
        1 => Value::plain(format!("govuk refund {}", alnum_lower(rng, 26))),
        2 => Value::plain(format!("pi_{}", base62(rng, 24))),
        3 => Value::plain(format!(
            "{}_{}",
            pick(rng, &["ch", "re", "evt", "txn", "po"]),
            base62(rng, 24)
        )),
        4 => Value::plain(format!(
            "cs_{}_{}",
            pick(rng, &["test", "live"]),
            base62(rng, 58)
        )),
        // Numeric-id providers: a 16-digit PSP reference, 10-digit order codes and PAYIDs.
        5 => Value::digits(format!("88{}", digits(rng, 14))),
        6 => Value::digits(digits(rng, 16)),
        7 => Value::digits(digits(rng, 10)),
        8 => Value::plain(format!(
            "{{{}}}",
            uuid::Uuid::from_u128(rng.gen())
                .hyphenated()
                .to_string()
                .to_uppercase()
        )),
        _ => Value::plain(format!(
            "{}{}",
            digits(rng, 1),
            base62(rng, 16).to_uppercase()
        )),
    }
}

fn case_reference(rng: &mut StdRng) -> Value {
    let year = rng.gen_range(2015..=2030);
    Value::plain(match rng.gen_range(0..5) {
        0 => format!("{year}-{}-{}", digits(rng, 6), digits(rng, 5)),
        1 => format!("CAS-{}-{}", digits(rng, 6), base62(rng, 6).to_uppercase()),
        2 => format!("ENQ/{year}/{}", digits(rng, 6)),
        3 => format!("{year}/{}", digits(rng, 6)),
        _ => format!("FOI {year}-{}", digits(rng, 4)),
    })
}

fn vehicle(rng: &mut StdRng) -> Value {
    let reg =
        |rng: &mut StdRng| format!("{}{} {}", letters(rng, 2), digits(rng, 2), letters(rng, 3));
    Value::plain(format!("Permit for {} and {}", reg(rng), reg(rng)))
}

fn numbered_things(rng: &mut StdRng) -> Value {
    let what = pick(
        rng,
        &[
            "Bays",
            "Plots",
            "Allotments",
            "Stalls",
            "Houses",
            "Flats",
            "Lockers",
            "Pitches",
        ],
    );
    let size = rng.gen_range(1..=4);
    let value = list(rng, 2, 8, |rng| {
        Value::plain(format!("{}", rng.gen_range(1..10u32.pow(size as u32))))
    });
    Value::plain(format!("{what} {}", value.text))
}

/// Descriptions of the kind councils' payment pages and fee schedules carry.
const DESCRIPTIONS: &[&str] = &[
    "Bulky waste collection",
    "Garden waste subscription",
    "Garden waste subscription 2026/27",
    "Replacement wheelie bin (240 litre)",
    "Additional recycling box",
    "Clinical waste collection",
    "Pest control - rats (residential)",
    "Pest control - wasps nest",
    "Resident parking permit",
    "Visitor parking permit (book of 10)",
    "Business parking permit",
    "Dispensation for parking bay suspension",
    "Penalty charge notice",
    "Bus lane contravention",
    "Council tax",
    "Council tax arrears",
    "Business rates",
    "Housing rent",
    "Garage rent",
    "Service charge",
    "Housing benefit overpayment",
    "Sundry debtor invoice",
    "Planning application fee",
    "Pre-application advice",
    "Building control fee",
    "Land charges search (LLC1 and CON29)",
    "Premises licence annual fee, band B",
    "Temporary event notice",
    "Hackney carriage vehicle licence",
    "Private hire driver licence renewal",
    "Street trading consent",
    "Animal boarding licence",
    "Dog warden - stray dog release fee",
    "Birth certificate (standard)",
    "Marriage ceremony at the register office",
    "Citizenship ceremony",
    "Nationality checking service",
    "Burial fee - adult",
    "Cremation fee",
    "Memorial permit",
    "Allotment rent",
    "Sports pitch hire",
    "Room hire, community centre",
    "Library fines",
    "Library reservation fee",
    "Adult social care contribution",
    "Meals on wheels",
    "School meals top-up",
    "School uniform grant repayment",
    "Music service tuition fees",
    "Skip licence",
    "Scaffolding licence",
    "Highways dropped kerb application",
    "Street naming and numbering",
    "Abandoned vehicle release",
    "Fixed penalty notice - fly tipping",
    "Fixed penalty notice - littering",
    "Environmental health - food hygiene re-score",
    "Private water supply sampling",
    "HMO licence",
    "Selective licensing",
    "Tree preservation order copy",
    "Freedom of information copying charge",
    "Electoral register copy",
    "Commercial waste collection",
    "Trade waste sacks (roll of 50)",
    "Green waste sacks",
    "Events - market stall",
    "Christmas market pitch",
    "Lost bin key replacement",
    "Court costs",
    "Summons costs",
    "Direct payment recovery",
    "Deferred payment agreement",
    "Blue badge replacement",
    "Concessionary travel pass replacement",
    "Car park season ticket",
    "Residents' visitor vouchers",
    "Pavement licence",
    "Moorings fee",
    "Beach hut licence",
];

const FORMS: &[&str] = &[
    "{d}",
    "{d} {v}",
    "{d} - {v}",
    "{d}: {v}",
    "{d} ({v})",
    "{v}",
    "{d}, ref {v}",
    "{d} for {v}",
    "{d} {v} {w}",
    "{d} - {v} - {w}",
    "{d} ref {v}, {w}",
    "{v} {w}",
    "{d}\n{v}\n{w}",
];

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

// ---- Card numbers as people and systems write them ----

/// Each network's prefixes (as ranges of numbers of one length) and the lengths it issues.
const NETWORKS: &[(&str, u32, u32, &[usize])] = &[
    ("Visa", 4, 4, &[13, 16, 19]),
    ("Mastercard", 51, 55, &[16]),
    ("Mastercard 2-series", 2221, 2720, &[16]),
    ("American Express", 34, 34, &[15]),
    ("American Express", 37, 37, &[15]),
    ("Discover", 6011, 6011, &[16, 17, 18, 19]),
    ("Discover", 644, 649, &[16, 17, 18, 19]),
    ("Discover", 65, 65, &[16, 17, 18, 19]),
    (
        "Discover (China UnionPay co-brand)",
        622126,
        622925,
        &[16, 17, 18, 19],
    ),
    ("Maestro", 5018, 5018, &[13, 14, 15, 16, 17, 18, 19]),
    ("Maestro", 5020, 5020, &[13, 16, 19]),
    ("Maestro", 5038, 5038, &[16, 19]),
    ("Maestro", 5893, 5893, &[16, 19]),
    ("Maestro", 6304, 6304, &[16, 18, 19]),
    ("Maestro UK", 6759, 6759, &[16, 18, 19]),
    ("Maestro", 6761, 6763, &[16, 19]),
    ("JCB", 3528, 3589, &[16, 17, 18, 19]),
    ("Diners Club", 300, 305, &[14, 16]),
    ("Diners Club", 3095, 3095, &[14, 16]),
    ("Diners Club", 36, 36, &[14]),
    ("Diners Club", 38, 39, &[16]),
    ("UnionPay", 62, 62, &[16, 17, 18, 19]),
    ("UnionPay", 81, 81, &[16]),
];

/// A fresh Luhn-valid number of a network, and the network's name.
pub fn fresh_card_number(rng: &mut StdRng) -> (String, &'static str) {
    let (name, low, high, lengths) = NETWORKS[rng.gen_range(0..NETWORKS.len())];
    let prefix = rng.gen_range(low..=high).to_string();
    let len = *lengths.choose(rng).expect("lengths");
    let mut body: Vec<u32> = prefix
        .chars()
        .map(|c| c.to_digit(10).expect("digit"))
        .chain((prefix.len()..len - 1).map(|_| rng.gen_range(0..10)))
        .collect();
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    body.push((10 - sum % 10) % 10);
    (
        body.iter()
            .map(|d| char::from_digit(*d, 10).unwrap())
            .collect(),
        name,
    )
}

/// The group sizes people and the networks write a number of `len` digits in.
fn layouts_for(len: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = [1, 4]
        .iter()
        .map(|&size| std::iter::repeat_n(size, len.div_ceil(size)).collect())
        .collect();
    match len {
        13 => out.extend([vec![4, 4, 5], vec![4, 3, 3, 3]]),
        14 => out.push(vec![4, 6, 4]),
        15 => out.push(vec![4, 6, 5]),
        _ => {}
    }
    out
}

/// One kind of separator between the groups: ASCII spaces, dashes, full stops and underscores,
/// Unicode spaces and dashes, and the invisible
/// ones (format characters, bidi marks and isolates, the soft hyphen, fillers, a combining
/// grapheme joiner) that a reader does not see at all.
pub const SEPARATORS: &[&str] = &[
    " ", "  ", "-", " - ", ".", " . ", "_", "\u{00A0}", "\u{2000}", "\u{2002}", "\u{2003}",
    "\u{2007}", "\u{2009}", "\u{200A}", "\u{202F}", "\u{205F}", "\u{3000}", "\u{1680}", "\u{2010}",
    "\u{2011}", "\u{2012}", "\u{2013}", "\u{2014}", "\u{2015}", "\u{2212}", "\u{FE63}", "\u{FF0D}",
    "\u{200B}", "\u{200C}", "\u{200D}", "\u{2060}", "\u{FEFF}", "\u{00AD}", "\u{180E}", "\u{200E}",
    "\u{200F}", "\u{061C}", "\u{202A}", "\u{202B}", "\u{202C}", "\u{202D}", "\u{202E}", "\u{2066}",
    "\u{2067}", "\u{2068}", "\u{2069}", "\u{3164}", "\u{FFA0}", "\u{115F}", "\u{034F}", "\u{2800}",
];

/// Marks a digit can carry: combining accents, a strike-through, the keycap, an emoji selector.
const COMBINING: &[&str] = &[
    "\u{0301}", "\u{0336}", "\u{0332}", "\u{20E3}", "\u{FE0F}", "\u{0308}",
];

/// Every way of writing the digits 0-9: each Unicode script's decimal digits (found at run time,
/// so a new script is not missed), then the forms that are not decimal digits.
fn digit_sets() -> Vec<[char; 10]> {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    let mut sets: Vec<[char; 10]> = Vec::new();
    let mut code = 0u32;
    while code < 0x11_0000 {
        let run = |c: u32| {
            char::from_u32(c)
                .is_some_and(|ch| ch.general_category() == GeneralCategory::DecimalNumber)
        };
        if run(code) && (code == 0 || !run(code - 1)) {
            let set: [char; 10] = std::array::from_fn(|i| char::from_u32(code + i as u32).unwrap());
            sets.push(set);
            code += 10;
            continue;
        }
        code += 1;
    }
    let from = |zero: u32, one: u32| -> [char; 10] {
        std::array::from_fn(|i| {
            char::from_u32(if i == 0 { zero } else { one + i as u32 - 1 }).unwrap()
        })
    };
    sets.extend([
        [
            '\u{2070}', '\u{00B9}', '\u{00B2}', '\u{00B3}', '\u{2074}', '\u{2075}', '\u{2076}',
            '\u{2077}', '\u{2078}', '\u{2079}',
        ],
        from(0x2080, 0x2081),  // subscript
        from(0x24EA, 0x2460),  // circled
        from(0x24EA, 0x2474),  // parenthesised (zero circled)
        from(0x1F100, 0x2488), // with a full stop
        from(0x24FF, 0x24F5),  // double circled, negative circled zero
        from(0x24FF, 0x2776),  // dingbat negative circled
        from(0x1F10B, 0x2780), // dingbat circled sans-serif
        from(0x1F10C, 0x278A), // dingbat negative circled sans-serif
    ]);
    sets
}

/// How the number is wrapped once written.
fn in_context(rng: &mut StdRng, written: &str, contiguous: bool) -> (String, &'static str) {
    let (mm, yy) = (rng.gen_range(1..=12), rng.gen_range(26..=35));
    // An expiry or code is glued straight on to a number written whole; after one written in
    // groups it follows a space.
    let context = match rng.gen_range(0..12) {
        5..=7 if !contiguous => 8,
        other => other,
    };
    match context {
        0 => (written.to_owned(), "alone"),
        1 => (
            format!("Card number: {written} exp {mm:02}/{yy}"),
            "in a sentence",
        ),
        2 => (format!("ref{written}end"), "inside a word"),
        3 => (
            format!("https://myaccount.example.gov.uk/pay/{written}/done"),
            "in a URL path",
        ),
        4 => (
            format!("https://myaccount.example.gov.uk/paid?card={written}&ok=1"),
            "in a URL query",
        ),
        5 => (format!("{written}{mm:02}{yy}"), "expiry glued on"),
        6 => (
            format!("{written}{}", digits(rng, 3)),
            "security code glued on",
        ),
        7 => (
            format!("{written}{mm:02}{yy}{}", digits(rng, 3)),
            "expiry and code glued on",
        ),
        8 => (
            format!("{written} {mm:02}/{yy} {}", digits(rng, 3)),
            "expiry and code after",
        ),
        9 => (format!("{written}/{mm:02}{yy}"), "expiry after a slash"),
        // A list of items, one a line (the number is an item of its own).
        10 if rng.gen_bool(0.5) => (
            format!("Items:\n{written}\nother item"),
            "an item of a list",
        ),
        10 => (format!("Paid by card {written}, thanks"), "in a sentence"),
        _ => (format!("{{\"note\":\"{written}\"}}"), "in JSON text"),
    }
}

/// How the whole text is escaped, if at all.
fn escaped(rng: &mut StdRng, text: String) -> (String, &'static str) {
    match rng.gen_range(0..10) {
        0 => (
            url::form_urlencoded::byte_serialize(text.as_bytes()).collect(),
            "percent-escaped",
        ),
        1 => (
            text.bytes().map(|b| format!("%{b:02X}")).collect(),
            "every byte percent-escaped",
        ),
        2 => (
            serde_json::to_string(&text).expect("a string"),
            "JSON string",
        ),
        3 => (
            text.encode_utf16().map(|u| format!("\\u{u:04x}")).collect(),
            "every character JSON-escaped",
        ),
        4 => (format!("{text:?}"), "Rust debug"),
        _ => (text, "as written"),
    }
}

/// `count` card numbers written every way: a network and length, a digit form, a layout and one
/// separator, maybe combining marks, a context (glued expiry or code, a word, a URL, JSON) and
/// an escape. Each sample's kind names the layout and the digit form.
pub fn cards(seed: u64, count: usize) -> Vec<Sample> {
    let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let sets = digit_sets();
    (0..count)
        .map(|i| {
            let (number, network) = fresh_card_number(&mut rng);
            let set = if i % 3 == 0 { &sets[0] } else { sets.choose(&mut rng).expect("sets") };
            let layouts = layouts_for(number.len());
            let contiguous = rng.gen_bool(0.25);
            let layout: Vec<usize> = if contiguous {
                vec![number.len()]
            } else {
                layouts.choose(&mut rng).expect("layouts").clone()
            };
            let separator = pick(&mut rng, SEPARATORS);
            let mark = if rng.gen_bool(0.1) { Some(pick(&mut rng, COMBINING)) } else { None };
            let mut written = String::new();
            let mut at = 0;
            for (g, size) in layout.iter().enumerate() {
                if g > 0 {
                    written.push_str(separator);
                }
                for d in number[at..(at + size).min(number.len())].bytes() {
                    written.push(set[usize::from(d - b'0')]);
                    if let Some(mark) = mark {
                        written.push_str(mark);
                    }
                }
                at += size;
            }
            let (text, context) = in_context(&mut rng, &written, contiguous);
            let (text, escape) = escaped(&mut rng, text);
            Sample {
                kind: if contiguous { "contiguous" } else { "in groups" },
                detail: format!(
                    "{network} {} digits, layout {layout:?}, digits {:?}..{:?}, separator {separator:?}, marks {mark:?}, {context}, {escape}",
                    number.len(), set[0], set[9]
                ),
                text,
                card_shaped: true,
            }
        })
        .collect()
}
