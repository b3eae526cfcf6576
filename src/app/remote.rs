//! Commands that talk to a running campaign over its control socket: `status`, `emergency-stop`.

use super::{CliError, EXIT_OK};
use crate::cli::{CommonArgs, StatusArgs, StopArgs};
use crate::control::lock;
use crate::control::socket;
use crate::control::status::StatusDoc;
use crate::fmt::say;
use serde_json::json;
use std::time::{Duration, Instant};

/// The running campaign's lock, or an error saying nothing runs.
fn running(common: &CommonArgs) -> Result<lock::LockInfo, CliError> {
    match lock::read(&common.state_dir) {
        Some(l) if l.holder_alive() => Ok(l),
        Some(l) => Err(CliError::failed(format!(
            "no campaign is running (a stale lock of campaign {} from pid {} is left in {}; the next launch clears it)",
            l.campaign_id,
            l.pid,
            common.state_dir.display()
        ))),
        None => Err(CliError::failed(format!("no campaign is running (no lock in {})", common.state_dir.display()))),
    }
}

/// `stressctl emergency-stop`.
pub(super) fn emergency_stop(common: &CommonArgs, a: &StopArgs) -> Result<u8, CliError> {
    let l = running(common)?;
    let reason =
        a.reason.clone().unwrap_or_else(|| if a.force { "forced by an operator".into() } else { "requested by an operator".into() });
    let t0 = Instant::now();
    socket::request(&l.socket, &json!({"cmd": "stop", "force": a.force, "reason": reason}), Duration::from_secs(5))
        .map_err(|e| CliError::failed(format!("cannot reach campaign {} on {}: {e}", l.campaign_id, l.socket.display())))?;
    say(&format!(
        "stressctl: {} stop sent to campaign {} (pid {}); waiting for it to exit",
        if a.force { "forced" } else { "graceful" },
        l.campaign_id,
        l.pid
    ));
    while t0.elapsed() < a.timeout {
        if !l.holder_alive() || crate::browser::process::is_zombie(l.pid) {
            say(&format!("stressctl: campaign {} stopped after {:.1}s", l.campaign_id, t0.elapsed().as_secs_f64()));
            return Ok(EXIT_OK);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(CliError::failed(format!(
        "campaign {} is still running after {} (pid {})",
        l.campaign_id,
        humantime::format_duration(a.timeout),
        l.pid
    ))
    .hint("try `stressctl emergency-stop --force`"))
}

/// `stressctl status`.
pub(super) fn status(common: &CommonArgs, a: &StatusArgs) -> Result<u8, CliError> {
    let l = running(common)?;
    let answer = socket::request(&l.socket, &json!({"cmd": "status"}), Duration::from_secs(5)).map_err(|e| {
        CliError::failed(format!("campaign {} (pid {}) does not answer on {}: {e}", l.campaign_id, l.pid, l.socket.display()))
    })?;
    let st = answer.get("status").cloned().unwrap_or_default();
    if a.json {
        say(&st.to_string());
        return Ok(EXIT_OK);
    }
    let doc: StatusDoc = serde_json::from_value(st)
        .map_err(|e| CliError::failed(format!("campaign {} answered a status this stressctl does not understand: {e}", l.campaign_id)))?;
    print!("{}", doc.render());
    Ok(EXIT_OK)
}
