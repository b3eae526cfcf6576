//! The one error type of the commands, and the one place that prints it and maps it to an exit
//! code (ripgrep's `main.rs`, nextest's `errors.rs`): a command returns `Err(CliError)` instead
//! of printing and picking a code at each early return.

use crate::config::ConfigError;
use std::fmt;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the campaign failed, halted or was stopped; a check failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage or config.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: interrupted by Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

/// What kind of failure: decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad usage, config or input (an unknown id): nothing was started. Exit 2.
    Usage,
    /// Something that should have worked did not. Exit 1.
    Failed,
}

/// An error a command ends with: one line for people, and what to do about it when there is
/// something to say.
#[derive(Debug)]
pub struct CliError {
    /// Exit code class.
    pub kind: ErrorKind,
    /// What went wrong, one line.
    pub message: String,
    /// What to do, one line.
    pub hint: Option<String>,
}

impl CliError {
    /// Bad usage or input (exit 2).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError { kind: ErrorKind::Usage, message: message.into(), hint: None }
    }

    /// A failure (exit 1).
    pub fn failed(message: impl Into<String>) -> CliError {
        CliError { kind: ErrorKind::Failed, message: message.into(), hint: None }
    }

    /// Adds what to do.
    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::Usage => EXIT_USAGE,
            ErrorKind::Failed => EXIT_FAILED,
        }
    }

    /// Prints the error to stderr (one line, plus the hint) and returns its exit code.
    pub fn report(&self) -> u8 {
        crate::fmt::warn(&format!("stressctl: {}", self.message));
        if let Some(h) = &self.hint {
            crate::fmt::warn(&format!("stressctl: {h}"));
        }
        self.exit_code()
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> CliError {
        CliError::usage(e.to_string())
    }
}
