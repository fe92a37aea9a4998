//! What a device can afford, and the one parser for the sizes and counts that say it.
//!
//! A budget is written the way datasheets give it: `flash=512KiB,ram=96KiB,macs=20M`.
//! Sizes take binary units (`K`/`KiB` = 1024, `M`/`MiB`, `G`/`GiB`) or decimal ones
//! (`kB`/`KB` = 1000, `MB`, `GB`); counts take decimal suffixes (`k`, `M`, `G`). Units are
//! case-insensitive but for the `K`/`KB` distinction above; a bare number is bytes (or a
//! plain count).

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// Limits a compressed model must stay within (`None`: no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// Bytes of the stored model(s): what is flashed.
    pub flash: Option<u64>,
    /// Multiply-accumulates per unit of work (per second of audio for a streaming model).
    pub macs: Option<u64>,
    /// Arena bytes.
    pub ram: Option<u64>,
}

/// One measured candidate against a [`Budget`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Bytes of the stored model(s).
    pub flash: u64,
    /// Multiply-accumulates per unit of work.
    pub macs: u64,
    /// Arena bytes.
    pub ram: u64,
}

impl Budget {
    /// Whether `cost` is within every limit.
    pub fn fits(&self, cost: &Cost) -> bool {
        self.overshoot(cost) <= 1.0
    }

    /// The largest ratio of cost to limit over the limits given (0 with no limits): below
    /// or at 1 it fits; among candidates that do not, the smallest is the nearest miss.
    pub fn overshoot(&self, cost: &Cost) -> f64 {
        [
            (self.flash, cost.flash),
            (self.macs, cost.macs),
            (self.ram, cost.ram),
        ]
        .iter()
        .filter_map(|&(limit, got)| limit.map(|l| got as f64 / l.max(1) as f64))
        .fold(0.0, f64::max)
    }
}

fn bad(text: &str, reason: impl fmt::Display) -> Error {
    Error::Unsupported(format!("budget {text:?}: {reason}"))
}

impl FromStr for Budget {
    type Err = Error;

    /// `flash=SIZE[,macs=N][,ram=SIZE]`, keys in any order, at least one.
    fn from_str(text: &str) -> Result<Budget> {
        let mut b = Budget::default();
        for part in text.split(',').map(str::trim) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad(text, format!("{part:?} is not KEY=VALUE")))?;
            let (slot, value) = match key.trim() {
                "flash" => (&mut b.flash, parse_size(value)),
                "ram" => (&mut b.ram, parse_size(value)),
                "macs" => (&mut b.macs, parse_count(value)),
                other => {
                    return Err(bad(
                        text,
                        format!("unknown key {other:?} (flash, macs, ram)"),
                    ))
                }
            };
            let value = value.map_err(|e| bad(text, format!("{key}: {e}")))?;
            if slot.replace(value).is_some() {
                return Err(bad(text, format!("{key} is given twice")));
            }
        }
        Ok(b)
    }
}

/// Splits `12.5MiB` into `12.5` and `MiB`.
fn number_and_unit(text: &str) -> std::result::Result<(f64, &str), String> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    Ok((value, unit.trim()))
}

fn scaled(value: f64, scale: f64, text: &str) -> std::result::Result<u64, String> {
    let v = (value * scale).round();
    if v.is_finite() && v < u64::MAX as f64 {
        Ok(v as u64)
    } else {
        Err(format!("{text:?} is too large"))
    }
}

/// Bytes from `1536`, `1.5KiB`, `1.5K`, `2MB`, ... (see the module docs for the units).
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let (value, unit) = number_and_unit(text)?;
    let scale = match unit {
        "KB" | "kB" | "kb" => 1e3,
        _ => match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kib" => 1024.0,
            "m" | "mib" => 1024.0 * 1024.0,
            "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
            "mb" => 1e6,
            "gb" => 1e9,
            _ => {
                return Err(format!(
                    "{text:?}: unknown unit {unit:?} (B, KiB, MiB, GiB, kB, MB, GB)"
                ))
            }
        },
    };
    scaled(value, scale, text)
}

/// A count from `20000`, `20k`, `1.5M`, `2G` (decimal suffixes).
pub fn parse_count(text: &str) -> std::result::Result<u64, String> {
    let (value, unit) = number_and_unit(text)?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        _ => return Err(format!("{text:?}: unknown suffix {unit:?} (k, M, G)")),
    };
    scaled(value, scale, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts_parse_with_their_units() {
        assert_eq!(parse_size("1536"), Ok(1536));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("1.5 k"), Ok(1536));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size("64kB"), Ok(64_000));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_count("20M"), Ok(20_000_000));
        assert_eq!(parse_count("1.5k"), Ok(1500));
        assert!(parse_size("12 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_size("KiB")
            .unwrap_err()
            .contains("does not start with a number"));
        assert!(parse_count("3KiB").unwrap_err().contains("unknown suffix"));
    }

    #[test]
    fn budgets_parse_fit_and_rank_misses() {
        let b: Budget = "flash=1KiB, macs=2k".parse().unwrap();
        assert_eq!(
            b,
            Budget {
                flash: Some(1024),
                macs: Some(2000),
                ram: None
            }
        );
        let cost = |flash, macs| Cost {
            flash,
            macs,
            ram: u64::MAX,
        };
        assert!(
            b.fits(&cost(1024, 2000)),
            "limits are inclusive; ram is unlimited"
        );
        assert!(!b.fits(&cost(1025, 10)));
        assert_eq!(b.overshoot(&cost(2048, 3000)), 2.0);
        for (text, want) in [
            ("flash=1KiB,flash=2KiB", "flash is given twice"),
            ("disk=1KiB", "unknown key \"disk\""),
            ("flash", "is not KEY=VALUE"),
            ("ram=lots", "ram: \"lots\" does not start"),
        ] {
            let err = text.parse::<Budget>().unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
