//! Commands that talk to a running campaign over its control socket: `status`, `emergency-stop`,
//! `breaker list|open|close|reset|disable`.

use super::{CliError, EXIT_OK};
use crate::breaker::ManualCommand;
use crate::cli::{BreakerCommand, CommonArgs, StatusArgs, StopArgs};
use crate::control::breakers::{render, BreakerDone, BreakerRefusal, BreakerRow};
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

/// `stressctl breaker ...`.
pub(super) fn breaker(common: &CommonArgs, cmd: &BreakerCommand) -> Result<u8, CliError> {
    let (action, args) = match cmd {
        BreakerCommand::List(a) => return breaker_list(common, a.json),
        BreakerCommand::Open(a) => (ManualCommand::Open, a),
        BreakerCommand::Close(a) => (ManualCommand::Close, a),
        BreakerCommand::Reset(a) => (ManualCommand::Reset, a),
        BreakerCommand::Disable(a) => (ManualCommand::Disable, a),
    };
    let l = running(common)?;
    let req = json!({"cmd": "breaker", "action": action, "scopes": args.scopes, "reason": args.reason.clone().unwrap_or_default()});
    let answer = ask(&l, &req)?;
    if answer.get("ok").and_then(serde_json::Value::as_bool) != Some(true) {
        if let Some(refusal) = answer.get("refusal").and_then(|r| serde_json::from_value::<BreakerRefusal>(r.clone()).ok()) {
            return Err(CliError::usage(refusal.to_string()).hint("`stressctl breaker list` shows the breakers and their states"));
        }
        let e = answer.get("error").and_then(serde_json::Value::as_str).unwrap_or("no reason given");
        return Err(CliError::failed(format!("campaign {} refused the breaker command: {e}", l.campaign_id)));
    }
    let done: BreakerDone = serde_json::from_value(answer.get("done").cloned().unwrap_or_default()).map_err(|e| {
        CliError::failed(format!("campaign {} answered a breaker command this stressctl does not understand: {e}", l.campaign_id))
    })?;
    for t in &done.transitions {
        say(&format!("stressctl: breaker {}: {} -> {}", t.key, t.from, t.to));
    }
    let changed: std::collections::HashSet<&str> = done.transitions.iter().map(|t| t.key.as_str()).collect();
    for k in done.keys.iter().filter(|k| !changed.contains(k.as_str())) {
        say(&format!("stressctl: breaker {k}: {action} (state unchanged)"));
    }
    Ok(EXIT_OK)
}

/// `stressctl breaker list`.
fn breaker_list(common: &CommonArgs, as_json: bool) -> Result<u8, CliError> {
    let l = running(common)?;
    let answer = ask(&l, &json!({"cmd": "breakers"}))?;
    let rows: Vec<BreakerRow> = serde_json::from_value(answer.get("breakers").cloned().unwrap_or_default()).map_err(|e| {
        CliError::failed(format!("campaign {} answered a breaker list this stressctl does not understand: {e}", l.campaign_id))
    })?;
    if as_json {
        say(&serde_json::to_string(&rows).unwrap_or_default());
    } else {
        print!("{}", render(&rows));
    }
    Ok(EXIT_OK)
}

/// One request to the running campaign.
fn ask(l: &lock::LockInfo, req: &serde_json::Value) -> Result<serde_json::Value, CliError> {
    socket::request(&l.socket, req, Duration::from_secs(5))
        .map_err(|e| CliError::failed(format!("campaign {} (pid {}) does not answer on {}: {e}", l.campaign_id, l.pid, l.socket.display())))
}
