//! Circuit breakers (placeholder config until the state machine lands).
use std::time::Duration;

/// Breaker settings of one scope.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BreakerConfig {
    /// Consecutive failures that open.
    pub failure_threshold: u32,
    /// Failure % over the window that opens.
    pub failure_rate_threshold: f64,
    /// Calls in the sliding window.
    pub window_size: u32,
    /// Calls before the rate rule applies.
    pub minimum_calls: u32,
    /// First open duration.
    pub recovery_timeout: Duration,
    /// Growth per consecutive open.
    pub backoff_factor: f64,
    /// Cap of the open duration.
    pub max_recovery_timeout: Duration,
    /// Concurrent half-open probes.
    pub half_open_max_calls: u32,
    /// Successes that close.
    pub success_threshold: u32,
}
impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 3,
            failure_rate_threshold: 50.0,
            window_size: 20,
            minimum_calls: 10,
            recovery_timeout: Duration::from_secs(10),
            backoff_factor: 2.0,
            max_recovery_timeout: Duration::from_secs(300),
            half_open_max_calls: 1,
            success_threshold: 2,
        }
    }
}
impl BreakerConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}
