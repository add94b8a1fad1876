//! Where card numbers are in a text: its digits read into groups and the separators between
//! them, then each shape a card number is written in (one group, one group with an expiry or
//! security code glued on, groups in a layout) checked against the networks' rules.

use std::ops::Range;

use super::networks::{self, Network, MAX_DIGITS, MIN_DIGITS};
use super::reading::{read, Reading};

/// A run of digits with nothing visible between them.
struct Group {
    digits: Vec<u8>,
    /// Bytes from the first digit's character to the end of the last one's.
    span: Range<usize>,
}

/// What stands between two groups, when it is something a card number's groups are joined by.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Separator {
    Space,
    Dash,
    /// A full stop or an underscore, with or without spaces around it.
    Mark(char),
    /// A slash: it separates the items of a list, and an expiry's month from its year.
    Slash,
}

/// Marks that may join a card number's groups besides spaces and dashes. A comma, a semicolon,
/// a slash, a tab or a line break separates the items of a list instead.
const JOINING_MARKS: &[char] = &['.', '_', '\u{00B7}', '\u{2022}'];

/// Layouts printed on cards or used by people, beyond groups of equal size: Amex's 4-6-5,
/// Diners Club's 4-6-4, and the 13-digit 4-4-5 and 4-3-3-3.
const NAMED_LAYOUTS: &[&[usize]] = &[&[4, 6, 5], &[4, 6, 4], &[4, 4, 5], &[4, 3, 3, 3]];

/// Sizes of the equal groups people split a number into (the last group may be shorter): fours,
/// and digits one by one. Pairs and threes are how lists of short numbers are written.
const EQUAL_GROUP_SIZES: [usize; 2] = [4, 1];

/// The byte ranges of `text` that hold card numbers, merged where they overlap. With
/// `first_only` it stops at the first one found.
pub(super) fn card_spans(text: &str, first_only: bool) -> Vec<Range<usize>> {
    let (groups, separators) = groups_of(text, true);
    let mut spans: Vec<Range<usize>> = Vec::new();
    let mut found = |span: Range<usize>| {
        match spans.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => spans.push(span),
        }
        first_only
    };
    for start in 0..groups.len() {
        let group = &groups[start];
        let next = groups
            .get(start + 1)
            .filter(|_| separators[start] == Some(Separator::Slash));
        if group.digits.len() >= MIN_DIGITS
            && is_whole_or_glued(&group.digits, next.map(|g| g.digits.len()))
            && found(group.span.clone())
        {
            break;
        }
        if let Some(end) = layout_from(&groups, &separators, start) {
            if found(group.span.start..groups[end].span.end) {
                break;
            }
        }
    }
    spans
}

/// True when some group of digits holds a card number anywhere inside it.
pub(super) fn digit_runs_hold_card_number(text: &str) -> bool {
    groups_of(text, false).0.iter().any(|group| {
        let digits = &group.digits;
        (0..digits.len()).any(|start| {
            (MIN_DIGITS..=MAX_DIGITS)
                .filter(|len| start + len <= digits.len())
                .any(|len| networks::is_card_number(&digits[start..start + len]))
        })
    })
}

