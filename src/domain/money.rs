//! Money: integer pence (`i64`) with the limits a payment may carry. No floats anywhere.

use std::fmt;

/// A payment amount in pence, 1..=10,000,000 (GOV.UK Pay's own limit: £100,000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AmountPence(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must be at least 1 (pence)")]
    TooSmall,
    #[error("must be at most 10000000 (pence)")]
    TooLarge,
}

impl AmountPence {
    pub const MIN: i64 = 1;
    pub const MAX: i64 = 10_000_000;

    pub fn parse(pence: i64) -> Result<Self, AmountError> {
        if pence < Self::MIN {
            Err(AmountError::TooSmall)
        } else if pence > Self::MAX {
            Err(AmountError::TooLarge)
        } else {
            Ok(Self(pence))
        }
    }

    pub fn pence(self) -> i64 {
        self.0
    }
}

impl fmt::Display for AmountPence {
    /// Pounds and pence for people, e.g. `£12.05`; machines use [`AmountPence::pence`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "£{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_inclusive_range() {
        assert_eq!(AmountPence::parse(1).unwrap().pence(), 1);
        assert_eq!(AmountPence::parse(10_000_000).unwrap().pence(), 10_000_000);
    }

    #[test]
    fn refuses_zero_negative_and_over_the_limit() {
        assert_eq!(AmountPence::parse(0), Err(AmountError::TooSmall));
        assert_eq!(AmountPence::parse(-5), Err(AmountError::TooSmall));
        assert_eq!(AmountPence::parse(10_000_001), Err(AmountError::TooLarge));
    }

    #[test]
    fn displays_pounds_and_pence() {
        assert_eq!(AmountPence::parse(1205).unwrap().to_string(), "£12.05");
        assert_eq!(AmountPence::parse(7).unwrap().to_string(), "£0.07");
    }
}
