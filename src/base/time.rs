//! One type for every clock reading: seconds since the Unix epoch, from the platform's clock
//! (workerd's `Date.now()`), handed to every validator and cache.

use serde::{Deserialize, Serialize};

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(u64);

impl UnixTime {
    pub const EPOCH: Self = Self(0);
    /// Later than any real time: for cache entries that expire only by eviction.
    pub const NEVER: Self = Self(u64::MAX);

    pub const fn from_secs(secs: u64) -> Self {
        Self(secs)
    }

    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// For comparisons with JWT NumericDates, which are signed.
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// A NumericDate as a time; negative ones are the epoch.
    pub fn from_i64(secs: i64) -> Self {
        Self(u64::try_from(secs).unwrap_or(0))
    }

    pub const fn plus(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    pub const fn minus(self, secs: u64) -> Self {
        Self(self.0.saturating_sub(secs))
    }

    /// Seconds from `earlier` to `self`, zero when `earlier` is later.
    pub const fn since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// `90`, `90s`, `15m`, `8h`, `1d`: seconds.
pub fn parse_duration(v: &str) -> Option<u64> {
    let v = v.trim();
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    n.checked_mul(mult)
}

impl std::fmt::Display for UnixTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_serializes_as_seconds() {
        let t = UnixTime::from_secs(100);
        assert_eq!(t.plus(u64::MAX), UnixTime::NEVER);
        assert_eq!(t.minus(200), UnixTime::EPOCH);
        assert_eq!(t.plus(20).since(t), 20);
        assert_eq!(t.since(t.plus(20)), 0);
        assert_eq!(UnixTime::from_i64(-5), UnixTime::EPOCH);
        assert_eq!(UnixTime::NEVER.as_i64(), i64::MAX);
        assert_eq!(serde_json::to_string(&t).unwrap(), "100");
    }
}
