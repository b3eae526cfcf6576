//! Human-readable durations in config files ("30m", "2s", "1h 30m").

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

/// A `std::time::Duration` written in config as a humantime string such as `"30m"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string like \"250ms\", \"30s\", \"15m\" or \"2h\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<HumanDuration, E> {
                humantime::parse_duration(s.trim())
                    .map(HumanDuration)
                    .map_err(|e| E::custom(format!("invalid duration {s:?}: {e} (write e.g. \"30s\", \"15m\", \"2h\")")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                Err(E::custom(format!("durations are strings with a unit: write \"{v}s\" (or \"{v}ms\", \"{v}m\")")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<HumanDuration, E> {
                Err(E::custom(format!("durations are strings with a unit: write \"{v}s\"")))
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// `#[serde(with = "human")]` for a `Duration` field: read and written as a humantime string
/// (`"30s"`), so a printed config reads like a written one and parses back to the same value.
pub(crate) mod human {
    use super::HumanDuration;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes `d` exactly (down to nanoseconds), e.g. `"1h 30m"`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    /// Reads a humantime string; a bare number is an error that says how to write it.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        HumanDuration::deserialize(d).map(|h| h.0)
    }
}

/// `#[serde(with = "human_opt")]` for an optional `Duration` field (absent when `None`; pair it
/// with `default` and `skip_serializing_if = "Option::is_none"`).
pub(crate) mod human_opt {
    use super::HumanDuration;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes the duration like [`super::human`]; `None` must be skipped by the caller.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::human::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Reads a humantime string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        HumanDuration::deserialize(d).map(|h| Some(h.0))
    }
}
