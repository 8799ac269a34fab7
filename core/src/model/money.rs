//! Exact decimal money: a fixed-point amount with six fractional digits, stored as an `i64`
//! count of micro-units in both databases so that sums are exact everywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Micro-units per whole unit.
const SCALE: i64 = 1_000_000;
const FRACTION_DIGITS: usize = 6;

/// An amount of money (or any exact decimal quantity) with six fractional digits.
///
/// Never a float: parsing rejects `NaN`, `inf`, exponents, more than six fractional digits and
/// values outside ±9 223 372 036 854.775807.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

/// Why a text is not a valid decimal amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("empty amount")]
    Empty,
    #[error("`{0}` is not a decimal number")]
    NotDecimal(String),
    #[error("`{0}` has more than {FRACTION_DIGITS} digits after the decimal point")]
    TooPrecise(String),
    #[error("`{0}` is out of range")]
    OutOfRange(String),
}

impl Money {
    pub const ZERO: Money = Money(0);

    /// The largest cost one click may carry from outside (a visitor's `cost` parameter on a
    /// `cost_auto` campaign, a postback's `cost`): 1 000 000 units. Far above a real price
    /// per click in any currency, and small enough that a report sum (an `i64` of micro-units)
    /// overflows only after 9.2 million such clicks in one hour of one campaign.
    pub const MAX_CLICK_COST: Money = Money::units(1_000_000);

    /// The largest payout one postback may carry: 1 000 000 000 units.
    pub const MAX_PAYOUT: Money = Money::units(1_000_000_000);

    /// The amount from its count of micro-units.
    pub const fn from_micros(micros: i64) -> Self {
        Money(micros)
    }

    /// The amount as a count of micro-units (what the databases store).
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Whole units, for amounts written in code (`Money::units(5)` is 5.000000).
    pub const fn units(units: i64) -> Self {
        Money(units * SCALE)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(MoneyError::Empty);
        }
        let (negative, digits) = match trimmed.as_bytes()[0] {
            b'-' => (true, &trimmed[1..]),
            b'+' => (false, &trimmed[1..]),
            _ => (false, trimmed),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction)
        {
            return Err(MoneyError::NotDecimal(text.to_string()));
        }
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > FRACTION_DIGITS {
            return Err(MoneyError::TooPrecise(text.to_string()));
        }
        let out_of_range = || MoneyError::OutOfRange(text.to_string());
        if whole.len() > 20 {
            return Err(out_of_range());
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| out_of_range())?
        };
        let mut fraction_micros: i128 = 0;
        for (i, b) in fraction.bytes().enumerate() {
            fraction_micros += i128::from(b - b'0') * 10_i128.pow((FRACTION_DIGITS - 1 - i) as u32);
        }
        let magnitude = whole * i128::from(SCALE) + fraction_micros;
        let signed = if negative { -magnitude } else { magnitude };
        i64::try_from(signed).map(Money).map_err(|_| out_of_range())
    }
}

impl fmt::Display for Money {
    /// The shortest exact decimal: `1.5`, `0.000001`, `-3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let whole = magnitude / SCALE as u64;
        let fraction = magnitude % SCALE as u64;
        if fraction == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let digits = format!("{fraction:06}");
            write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

impl Serialize for Money {
    /// Serialised as a JSON number written from the exact decimal text (no float rounding).
    /// In binary formats (the click journal), the count of micro-units.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return serializer.serialize_i64(self.0);
        }
        let number: serde_json::Number = self
            .to_string()
            .parse()
            .map_err(serde::ser::Error::custom)?;
        number.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Money {
    /// Accepts a JSON number or a string holding a decimal (in binary formats, micro-units).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            return i64::deserialize(deserializer).map(Money);
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Number(serde_json::Number),
        }
        let text = match Repr::deserialize(deserializer)? {
            Repr::Text(text) => text,
            Repr::Number(number) => number.to_string(),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_exact_decimals() {
        for (text, micros, shown) in [
            ("0", 0, "0"),
            ("1.5", 1_500_000, "1.5"),
            ("-0.000001", -1, "-0.000001"),
            (".25", 250_000, "0.25"),
            ("12.340000", 12_340_000, "12.34"),
            ("+7", 7_000_000, "7"),
        ] {
            let money: Money = text.parse().unwrap();
            assert_eq!(money.micros(), micros, "{text}");
            assert_eq!(money.to_string(), shown, "{text}");
        }
    }

    #[test]
    fn rejects_floats_in_disguise() {
        for text in [
            "NaN", "inf", "-inf", "1e3", "", ".", "1.2.3", "0x10", "1,5", " - 1",
        ] {
            assert!(text.parse::<Money>().is_err(), "{text:?} must be rejected");
        }
        assert!(matches!(
            "0.0000001".parse::<Money>(),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            "99999999999999999".parse::<Money>(),
            Err(MoneyError::OutOfRange(_))
        ));
    }

    #[test]
    fn json_round_trip_keeps_digits() {
        let money: Money = serde_json::from_str("\"0.1\"").unwrap();
        assert_eq!(serde_json::to_string(&money).unwrap(), "0.1");
        let money: Money = serde_json::from_str("2.75").unwrap();
        assert_eq!(money, Money::from_micros(2_750_000));
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(micros in any::<i64>()) {
            let money = Money::from_micros(micros);
            prop_assert_eq!(money.to_string().parse::<Money>().unwrap(), money);
        }
    }
}
