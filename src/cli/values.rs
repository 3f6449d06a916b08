//! Option values with units and ranges: sizes (`4MiB`), times (`30s`, `5m`), counts. Each
//! option names its [`Bounds`]; a value outside them is refused with the bound in the
//! message (clap prints it and exits with status 2), so nothing later overflows or panics.

use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};

use crate::named::Named;

/// The accepted range of an option's value.
#[derive(Debug, Clone, Copy)]
pub struct Bounds<T> {
    pub min: T,
    pub max: T,
}

const DAY: u64 = 86_400;

/// `-c`: 0 packets would read nothing.
pub const COUNT: Bounds<u64> = Bounds {
    min: 1,
    max: u64::MAX,
};
/// `--rows`: the table keeps this many records in memory.
pub const ROWS: Bounds<u64> = Bounds {
    min: 1,
    max: 1_000_000,
};
/// `--threads`: at least the one that reads.
pub const THREADS: Bounds<u64> = Bounds { min: 1, max: 256 };
/// `--duration`: a moment the clock can represent.
pub const DURATION: Bounds<Duration> = Bounds {
    min: Duration::from_millis(1),
    max: Duration::from_secs(365 * DAY),
};
/// `--idle-timeout`: 0 would evict every connection between two packets.
pub const IDLE: Bounds<Duration> = Bounds {
    min: Duration::from_secs(1),
    max: Duration::from_secs(365 * DAY),
};
/// `--rotate`: a new Parquet file at most every second.
pub const ROTATE: Bounds<Duration> = Bounds {
    min: Duration::from_secs(1),
    max: Duration::from_secs(365 * DAY),
};
/// `--timeout-tolerance`, `--race-window`.
pub const TOLERANCE: Bounds<Duration> = Bounds {
    min: Duration::ZERO,
    max: Duration::from_secs(3600),
};
/// `--reassembly-limit`: below a few segments every reordering would become a gap.
pub const REASSEMBLY: Bounds<usize> = Bounds {
    min: 16 << 10,
    max: 1 << 30,
};
/// `--max-memory`: below this not even one connection with its buffers fits.
pub const MEMORY: Bounds<usize> = Bounds {
    min: 8 << 20,
    max: 1 << 40,
};
/// `-s`: below 68 bytes not even the TCP header of an IPv4 packet is kept; libpcap's
/// largest snapshot length is 262144.
const SNAPLEN: Bounds<usize> = Bounds {
    min: 68,
    max: 262_144,
};

impl Bounds<u64> {
    pub fn parse_integer(&self, text: &str) -> Result<u64, String> {
        let value: u64 = text
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| format!("not a whole number (from {} to {})", self.min, self.max))?;
        self.check(value, self.min.to_string(), self.max.to_string())
    }
}

impl Bounds<usize> {
    pub fn parse_size(&self, text: &str) -> Result<usize, String> {
        let value = parse_size(text)?;
        self.check(value, format_size(self.min), format_size(self.max))
    }
}

impl Bounds<Duration> {
    pub fn parse_duration(&self, text: &str) -> Result<Duration, String> {
        let seconds = parse_seconds(text)?;
        let (min, max) = (self.min.as_secs_f64(), self.max.as_secs_f64());
        if seconds < min || seconds > max {
            return Err(out_of_range(
                &format_seconds(min),
                &format_seconds(max),
                seconds > max,
            ));
        }
        Duration::try_from_secs_f64(seconds).map_err(|err| err.to_string())
    }
}

impl<T: PartialOrd + Copy> Bounds<T> {
    fn check(&self, value: T, min: String, max: String) -> Result<T, String> {
        if value < self.min || value > self.max {
            return Err(out_of_range(&min, &max, value > self.max));
        }
        Ok(value)
    }
}

fn out_of_range(min: &str, max: &str, too_large: bool) -> String {
    if too_large {
        format!("too large: at most {max} (from {min} to {max})")
    } else {
        format!("too small: at least {min} (from {min} to {max})")
    }
}

/// `-s`: 0 means the largest, as in tcpdump.
pub fn snaplen(text: &str) -> Result<i32, String> {
    let value = parse_size(text)?;
    if value == 0 {
        return Ok(SNAPLEN.max as i32);
    }
    let value = SNAPLEN.check(value, SNAPLEN.min.to_string(), SNAPLEN.max.to_string())?;
    Ok(value as i32)
}

