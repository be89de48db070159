//! Threshold ranges as the Nagios plugin guidelines define them: `10` alerts outside 0..10,
//! `10:` below 10, `~:10` above 10, `10:20` outside 10..20, and `@10:20` inside 10..20 (the
//! ends belong to the range).

use std::fmt;
use std::str::FromStr;

/// A parsed threshold range; alerts when the value is outside it (inside, with `@`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    start: f64,
    end: f64,
    inside: bool,
}

impl Range {
    /// Whether `value` raises the alert.
    pub fn alerts(&self, value: f64) -> bool {
        let within = self.start <= value && value <= self.end;
        within == self.inside
    }

    /// The same range with both ends multiplied by `factor` (to state it in another unit).
    pub fn scaled(&self, factor: f64) -> Range {
        Range {
            start: self.start * factor,
            end: self.end * factor,
            ..*self
        }
    }
}

impl FromStr for Range {
    type Err = String;

    fn from_str(text: &str) -> Result<Range, String> {
        let bad =
            || format!("{text:?} is not a threshold range (e.g. 10, 10:, ~:10, 10:20, @10:20)");
        let (inside, body) = match text.trim().strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, text.trim()),
        };
        let number = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
        let (start, end) = match body.split_once(':') {
            None => (0.0, number(body).ok_or_else(bad)?),
            Some((start, end)) => (
                match start {
                    "~" => f64::NEG_INFINITY,
                    "" => 0.0,
                    s => number(s).ok_or_else(bad)?,
                },
                match end {
                    "" => f64::INFINITY,
                    e => number(e).ok_or_else(bad)?,
                },
            ),
        };
        if start > end {
            return Err(format!("{text:?}: the start is above the end"));
        }
        Ok(Range { start, end, inside })
    }
}

/// The range as the guidelines write it (in perfdata).
impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inside {
            f.write_str("@")?;
        }
        match (self.start, self.end) {
            (s, e) if s == 0.0 && e.is_finite() => write!(f, "{e}"),
            (s, e) if s == f64::NEG_INFINITY && e.is_finite() => write!(f, "~:{e}"),
            (s, e) if s == f64::NEG_INFINITY => write!(f, "~:{e}"),
            (s, e) if e == f64::INFINITY => write!(f, "{s}:"),
            (s, e) => write!(f, "{s}:{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alerts(range: &str, value: f64) -> bool {
        range.parse::<Range>().unwrap().alerts(value)
    }

    #[test]
    fn ranges_alert_as_the_plugin_guidelines_say() {
        // The guidelines' own table.
        assert!(!alerts("10", 0.0) && !alerts("10", 10.0));
        assert!(alerts("10", -1.0) && alerts("10", 10.5));
        assert!(!alerts("10:", 10.0) && alerts("10:", 9.9) && !alerts("10:", 1e9));
        assert!(!alerts("~:10", -1e9) && alerts("~:10", 10.1));
        assert!(!alerts("10:20", 15.0) && alerts("10:20", 9.0) && alerts("10:20", 21.0));
        assert!(alerts("@10:20", 10.0) && alerts("@10:20", 20.0) && !alerts("@10:20", 21.0));
        assert!(!alerts("@10:20", 9.99));
    }

    #[test]
    fn bad_ranges_are_refused_and_good_ones_written_back() {
        for bad in ["", "x", "10:5", "@", "1:2:3", "~", "inf", "NaN:"] {
            assert!(bad.parse::<Range>().is_err(), "{bad:?}");
        }
        for good in ["10", "10:", "~:10", "10:20", "@10:20", "0.5", "-5:5"] {
            assert_eq!(good.parse::<Range>().unwrap().to_string(), good);
        }
        assert_eq!(
            "100"
                .parse::<Range>()
                .unwrap()
                .scaled(125_000.0)
                .to_string(),
            "12500000"
        );
    }
}
