//! How the detector reads one character: as a digit (any script, any compatibility form, the
//! dingbat and enclosed ones), as nothing at all (invisible, combining and filler characters), as
//! part of a word, or as punctuation that may stand between groups of digits.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// How one character reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reading {
    /// A digit of this value.
    Digit(u8),
    /// Nothing a reader sees: a zero-width or format character, a combining mark, a filler.
    Invisible,
    /// White space within a line (spaces of every width, but not a tab).
    Space,
    /// A line break or a tab: what separates the items of a list or the cells of a row.
    Break,
    /// A dash of any kind (hyphen, en and em dash, minus, full-width hyphen-minus).
    Dash,
    /// Any other punctuation or symbol, as it reads under NFKC.
    Mark(char),
    /// A letter (or a number that is not a single digit): it belongs to a word.
    Word,
}

/// Reads one character the way a person sees it.
pub(super) fn read(ch: char) -> Reading {
    if ch.is_ascii() {
        return match ch {
            '0'..='9' => Reading::Digit(ch as u8 - b'0'),
            'a'..='z' | 'A'..='Z' => Reading::Word,
            '-' => Reading::Dash,
            ' ' => Reading::Space,
            '\t' | '\n' | '\r' | '\u{0B}' | '\u{0C}' => Reading::Break,
            c if c.is_ascii_control() => Reading::Invisible,
            c => Reading::Mark(c),
        };
    }
    if let Some(value) = digit_value(ch) {
        return Reading::Digit(value);
    }
    if matches!(ch, '\u{85}' | '\u{2028}' | '\u{2029}') {
        return Reading::Break;
    }
    if ch.is_whitespace() {
        return Reading::Space;
    }
    if is_invisible(ch) {
        return Reading::Invisible;
    }
    if is_dash(ch) {
        return Reading::Dash;
    }
    // Compatibility forms (full-width letters and punctuation, ligatures) read as what they fold
    // to. One that folds to several characters with a digit among them (circled ten, "10.") is a
    // number but not one digit: it reads as a word.
    let folded: Vec<Reading> = std::iter::once(ch)
        .nfkc()
        .filter(|&c| c != ch)
        .map(read)
        .filter(|reading| *reading != Reading::Invisible)
        .collect();
    match folded.as_slice() {
        [] if ch.is_alphanumeric() => Reading::Word,
        [] => Reading::Mark(ch),
        [one] => *one,
        several if several.iter().all(|r| *r == Reading::Space) => Reading::Space,
        several
            if several
                .iter()
                .any(|r| matches!(r, Reading::Digit(_) | Reading::Word)) =>
        {
            Reading::Word
        }
        several => several[0],
    }
}

/// The value of a character that reads as one digit: a decimal digit of any script (general
/// category Nd), or a digit in another form (superscript, subscript, circled, parenthesised,
/// with a full stop, the dingbat and double-circled ones, Ethiopic, Brahmi, …).
pub(super) fn digit_value(ch: char) -> Option<u8> {
    if ch.is_ascii_digit() {
        return Some(ch as u8 - b'0');
    }
    if ch.general_category() == GeneralCategory::DecimalNumber {
        // Unicode assigns decimal digits only in contiguous runs of ten, 0 to 9, so a digit's
        // value is its distance from the start of its run.
        let mut behind = 0u32;
        while let Some(previous) = char::from_u32(ch as u32 - behind - 1) {
            if previous.general_category() != GeneralCategory::DecimalNumber {
                break;
            }
            behind += 1;
        }
        return Some((behind % 10) as u8);
    }
    let code = ch as u32;
    OTHER_DIGITS
        .iter()
        .find(|(first, last, _)| (*first..=*last).contains(&code))
        .map(|(first, _, value)| value + (code - first) as u8)
}

/// Characters that are one digit but not decimal digits (Unicode's Numeric_Type=Digit), as
/// ranges: first, last, the value of the first. Several have no NFKC form that is a digit (the
/// dingbats, double-circled, negative-circled and Ethiopic digits), so they are listed here
/// rather than left to normalisation.
const OTHER_DIGITS: &[(u32, u32, u8)] = &[
    (0x00B2, 0x00B3, 2),   // superscript two, three
    (0x00B9, 0x00B9, 1),   // superscript one
    (0x1369, 0x1371, 1),   // Ethiopic digits one to nine
    (0x19DA, 0x19DA, 1),   // New Tai Lue Tham digit one
    (0x2070, 0x2070, 0),   // superscript zero
    (0x2074, 0x2079, 4),   // superscript four to nine
    (0x2080, 0x2089, 0),   // subscript zero to nine
    (0x2460, 0x2468, 1),   // circled digits one to nine
    (0x2474, 0x247C, 1),   // parenthesised digits one to nine
    (0x2488, 0x2490, 1),   // digits one to nine with a full stop
    (0x24EA, 0x24EA, 0),   // circled digit zero
    (0x24F5, 0x24FD, 1),   // double circled digits one to nine
    (0x24FF, 0x24FF, 0),   // negative circled digit zero
    (0x2776, 0x277E, 1),   // dingbat negative circled digits one to nine
    (0x2780, 0x2788, 1),   // dingbat circled sans-serif digits one to nine
    (0x278A, 0x2792, 1),   // dingbat negative circled sans-serif digits one to nine
    (0x10A40, 0x10A43, 1), // Kharoshthi digits one to four
    (0x10E60, 0x10E68, 1), // Rumi digits one to nine
    (0x11052, 0x1105A, 1), // Brahmi numbers one to nine
    (0x1F100, 0x1F100, 0), // digit zero with a full stop
    (0x1F101, 0x1F10A, 0), // digits zero to nine with a comma
    (0x1F10B, 0x1F10B, 0), // dingbat circled sans-serif digit zero
    (0x1F10C, 0x1F10C, 0), // dingbat negative circled sans-serif digit zero
];