/// Parses a byte size: `1048576`, `64KiB`, `512MiB`, `2G` (powers of 1024; `KB` is 1024 too).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .replace('_', "")
        .parse()
        .map_err(|_| format!("bad size '{text}' (examples: 4MiB, 512MiB, 2G)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("bad size unit in '{text}' (B, KiB, MiB, GiB, TiB)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size '{text}' is too large"))
}

/// A size in the largest unit that divides it: `4MiB`, `16KiB`, `1000B`.
fn format_size(bytes: usize) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

/// Parses `30s`, `100ms`, `5m`, `2h`, `1d` or plain seconds (`0.1`), to seconds.
fn parse_seconds(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("bad time '{text}' (examples: 0.5s, 30s, 5m, 1h)"))?;
    let scale = match unit {
        "ms" => 0.001,
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => DAY as f64,
        _ => return Err(format!("bad time unit in '{text}' (ms, s, m, h, d)")),
    };
    let seconds = value * scale;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("bad time '{text}' (examples: 0.5s, 30s, 5m, 1h)"));
    }
    Ok(seconds)
}

/// Parses a time within the widest bounds any option allows.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    Bounds {
        min: Duration::ZERO,
        max: DURATION.max,
    }
    .parse_duration(text)
}

/// `30s`, `1h`, `365d`, `0.1s`.
fn format_seconds(seconds: f64) -> String {
    let whole = seconds.round() as u64;
    if (seconds - whole as f64).abs() > 1e-9 || whole == 0 {
        return format!("{seconds}s");
    }
    for (unit, name) in [(DAY, "d"), (3600, "h"), (60, "m")] {
        if whole.is_multiple_of(unit) {
            return format!("{}{name}", whole / unit);
        }
    }
    format!("{whole}s")
}

/// A value parser for an enum whose names come from `named_enum!`: the names are the
/// possible values clap lists in `--help`, the man page and the completions.
pub fn named<E: Named + Send + Sync>() -> impl TypedValueParser<Value = E> {
    PossibleValuesParser::new(E::ALL.iter().map(|value| value.as_str())).map(|name| {
        E::ALL
            .iter()
            .copied()
            .find(|value| value.as_str() == name)
            .unwrap_or(E::ALL[0])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units_and_respect_bounds() {
        assert_eq!(REASSEMBLY.parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(REASSEMBLY.parse_size("4194304"), Ok(4 << 20));
        assert_eq!(MEMORY.parse_size("2G"), Ok(2 << 30));
        assert!(
            MEMORY
                .parse_size("1K")
                .unwrap_err()
                .contains("at least 8MiB")
        );
        assert!(MEMORY.parse_size("99999999999T").is_err());
        assert!(
            REASSEMBLY
                .parse_size("2GiB")
                .unwrap_err()
                .contains("at most 1GiB")
        );
    }

    #[test]
    fn times_take_units_and_respect_bounds() {
        assert_eq!(IDLE.parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(IDLE.parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(
            TOLERANCE.parse_duration("100ms"),
            Ok(Duration::from_millis(100))
        );
        assert!(
            IDLE.parse_duration("0")
                .unwrap_err()
                .contains("at least 1s")
        );
        for huge in ["100000000000000000000", "1e300", "inf", "NaN", "-1"] {
            assert!(DURATION.parse_duration(huge).is_err(), "{huge}");
        }
        assert!(
            DURATION
                .parse_duration("366d")
                .unwrap_err()
                .contains("365d")
        );
    }

    #[test]
    fn counts_and_snaplen() {
        assert!(COUNT.parse_integer("0").unwrap_err().contains("at least 1"));
        assert_eq!(COUNT.parse_integer("100_000"), Ok(100_000));
        assert!(COUNT.parse_integer("-3").is_err());
        assert_eq!(snaplen("0"), Ok(262_144));
        assert_eq!(snaplen("1500"), Ok(1500));
        assert!(snaplen("10").is_err());
        assert!(snaplen("1MiB").is_err());
    }
}
