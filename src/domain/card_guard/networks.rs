//! The card networks a UK council can be paid with: each one's issuer prefixes, the lengths it
//! issues, and the Luhn check every one of them uses.

use std::ops::RangeInclusive;

/// Fewest and most digits any network issues (12-digit Maestro numbers are left out: a UPRN has
/// twelve digits, and no UK Maestro card has been issued with twelve).
pub const MIN_DIGITS: usize = 13;
pub const MAX_DIGITS: usize = 19;

/// A network's range of issuer prefixes (as numbers of `digits` digits) and its lengths.
struct Range {
    network: Network,
    digits: usize,
    prefixes: RangeInclusive<u32>,
    lengths: RangeInclusive<usize>,
}

/// A card network, for the layouts that belong to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Maestro,
    Jcb,
    Diners,
    UnionPay,
}

const fn range(
    network: Network,
    digits: usize,
    prefixes: RangeInclusive<u32>,
    lengths: RangeInclusive<usize>,
) -> Range {
    Range {
        network,
        digits,
        prefixes,
        lengths,
    }
}

/// Issuer identification number ranges and the lengths each network issues in them.
const RANGES: &[Range] = &[
    range(Network::Visa, 1, 4..=4, 13..=19),
    range(Network::Mastercard, 2, 51..=55, 16..=16),
    range(Network::Mastercard, 4, 2221..=2720, 16..=16),
    range(Network::Amex, 2, 34..=34, 15..=15),
    range(Network::Amex, 2, 37..=37, 15..=15),
    range(Network::Discover, 4, 6011..=6011, 16..=19),
    range(Network::Discover, 3, 644..=649, 16..=19),
    range(Network::Discover, 2, 65..=65, 16..=19),
    range(Network::Discover, 6, 622126..=622925, 16..=19),
    range(Network::Maestro, 4, 5018..=5018, 13..=19),
    range(Network::Maestro, 4, 5020..=5020, 13..=19),
    range(Network::Maestro, 4, 5038..=5038, 13..=19),
    range(Network::Maestro, 4, 5893..=5893, 13..=19),
    range(Network::Maestro, 4, 6304..=6304, 13..=19),
    range(Network::Maestro, 4, 6759..=6759, 13..=19),
    range(Network::Maestro, 4, 6761..=6763, 13..=19),
    range(Network::Jcb, 4, 3528..=3589, 16..=19),
    range(Network::Diners, 3, 300..=305, 14..=19),
    range(Network::Diners, 4, 3095..=3095, 14..=19),
    range(Network::Diners, 2, 36..=36, 14..=19),
    range(Network::Diners, 2, 38..=39, 16..=19),
    range(Network::UnionPay, 2, 62..=62, 16..=19),
    range(Network::UnionPay, 2, 81..=81, 16..=19),
];

/// The networks that issue a number of these digits (ASCII digits, any length): empty unless
/// its prefix and its length are both ones a network issues. Visa's 13, 16 and 19 digits only.
pub fn issuers(digits: &[u8]) -> impl Iterator<Item = Network> + '_ {
    RANGES
        .iter()
        .filter(move |range| {
            range.lengths.contains(&digits.len())
                && prefix_value(digits, range.digits).is_some_and(|p| range.prefixes.contains(&p))
                && (range.network != Network::Visa || matches!(digits.len(), 13 | 16 | 19))
        })
        .map(|range| range.network)
}

fn prefix_value(digits: &[u8], len: usize) -> Option<u32> {
    digits
        .get(..len)
        .map(|p| p.iter().fold(0, |acc, d| acc * 10 + u32::from(*d)))
}

/// A number of digit values (0-9) that passes Luhn and that a network issues.
pub fn is_card_number(digits: &[u8]) -> bool {
    (MIN_DIGITS..=MAX_DIGITS).contains(&digits.len())
        && issuers(digits).next().is_some()
        && luhn_valid(digits)
}

/// The Luhn (mod 10) checksum every card network uses, over digit values 0-9.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<u8> {
        text.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn each_network_issues_its_own_lengths() {
        let networks = |prefix: &str, len: usize| -> Vec<Network> {
            let digits: String = prefix
                .chars()
                .chain(std::iter::repeat('0'))
                .take(len)
                .collect();
            issuers(&values(&digits)).collect()
        };
        assert_eq!(networks("4", 16), [Network::Visa]);
        assert_eq!(networks("4", 13), [Network::Visa]);
        assert!(networks("4", 15).is_empty(), "Visa issues 13, 16 and 19");
        assert_eq!(networks("37", 15), [Network::Amex]);
        assert!(networks("37", 16).is_empty());
        assert!(
            networks("2025", 15).is_empty(),
            "a year is no Mastercard prefix"
        );
        assert_eq!(networks("2221", 16), [Network::Mastercard]);
        assert!(networks("2221", 15).is_empty());
        assert_eq!(networks("36", 14), [Network::Diners]);
        assert_eq!(networks("6759", 19), [Network::Maestro]);
        assert!(networks("9", 16).is_empty());
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid(&values("79927398713")));
        assert!(!luhn_valid(&values("79927398710")));
    }
}