/// Reads `text` into groups of digits (with `mask_words`, not those inside UUIDs, IBANs and hex
/// ids) and, between each two, the separator joining them (`None`
/// when what stands between them is a word, a list separator or anything else).
fn groups_of(text: &str, mask_words: bool) -> (Vec<Group>, Vec<Option<Separator>>) {
    let mut masked = Vec::new();
    if mask_words {
        masked.extend(uuid_spans(text));
        masked.extend(iban_spans(text));
        masked.extend(hex_id_spans(text));
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut separators: Vec<Option<Separator>> = Vec::new();
    let mut current: Option<Group> = None;
    let mut gap = Gap::default();
    for (at, ch) in text.char_indices() {
        let end = at + ch.len_utf8();
        let reading = if masked.iter().any(|span| span.contains(&at)) {
            Reading::Word
        } else {
            read(ch)
        };
        match reading {
            Reading::Digit(value) => {
                if let Some(group) = current.as_mut() {
                    group.digits.push(value);
                    group.span.end = end;
                } else {
                    if !groups.is_empty() {
                        separators.push(gap.separator());
                    }
                    gap = Gap::default();
                    current = Some(Group {
                        digits: vec![value],
                        span: at..end,
                    });
                }
            }
            Reading::Invisible => {}
            other => {
                if let Some(group) = current.take() {
                    groups.push(group);
                }
                gap.add(other);
            }
        }
    }
    if let Some(group) = current {
        groups.push(group);
    }
    (groups, separators)
}

/// What has been read between two groups so far.
#[derive(Default)]
struct Gap {
    marks: usize,
    mark: Option<Separator>,
    broken: bool,
}

impl Gap {
    fn add(&mut self, reading: Reading) {
        match reading {
            Reading::Space => {}
            Reading::Break => self.broken = true,
            Reading::Dash => self.mark_seen(Separator::Dash),
            Reading::Mark(c) if JOINING_MARKS.contains(&c) => self.mark_seen(Separator::Mark(c)),
            Reading::Mark('/') => self.mark_seen(Separator::Slash),
            _ => self.broken = true,
        }
    }

    fn mark_seen(&mut self, separator: Separator) {
        self.marks += 1;
        self.mark = Some(separator);
    }

    /// One mark at most (white space around it allowed), and no word.
    fn separator(&self) -> Option<Separator> {
        match (self.broken, self.marks, self.mark) {
            (false, 0, _) => Some(Separator::Space),
            (false, 1, mark) => mark,
            _ => None,
        }
    }
}

/// A group that is a card number on its own, or one with an expiry or security code glued on.
/// `year_after_slash` is the length of the group after it when a slash joins them: a number with
/// its expiry's month glued on and the year after a slash (`…467812/27`).
fn is_whole_or_glued(digits: &[u8], year_after_slash: Option<usize>) -> bool {
    if digits.len() <= MAX_DIGITS && networks::is_card_number(digits) {
        return true;
    }
    (MIN_DIGITS..digits.len().min(MAX_DIGITS + 1)).any(|len| {
        let (number, rest) = digits.split_at(len);
        let month_then_year =
            rest.len() == 2 && is_month(rest) && matches!(year_after_slash, Some(2 | 4));
        networks::is_card_number(number) && (month_then_year || is_glued_on(rest, number))
    })
}

fn is_month(digits: &[u8]) -> bool {
    (1..=12).contains(&(u32::from(digits[0]) * 10 + u32::from(digits[1])))
}

/// Digits people put right after a card number: an expiry (`MMYY`, `MMYYYY`), a security code
/// (three digits, four on Amex), or an expiry and then a security code.
fn is_glued_on(rest: &[u8], number: &[u8]) -> bool {
    let amex = networks::issuers(number).any(|n| n == Network::Amex);
    let security_code = |digits: &[u8]| digits.len() == 3 || (amex && digits.len() == 4);
    let expiry = |digits: &[u8]| -> bool {
        match digits.len() {
            4 => is_month(digits),
            6 => is_month(digits) && digits[2] == 2 && digits[3] == 0,
            _ => false,
        }
    };
    security_code(rest)
        || expiry(rest)
        || [4, 6]
            .iter()
            .any(|&cut| rest.len() > cut && expiry(&rest[..cut]) && security_code(&rest[cut..]))
}

/// The last group of a layout that starts at group `start`, when one does: groups of four (the
/// last one shorter), digits one by one, or a named layout, joined by one kind of separator,
/// whose digits are a card number. The last group may carry an expiry or security code glued on.
///
/// A layout must also be the whole of its *run* (the groups joined by that same separator), but
/// for one short number before it after a space (`order 12 4539 …`) and, after it, an expiry or
/// a security code (`… 12 27 123`, `… 12/27`): more groups mean a list of numbers, not a card
/// number.
fn layout_from(groups: &[Group], separators: &[Option<Separator>], start: usize) -> Option<usize> {
    let separator = separators.get(start).copied().flatten();
    if separator.is_none_or(|s| s == Separator::Slash) {
        return None;
    }
    let joined = |i: usize| separators.get(i).copied().flatten() == separator;
    // The run: from the first group joined to the next by this separator, to the last.
    let run_start = (0..start)
        .rev()
        .take_while(|&i| joined(i))
        .last()
        .unwrap_or(start);
    let run_end = (start..groups.len())
        .find(|&i| !joined(i))
        .unwrap_or(groups.len() - 1);
    // One short number before it, with a space between (`flat 2 4539 …`), is a number of its own.
    let leading_fits = match start - run_start {
        0 => true,
        1 => separator == Some(Separator::Space) && groups[run_start].digits.len() <= 3,
        _ => false,
    };
    if !leading_fits {
        return None;
    }
    // The groups before `end` and the first `take` digits of group `end` make a card number, and
    // what follows it (the rest of group `end`, then the run's remaining groups) is nothing, or
    // an expiry and or a security code.
    let card_ending_in = |end: usize, take: usize| -> bool {
        let last = &groups[end].digits;
        let number: Vec<u8> = groups[start..end]
            .iter()
            .flat_map(|g| g.digits.iter().copied())
            .chain(last[..take].iter().copied())
            .collect();
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&number.len()) || !networks::is_card_number(&number)
        {
            return false;
        }
        // An expiry's year after a slash (`… 12/27`) belongs with its month.
        let year = groups.get(run_end + 1).filter(|g| {
            separators[run_end] == Some(Separator::Slash) && matches!(g.digits.len(), 2 | 4)
        });
        let after: Vec<u8> = last[take..]
            .iter()
            .chain(groups[end + 1..=run_end].iter().flat_map(|g| &g.digits))
            .chain(
                year.into_iter()
                    .flat_map(|g| &g.digits)
                    .filter(|_| end < run_end),
            )
            .copied()
            .collect();
        after.is_empty() || (run_end - end <= 3 && is_glued_on(&after, &number))
    };
    for size in EQUAL_GROUP_SIZES {
        for end in start + 1..=run_end {
            let len = groups[end].digits.len();
            if groups[end - 1].digits.len() != size {
                break;
            }
            // A last group longer than the others holds an expiry or code glued on after it.
            let mut takes = if len <= size { len..=len } else { 1..=size };
            if takes.any(|take| card_ending_in(end, take)) {
                return Some(end);
            }
        }
    }
    NAMED_LAYOUTS.iter().find_map(|sizes| {
        let end = start + sizes.len() - 1;
        let (last, before) = sizes.split_last().expect("a layout has groups");
        let fits = end <= run_end
            && before
                .iter()
                .zip(&groups[start..end])
                .all(|(size, group)| group.digits.len() == *size)
            && groups[end].digits.len() >= *last;
        (fits && card_ending_in(end, *last)).then_some(end)
    })
}