/// Characters a reader does not see, or sees only as a mark on the character before: format
/// characters (zero-width spaces and joiners, bidi marks and isolates, the soft hyphen, the
/// byte-order mark, tags), combining marks of every kind, variation selectors, and the Hangul and
/// braille fillers that are drawn as nothing. Unicode's Default_Ignorable_Code_Point set is
/// covered.
fn is_invisible(ch: char) -> bool {
    matches!(
        ch.general_category(),
        GeneralCategory::Format
            | GeneralCategory::NonspacingMark
            | GeneralCategory::SpacingMark
            | GeneralCategory::EnclosingMark
            | GeneralCategory::Control
    ) || matches!(
        ch as u32,
        0x115F..=0x1160        // Hangul choseong and jungseong fillers
            | 0x17B4..=0x17B5  // Khmer inherent vowels
            | 0x180B..=0x180F  // Mongolian variation selectors and vowel separator
            | 0x2800           // braille pattern blank
            | 0x3164           // Hangul filler
            | 0xFFA0           // half-width Hangul filler
            | 0xFFF0..=0xFFF8  // unassigned specials
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// Dashes of every kind: Unicode's dash punctuation, the minus sign and the small and
/// full-width hyphen-minus.
fn is_dash(ch: char) -> bool {
    ch.general_category() == GeneralCategory::DashPunctuation
        || matches!(ch, '\u{2212}' | '\u{FE63}' | '\u{FF0D}' | '\u{2043}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_in_every_form_read_as_their_value() {
        let ones = [
            '1',
            '\u{FF11}',
            '\u{0661}',
            '\u{0967}',
            '\u{00B9}',
            '\u{2081}',
            '\u{2460}',
            '\u{2474}',
            '\u{2488}',
            '\u{24F5}',
            '\u{2776}',
            '\u{2780}',
            '\u{278A}',
            '\u{1369}',
            '\u{1D7CF}',
            '\u{1FBF1}',
        ];
        for one in ones {
            assert_eq!(read(one), Reading::Digit(1), "{one:?} U+{:04X}", one as u32);
        }
        assert_eq!(read('\u{277E}'), Reading::Digit(9), "dingbat nine");
        assert_eq!(read('\u{24FF}'), Reading::Digit(0), "negative circled zero");
        assert_eq!(read('\u{1F10B}'), Reading::Digit(0));
    }

    #[test]
    fn fillers_marks_and_format_characters_are_invisible() {
        for ch in [
            '\u{200B}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{200E}',
            '\u{202E}',
            '\u{2066}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{115F}',
            '\u{0301}',
            '\u{20E3}',
            '\u{FE0F}',
            '\u{034F}',
            '\u{E0031}',
            '\u{180E}',
        ] {
            assert_eq!(read(ch), Reading::Invisible, "U+{:04X}", ch as u32);
        }
    }

    #[test]
    fn spaces_dashes_marks_and_words() {
        for ch in [' ', '\u{00A0}', '\u{202F}', '\u{3000}', '\u{2009}'] {
            assert_eq!(read(ch), Reading::Space, "U+{:04X}", ch as u32);
        }
        for ch in ['\t', '\n', '\r', '\u{2028}'] {
            assert_eq!(read(ch), Reading::Break, "U+{:04X}", ch as u32);
        }
        for ch in [
            '-', '\u{2010}', '\u{2011}', '\u{2013}', '\u{2014}', '\u{2212}', '\u{FF0D}',
        ] {
            assert_eq!(read(ch), Reading::Dash, "U+{:04X}", ch as u32);
        }
        assert_eq!(read('\u{FF0E}'), Reading::Mark('.'), "full-width full stop");
        assert_eq!(read('/'), Reading::Mark('/'));
        assert_eq!(read('é'), Reading::Word);
        assert_eq!(read('\u{FF21}'), Reading::Word, "full-width A");
        assert_eq!(
            read('\u{2469}'),
            Reading::Word,
            "circled ten is a number, not a digit"
        );
    }
}
