//! Failure classification, the recovery ladder, what each of its rungs does, and retry with
//! backoff.
mod action;
mod class;
mod ladder;
mod webdriver;

pub use action::{action, browser_failure, Action, Facts};
pub use class::{FailureClass, OpError, PageConsole};
pub use ladder::{backoff, start_level, AttemptOutcome, Ladder, Step, Strategy};
pub use webdriver::classify_cmd_error;
