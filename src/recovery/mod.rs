//! Failure classification, the recovery ladder and retry with backoff.
mod class;
mod ladder;
mod webdriver;

pub use class::{FailureClass, OpError, PageConsole};
pub use ladder::{backoff, start_level, AttemptOutcome, Ladder, Step, Strategy};
pub use webdriver::classify_cmd_error;