/// The byte ranges of UUIDs (8-4-4-4-12 hex digits, not glued to other letters or digits): their
/// inner groups of four read like a card number's, and nobody writes a card number that way.
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
        let before = start.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(start + LEN).copied();
        !before.is_some_and(|b| b.is_ascii_alphanumeric())
            && !after.is_some_and(|b| b.is_ascii_alphanumeric())
    };
    (0..=bytes.len() - LEN)
        .filter(|&i| is_uuid_at(i))
        .map(|i| i..i + LEN)
        .collect()
}

/// The byte ranges of IBANs (a country code, two check digits and up to 30 letters and digits,
/// written whole or in groups of four) that pass their mod-97 check: a UK IBAN holds a sort code
/// and an account number, fourteen digits in groups of four, and starts with letters as no card
/// number does.
fn iban_spans(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut start = 0;
    while start + 15 <= bytes.len() {
        let head = &bytes[start..start + 4];
        let starts_one = head[..2].iter().all(u8::is_ascii_alphabetic)
            && head[2..].iter().all(u8::is_ascii_digit)
            && !start
                .checked_sub(1)
                .is_some_and(|i| bytes[i].is_ascii_alphanumeric());
        if !starts_one {
            start += 1;
            continue;
        }
        // The IBAN's characters and where each ends, single spaces between groups allowed.
        let mut chars: Vec<(u8, usize)> = Vec::new();
        let mut at = start;
        while at < bytes.len() && chars.len() < 34 {
            match bytes[at] {
                b if b.is_ascii_alphanumeric() => chars.push((b.to_ascii_uppercase(), at + 1)),
                b' ' if bytes.get(at + 1).is_some_and(u8::is_ascii_alphanumeric) => {}
                _ => break,
            }
            at += 1;
        }
        let ends_at_boundary = |end: usize| !bytes.get(end).is_some_and(u8::is_ascii_alphanumeric);
        let valid = (15..=chars.len()).rev().find(|&len| {
            let end = chars[len - 1].1;
            ends_at_boundary(end) && iban_check(&chars[..len])
        });
        match valid {
            Some(len) => {
                let end = chars[len - 1].1;
                spans.push(start..end);
                start = end;
            }
            None => start += 1,
        }
    }
    spans
}

/// ISO 13616's check: the first four characters moved to the end, letters as 10 to 35, mod 97 is 1.
fn iban_check(chars: &[(u8, usize)]) -> bool {
    let rotated = chars[4..].iter().chain(&chars[..4]).map(|(c, _)| *c);
    let mut remainder = 0u32;
    for c in rotated {
        let value = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

/// The byte ranges of hexadecimal identifiers: words of at least 24 hex digits with letters
/// among them (a UUID without its dashes, a hash, a trace id). Their digit runs are random, and
/// nobody writes a card number inside one.
fn hex_id_spans(text: &str) -> Vec<Range<usize>> {
    const MIN_LEN: usize = 24;
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if !bytes[at].is_ascii_alphanumeric() {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
            at += 1;
        }
        let word = &bytes[start..at];
        if word.len() >= MIN_LEN
            && word.iter().all(u8::is_ascii_hexdigit)
            && word.iter().any(u8::is_ascii_alphabetic)
        {
            spans.push(start..at);
        }
    }
    spans
}
