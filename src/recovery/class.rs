//! Failure classes: what went wrong with an op, which decides how to recover.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of failure an op met. Decides the first rung of the recovery ladder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The browser or driver could not be started (session not created, driver binary missing).
    LaunchFailure,
    /// The WebDriver endpoint is unreachable (connection refused/reset).
    ConnectionFailure,
    /// The op did not finish within its timeout.
    Timeout,
    /// The session or browser is gone (killed, crashed, tab crashed).
    Crash,
    /// Out of memory or a resource limit.
    ResourceExhaustion,
    /// GPU adapter/device lost, validation error, wrong result.
    GpuError,
    /// The API is missing (e.g. WebNN). Reported, never retried.
    ApiUnsupported,
    /// The page's script threw or returned garbage.
    ScriptError,
    /// The computation ran but its output is outside the tolerance of its reference (the
    /// `model` task: an inference against the wasm provider's).
    WrongResult,
}

impl FailureClass {
    /// All classes, in report order.
    pub const ALL: [FailureClass; 9] = [
        FailureClass::LaunchFailure,
        FailureClass::ConnectionFailure,
        FailureClass::Timeout,
        FailureClass::Crash,
        FailureClass::ResourceExhaustion,
        FailureClass::GpuError,
        FailureClass::ApiUnsupported,
        FailureClass::ScriptError,
        FailureClass::WrongResult,
    ];

    /// snake_case name used in reports and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::LaunchFailure => "launch_failure",
            FailureClass::ConnectionFailure => "connection_failure",
            FailureClass::Timeout => "timeout",
            FailureClass::Crash => "crash",
            FailureClass::ResourceExhaustion => "resource_exhaustion",
            FailureClass::GpuError => "gpu_error",
            FailureClass::ApiUnsupported => "api_unsupported",
            FailureClass::ScriptError => "script_error",
            FailureClass::WrongResult => "wrong_result",
        }
    }

    /// Parses [`FailureClass::as_str`] output.
    pub fn parse(s: &str) -> Option<FailureClass> {
        FailureClass::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed op: its class and a message for humans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpError {
    /// The class.
    pub class: FailureClass,
    /// What happened.
    pub message: String,
    /// What the browser's console said during the op: often the real cause (a WebGPU validation
    /// error behind a wrong result), so it travels with the failure to its event.
    pub console: PageConsole,
}

impl OpError {
    /// Builds an error.
    pub fn new(class: FailureClass, message: impl Into<String>) -> OpError {
        OpError { class, message: message.into(), console: PageConsole::default() }
    }
}

/// Browser console entries counted against one op (errors, uncaught exceptions, unhandled
/// rejections, WebGPU errors and device losses), as the page's console listener answered them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PageConsole {
    /// How many.
    pub count: u64,
    /// The first few of them, `source: text`, cut short.
    pub entries: Vec<String>,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

impl std::error::Error for OpError {}
