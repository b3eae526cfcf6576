//! Classifies WebDriver errors (fantoccini's `CmdError`, and chromedriver's free-text "unknown
//! error" messages) into failure classes. Here, with the other classification, so the browser
//! layer that meets these errors and the tasks that run over it share one mapping.

use super::{FailureClass, OpError};
use fantoccini::error::{CmdError, ErrorStatus};

/// Maps a WebDriver error to a failure class.
pub fn classify_cmd_error(e: CmdError) -> OpError {
    let class = match &e {
        CmdError::Standard(wd) => match wd.error {
            ErrorStatus::ScriptTimeout | ErrorStatus::Timeout => FailureClass::Timeout,
            ErrorStatus::JavascriptError => FailureClass::ScriptError,
            ErrorStatus::InvalidSessionId | ErrorStatus::NoSuchWindow | ErrorStatus::SessionNotCreated => FailureClass::Crash,
            _ => classify_message(&wd.message),
        },
        CmdError::Failed(_) | CmdError::FailedC(_) | CmdError::Lost(_) => FailureClass::ConnectionFailure,
        CmdError::NotJson(_) | CmdError::Json(_) | CmdError::NotW3C(_) => FailureClass::Crash,
        _ => FailureClass::ScriptError,
    };
    OpError::new(class, crate::fmt::ellipsize(&e.to_string(), 500))
}

/// Classifies chromedriver's free-text "unknown error" messages.
fn classify_message(m: &str) -> FailureClass {
    let m = m.to_ascii_lowercase();
    if m.contains("out of memory") || m.contains("oom") {
        FailureClass::ResourceExhaustion
    } else if m.contains("tab crashed")
        || m.contains("not reachable")
        || m.contains("disconnected")
        || m.contains("target window already closed")
        || m.contains("no such session")
        || m.contains("session deleted")
        || m.contains("target closed")
    {
        FailureClass::Crash
    } else if m.contains("timeout") || m.contains("timed out") {
        FailureClass::Timeout
    } else {
        FailureClass::ScriptError
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_driver_messages() {
        assert_eq!(classify_message("unknown error: session deleted because of page crash\nfrom tab crashed"), FailureClass::Crash);
        assert_eq!(classify_message("chrome not reachable"), FailureClass::Crash);
        assert_eq!(classify_message("something odd"), FailureClass::ScriptError);
    }
}
