//! Card numbers as people and systems write them: every network, digit form, layout, separator,
//! context and escape.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use super::{digits, pick, Sample};

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
