//! The checker every part of config validation reports through: the primitive range checks
//! (percent, fraction, duration, integer) and errors that name the layer a key came from. Its own
//! file, below the validators of the whole config ([`super::validate`]), of faults and of model
//! tasks, so each of them imports it and none imports another.

use super::layer::Origin;
use super::ConfigError;
use crate::fmt::fmt_duration;
use std::fmt;
use std::time::Duration;

/// Checks values and builds the typed [`Config`].
pub(super) struct Validator<'a> {
    /// Which layer (file, flag, default) wrote each key, so an error names it.
    origin: Origin<'a>,
}

impl<'a> Validator<'a> {
    pub fn new(origin: Origin<'a>) -> Validator<'a> {
        Validator { origin }
    }

    /// For a config read from one source only.
    pub fn single(name: &'a str) -> Validator<'a> {
        Validator { origin: Origin::single(name) }
    }

    /// An error about `key`, named after the layer that wrote it.
    pub fn err(&self, key: impl Into<String>, value: impl fmt::Display, allowed: impl Into<String>) -> ConfigError {
        let key = key.into();
        let source_name = self.origin.of(&key).to_string();
        ConfigError::Invalid { source_name, key, value: value.to_string(), allowed: allowed.into() }
    }

    /// An error about `key` that several keys decide: named after the top layer when it wrote
    /// any of `from`.
    pub fn err_from(&self, from: &[&str], key: &str, value: impl fmt::Display, allowed: impl Into<String>) -> ConfigError {
        let source_name = self.origin.of_any(from).to_string();
        ConfigError::Invalid { source_name, key: key.to_string(), value: value.to_string(), allowed: allowed.into() }
    }

    pub fn percent(&self, key: &str, v: f64) -> Result<f64, ConfigError> {
        if !(1.0..=100.0).contains(&v) || !v.is_finite() {
            return Err(self.err(key, v, "must be a percentage from 1 to 100"));
        }
        Ok(v)
    }

    pub fn fraction(&self, key: &str, v: f64) -> Result<f64, ConfigError> {
        if !(0.0..=1.0).contains(&v) || !v.is_finite() {
            return Err(self.err(key, v, "must be a fraction from 0.0 to 1.0"));
        }
        Ok(v)
    }

    /// A finite number of at least 0 (a growth limit: negative or NaN makes no sense).
    pub fn non_negative(&self, key: &str, v: f64) -> Result<f64, ConfigError> {
        if !v.is_finite() || v < 0.0 {
            return Err(self.err(key, v, "must be a number of at least 0"));
        }
        Ok(v)
    }

    pub fn dur(&self, key: &str, d: Duration, min: Duration, max: Duration) -> Result<Duration, ConfigError> {
        if d < min || d > max {
            return Err(self.err(
                key,
                format!("\"{}\"", fmt_duration(d)),
                format!("must be from {} to {}", fmt_duration(min), fmt_duration(max)),
            ));
        }
        Ok(d)
    }

    pub fn int<T: Copy + PartialOrd + fmt::Display>(&self, key: &str, v: T, min: T, max: T) -> Result<T, ConfigError> {
        if v < min || v > max {
            return Err(self.err(key, v, format!("must be from {min} to {max}")));
        }
        Ok(v)
    }
}
