//! Council values, one generator per kind, and the descriptions councils write around them.

use rand::rngs::StdRng;
use rand::Rng;

use super::{alnum_lower, base62, digits, letters, list, pick, Value};

pub(super) fn uprn(rng: &mut StdRng) -> Value {
    let n = if rng.gen_bool(0.6) {
        format!("10{}", digits(rng, 10))
    } else {
        let len = rng.gen_range(5..=12);
        format!("{}{}", rng.gen_range(1..10), digits(rng, len - 1))
    };
    Value::digits(n)
}

pub(super) fn phone(rng: &mut StdRng) -> Value {
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

pub(super) fn date(rng: &mut StdRng) -> Value {
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

pub(super) fn date_range(rng: &mut StdRng) -> Value {
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

pub(super) fn time(rng: &mut StdRng) -> Value {
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

pub(super) fn council_tax(rng: &mut StdRng) -> Value {
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

pub(super) fn business_rates(rng: &mut StdRng) -> Value {
    Value::plain(match rng.gen_range(0..4) {
        0 => format!("NNDR {} / {}", digits(rng, 10), digits(rng, 6)),
        1 => format!("Business rates account {}", digits(rng, 9)),
        2 => format!("NNDR ref {}", digits(rng, 10)),
        _ => format!("{} {}", digits(rng, 10), digits(rng, 6)),
    })
}

pub(super) fn housing_rent(rng: &mut StdRng) -> Value {
    Value::plain(match rng.gen_range(0..4) {
        0 => format!("Rent account {}/{}", digits(rng, 8), digits(rng, 2)),
        1 => format!("HRA-{}", digits(rng, 9)),
        2 => format!("Garage rent {} {}", digits(rng, 6), digits(rng, 4)),
        _ => format!("Tenancy {}-{}", digits(rng, 7), digits(rng, 3)),
    })
}

pub(super) fn benefit(rng: &mut StdRng) -> Value {
    Value::plain(match rng.gen_range(0..3) {
        0 => format!("HB overpayment {} claim {}", digits(rng, 8), digits(rng, 7)),
        1 => format!("CTR claim {}", digits(rng, 9)),
        _ => format!("Overpayment invoice {} {}", digits(rng, 8), digits(rng, 8)),
    })
}

pub(super) fn pcn(rng: &mut StdRng) -> Value {
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

pub(super) fn planning(rng: &mut StdRng) -> Value {
    let year = rng.gen_range(15..=30);
    Value::plain(match rng.gen_range(0..5) {
        0 => format!("{year}/{}/FUL", digits(rng, 5)),
        1 => format!("PP-{}", digits(rng, 8)),
        2 => format!("20{year}/{}/HOU", digits(rng, 4)),
        3 => format!("Pre-application advice {}/{}/PREAPP", year, digits(rng, 5)),
        _ => format!("Building control {}/{}/BC", digits(rng, 2), digits(rng, 5)),
    })
}

pub(super) fn licence(rng: &mut StdRng) -> Value {
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

pub(super) fn invoice(rng: &mut StdRng) -> Value {
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

pub(super) fn nhs_number(rng: &mut StdRng) -> Value {
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

pub(super) fn ni_number(rng: &mut StdRng) -> Value {
    let (a, b, c) = (digits(rng, 2), digits(rng, 2), digits(rng, 2));
    let l = letters(rng, 2);
    Value::plain(match rng.gen_range(0..2) {
        0 => format!("{l} {a} {b} {c} {}", pick(rng, &["A", "B", "C", "D"])),
        _ => format!("{l}{a}{b}{c}{}", pick(rng, &["A", "B", "C", "D"])),
    })
}

pub(super) fn amount(rng: &mut StdRng) -> String {
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

pub(super) fn amounts(rng: &mut StdRng) -> Value {
    if rng.gen_bool(0.3) {
        return Value::plain(format!("{} x {}", rng.gen_range(1..10), amount(rng)));
    }
    let mut value = list(rng, 2, 12, |rng| Value::plain(amount(rng)));
    if rng.gen_bool(0.2) {
        value.text.push_str(", …");
    }
    value
}

pub(super) fn postcode(rng: &mut StdRng) -> Value {
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
pub(super) fn iban(rng: &mut StdRng) -> String {
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

pub(super) fn bank(rng: &mut StdRng) -> Value {
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

pub(super) fn long_id(rng: &mut StdRng) -> Value {
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

pub(super) fn uuid(rng: &mut StdRng) -> Value {
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

pub(super) fn provider_id(rng: &mut StdRng) -> Value {
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

pub(super) fn case_reference(rng: &mut StdRng) -> Value {
    let year = rng.gen_range(2015..=2030);
    Value::plain(match rng.gen_range(0..5) {
        0 => format!("{year}-{}-{}", digits(rng, 6), digits(rng, 5)),
        1 => format!("CAS-{}-{}", digits(rng, 6), base62(rng, 6).to_uppercase()),
        2 => format!("ENQ/{year}/{}", digits(rng, 6)),
        3 => format!("{year}/{}", digits(rng, 6)),
        _ => format!("FOI {year}-{}", digits(rng, 4)),
    })
}

pub(super) fn vehicle(rng: &mut StdRng) -> Value {
    let reg =
        |rng: &mut StdRng| format!("{}{} {}", letters(rng, 2), digits(rng, 2), letters(rng, 3));
    Value::plain(format!("Permit for {} and {}", reg(rng), reg(rng)))
}

pub(super) fn numbered_things(rng: &mut StdRng) -> Value {
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
pub(super) const DESCRIPTIONS: &[&str] = &[
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

pub(super) const FORMS: &[&str] = &[
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
