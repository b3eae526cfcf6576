//! Failure classification, the recovery ladder and retry with backoff.
mod class;

pub use class::{FailureClass, OpError};
