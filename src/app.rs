//! The commands, as the binary runs them: each returns the process exit code.

use crate::campaign::{new_campaign_id, Campaign, Outcome, RunOptions};
use crate::cli::{Cli, Command, CommonArgs, LaunchArgs, ReportArgs, StatusArgs, StopArgs};
use crate::config::{Config, ConfigError};
use crate::control::lock::{self, RunLock};
use crate::control::socket;
use crate::control::{StopCause, StopSignal};
use crate::report;
use crate::store::{self, StoreReader};
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the campaign failed, halted or was stopped; a check failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage or config.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: interrupted by Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let code = match (&cli.command, cli.check_only) {
        (Some(Command::Check), _) | (None, true) => check(&cli.common),
        (Some(Command::Launch(a)), _) => launch(&cli.common, a),
        (Some(Command::Report(a)), _) => report_cmd(&cli.common, a),
        (Some(Command::EmergencyStop(a)), _) => emergency_stop(&cli.common, a),
        (Some(Command::Status(a)), _) => status(&cli.common, a),
        (None, false) => {
            eprintln!("stressctl: say what to do: `stressctl launch`, `stressctl --check-only`, … (see `stressctl --help`)");
            EXIT_USAGE
        }
    };
    ExitCode::from(code)
}

fn load_config(common: &CommonArgs) -> Result<Config, ConfigError> {
    Config::load(common.config.as_deref(), common.profile.as_deref())
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    // One thread: the browsers need the cores, and the orchestrator's work per op is tiny.
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// `stressctl launch`.
fn launch(common: &CommonArgs, args: &LaunchArgs) -> u8 {
    let resume = match &args.resume {
        None => None,
        Some(r) => {
            let id = if r == "latest" {
                match crate::campaign::resume::unfinished(&common.state_dir).pop() {
                    Some(id) => id,
                    None => {
                        eprintln!("stressctl: no unfinished campaign in {} to resume", common.state_dir.display());
                        return EXIT_FAILED;
                    }
                }
            } else {
                r.clone()
            };
            match crate::campaign::resume_point(&common.state_dir, &id) {
                Ok((cfg, point)) => Some((id, cfg, point)),
                Err(e) => {
                    eprintln!("stressctl: cannot resume: {e}");
                    return EXIT_FAILED;
                }
            }
        }
    };
    let mut cfg = match &resume {
        Some((_, cfg, _)) => cfg.clone(),
        None => match load_config(common) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("stressctl: {e}");
                return EXIT_USAGE;
            }
        },
    };
    if let Some(path) = &args.safety {
        if let Err(e) = cfg.apply_safety_file(path) {
            eprintln!("stressctl: {e}");
            return EXIT_USAGE;
        }
    }
    for dir in [&common.output_dir, &common.log_dir, &common.state_dir] {
        if let Err(e) = ensure_writable(dir) {
            eprintln!("stressctl: {}: {e} (choose another directory with --output-dir/--log-dir/--state-dir)", dir.display());
            return EXIT_USAGE;
        }
    }
    let id = match &resume {
        Some((id, _, _)) => id.clone(),
        None => args.campaign_id.clone().unwrap_or_else(new_campaign_id),
    };
    if args.detach {
        return detach(common, &id);
    }
    let socket_path = common.state_dir.join("control.sock");
    let run_lock = match RunLock::acquire(&common.state_dir, &id, &socket_path) {
        Ok((l, note)) => {
            if let Some(n) = note {
                println!("stressctl: {n}");
            }
            l
        }
        Err(e) => {
            eprintln!("stressctl: {e}");
            return EXIT_FAILED;
        }
    };
    // We hold the lock: any unfinished campaign in this state dir died. Reap what it left.
    for dead in crate::campaign::resume::unfinished(&common.state_dir) {
        match crate::campaign::resume::reap(&common.state_dir, &dead) {
            Ok(r) if !r.killed.is_empty() => {
                println!("stressctl: reaped {} leftover browser/driver processes of campaign {dead} (pids {:?})", r.killed.len(), r.killed)
            }
            Ok(_) => {}
            Err(e) => eprintln!("stressctl: could not check campaign {dead} for leftover processes: {e}"),
        }
    }
    let stamp = format!("{id}{}", if resume.is_some() { format!("-resumed-{}", std::process::id()) } else { String::new() });
    let logs = match crate::logging::init(&common.log_dir, &stamp, args.verbose) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("stressctl: cannot open log files in {}: {e}", common.log_dir.display());
            return EXIT_USAGE;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stressctl: cannot start the runtime: {e}");
            return EXIT_FAILED;
        }
    };
    let interactive = std::io::stdout().is_terminal();
    match &resume {
        Some((_, _, p)) => {
            println!("stressctl: resuming campaign {id} ({}) at phase {}/{}: {}", cfg.profile, p.phase + 1, cfg.phases.len(), p.note)
        }
        None => println!(
            "stressctl: campaign {id} ({}, {} phases, planned {})",
            cfg.profile,
            cfg.phases.len(),
            crate::config::fmt_duration(cfg.planned_duration())
        ),
    }
    println!("stressctl: logs {}", logs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    let opts = RunOptions {
        output_dir: common.output_dir.clone(),
        state_dir: common.state_dir.clone(),
        log_dir: common.log_dir.clone(),
        log_stamp: stamp,
        progress: interactive,
        socket: Some(socket_path),
    };
    let stop = Arc::new(StopSignal::new());
    let span = tracing::info_span!("campaign", id = %id);
    let result = rt.block_on(
        async {
            spawn_signal_handlers(stop.clone());
            Campaign::new(cfg, opts, stop.clone()).run_from(id.clone(), resume.map(|(_, _, p)| p)).await
        }
        .instrument(span),
    );
    // Nothing may outlive the run: the runtime is dropped here, after the pool's shutdown.
    drop(rt);
    drop(run_lock);
    match result {
        Ok(r) => {
            let reason = r.stop_reason.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
            println!("stressctl: campaign {} {}{reason}", r.id, r.outcome.as_str().to_uppercase());
            println!("stressctl: reports in {}/ (summary.txt, campaign_report.json)", r.report_dir.display());
            match (r.outcome, r.stop_cause) {
                (Outcome::Passed, _) => EXIT_OK,
                (_, Some(StopCause::Interrupted)) => EXIT_INTERRUPTED,
                _ => EXIT_FAILED,
            }
        }
        Err(e) => {
            eprintln!("stressctl: campaign {id} stopped because it could not be recorded: {e}");
            eprintln!("stressctl: everything committed before that is in the store; once the cause is fixed (e.g. disk space), `stressctl report {id}` rebuilds the reports");
            EXIT_FAILED
        }
    }
}

/// First Ctrl-C / SIGTERM: graceful stop. Second: kill at once.
fn spawn_signal_handlers(stop: Arc<StopSignal>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        tracing::warn!(target: "stressctl::campaign", "cannot install signal handlers");
        return;
    };
    tokio::spawn(
        async move {
            let mut seen = 0;
            loop {
                let cause = tokio::select! {
                    _ = int.recv() => StopCause::Interrupted,
                    _ = term.recv() => StopCause::Terminated,
                };
                seen += 1;
                if seen == 1 {
                    let what = if cause == StopCause::Interrupted { "SIGINT (Ctrl-C)" } else { "SIGTERM" };
                    eprintln!(
                        "\nstressctl: {what}: stopping gracefully (in-flight ops get the grace period; press Ctrl-C again to kill at once)"
                    );
                    stop.request(cause, format!("stopped by {what}"), false);
                } else {
                    eprintln!("\nstressctl: killing browsers and drivers now");
                    stop.force();
                }
            }
        }
        .in_current_span(),
    );
}

/// `launch --detach`: re-runs this launch in the background, in its own session, and returns
/// once it holds the lock.
fn detach(common: &CommonArgs, id: &str) -> u8 {
    use std::os::unix::process::CommandExt;
    if let Err(e) = ensure_writable(&common.log_dir) {
        eprintln!("stressctl: {}: {e}", common.log_dir.display());
        return EXIT_USAGE;
    }
    let out_path = common.log_dir.join(format!("daemon_{id}.log"));
    let out = match std::fs::File::create(&out_path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("stressctl: cannot create {}: {e}", out_path.display());
            return EXIT_FAILED;
        }
    };
    let Ok(err) = out.try_clone() else { return EXIT_FAILED };
    let exe = std::env::current_exe().unwrap_or_else(|_| "stressctl".into());
    let mut args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--detach").collect();
    args.push("--campaign-id".into());
    args.push(id.to_string());
    let mut cmd = std::process::Command::new(exe);
    cmd.args(&args).stdin(std::process::Stdio::null()).stdout(out).stderr(err);
    // SAFETY: setsid is async-signal-safe; the child leaves the terminal's session so a Ctrl-C in
    // this terminal does not reach it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("stressctl: cannot start the background campaign: {e}");
            return EXIT_FAILED;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            eprint!("{text}");
            eprintln!("stressctl: the background campaign exited at once ({status})");
            return status.code().map(|c| c as u8).unwrap_or(EXIT_FAILED);
        }
        if lock::read(&common.state_dir).is_some_and(|l| l.campaign_id == id) {
            println!("{id}");
            eprintln!(
                "stressctl: campaign {id} running in the background (pid {}); `stressctl status` to follow it, `stressctl emergency-stop` to stop it; output in {}",
                child.id(),
                out_path.display()
            );
            return EXIT_OK;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("stressctl: the background campaign did not start within 20 s; see {}", out_path.display());
    EXIT_FAILED
}

/// The running campaign's lock, or a message saying nothing runs.
fn running(common: &CommonArgs) -> Result<lock::LockInfo, String> {
    match lock::read(&common.state_dir) {
        Some(l) if l.holder_alive() => Ok(l),
        Some(l) => Err(format!(
            "no campaign is running (a stale lock of campaign {} from pid {} is left in {}; the next launch clears it)",
            l.campaign_id,
            l.pid,
            common.state_dir.display()
        )),
        None => Err(format!("no campaign is running (no lock in {})", common.state_dir.display())),
    }
}

/// `stressctl emergency-stop`.
fn emergency_stop(common: &CommonArgs, a: &StopArgs) -> u8 {
    let l = match running(common) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("stressctl: {e}");
            return EXIT_FAILED;
        }
    };
    let reason =
        a.reason.clone().unwrap_or_else(|| if a.force { "forced by an operator".into() } else { "requested by an operator".into() });
    let t0 = Instant::now();
    if let Err(e) = socket::request(&l.socket, &json!({"cmd": "stop", "force": a.force, "reason": reason}), Duration::from_secs(5)) {
        eprintln!("stressctl: cannot reach campaign {} on {}: {e}", l.campaign_id, l.socket.display());
        return EXIT_FAILED;
    }
    println!(
        "stressctl: {} stop sent to campaign {} (pid {}); waiting for it to exit",
        if a.force { "forced" } else { "graceful" },
        l.campaign_id,
        l.pid
    );
    while t0.elapsed() < a.timeout {
        if !l.holder_alive() || crate::browser::process::is_zombie(l.pid) {
            println!("stressctl: campaign {} stopped after {:.1}s", l.campaign_id, t0.elapsed().as_secs_f64());
            return EXIT_OK;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "stressctl: campaign {} is still running after {} (pid {}); try `stressctl emergency-stop --force`",
        l.campaign_id,
        humantime::format_duration(a.timeout),
        l.pid
    );
    EXIT_FAILED
}

/// `stressctl status`.
fn status(common: &CommonArgs, a: &StatusArgs) -> u8 {
    let l = match running(common) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("stressctl: {e}");
            return EXIT_FAILED;
        }
    };
    let answer = match socket::request(&l.socket, &json!({"cmd": "status"}), Duration::from_secs(5)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("stressctl: campaign {} (pid {}) does not answer on {}: {e}", l.campaign_id, l.pid, l.socket.display());
            return EXIT_FAILED;
        }
    };
    let st = answer.get("status").cloned().unwrap_or(Value::Null);
    if a.json {
        println!("{st}");
    } else {
        print!("{}", render_status(&st));
    }
    EXIT_OK
}

fn render_status(st: &Value) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let mut out = format!(
        "campaign {} ({})  pid {}  up {}  {}\n",
        st["campaign_id"].as_str().unwrap_or("?"),
        st["profile"].as_str().unwrap_or("?"),
        st["pid"],
        humantime::format_duration(Duration::from_secs(st["uptime_s"].as_u64().unwrap_or(0))),
        st["state"].as_str().unwrap_or("?")
    );
    if let Some(r) = st["stop_reason"].as_str() {
        out += &format!("stopping: {r}\n");
    }
    let p = &st["phase"];
    if p.is_object() {
        out += &format!(
            "phase {}/{} {}  {:.1}s of {:.0}s ({:.0}%)  {} sessions\n",
            p["index"],
            p["total"],
            p["name"].as_str().unwrap_or("?"),
            f(&p["elapsed_s"]),
            f(&p["duration_s"]),
            f(&p["progress_pct"]),
            p["sessions"]
        );
    } else {
        out += "between phases\n";
    }
    let o = &st["ops"];
    out += &format!(
        "ops {} (ok {}, failed {})  success {:.2}%  p95 {}\n",
        o["attempted"],
        o["succeeded"],
        o["failed"],
        f(&o["success_rate"]) * 100.0,
        st["p95_ms"].as_f64().map(|v| format!("{v:.1} ms")).unwrap_or_else(|| "-".into())
    );
    let r = &st["resources"];
    if r.is_object() {
        out += &format!(
            "health {}  cpu {:.1}%  memory {:.1}%  disk {:.1}%  browsers+drivers {} MiB in {} processes\n",
            st["health"],
            f(&r["cpu_percent"]),
            f(&r["memory_percent"]),
            f(&r["disk_percent"]),
            r["tree_rss_mb"],
            r["tree_processes"]
        );
    }
    out += &format!("guardian: {} samples, {} violations\n", st["guardian"]["samples"], st["guardian"]["violations"]);
    out
}

fn ensure_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".stressctl-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(&probe)
}

fn tool_version(bin: &Path) -> Result<String, String> {
    match std::process::Command::new(bin).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string()),
        Ok(o) => Err(format!("`{} --version` exited with {}", bin.display(), o.status)),
        Err(e) => Err(format!("{}: {e} (install it with scripts/setup.sh)", bin.display())),
    }
}

/// `stressctl check` / `--check-only`.
fn check(common: &CommonArgs) -> u8 {
    let cfg = match load_config(common) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("✗ config: {e}");
            return EXIT_USAGE;
        }
    };
    let mut ok = true;
    let mut line = |passed: bool, what: &str, detail: String| {
        ok &= passed;
        println!("{} {what:<22} {detail}", if passed { "✓" } else { "✗" });
    };
    line(
        true,
        "config",
        format!("{} ({} phases, planned {})", cfg.source, cfg.phases.len(), crate::config::fmt_duration(cfg.planned_duration())),
    );
    let mut browsers_ok = true;
    if cfg.needs_browser() {
        for (name, bin) in [("chromium", &cfg.browser.chromium), ("chromedriver", &cfg.browser.chromedriver)] {
            match tool_version(bin) {
                Ok(v) => line(true, name, v),
                Err(e) => {
                    browsers_ok = false;
                    line(false, name, e)
                }
            }
        }
    } else {
        line(true, "browsers", "not needed (synthetic tasks only)".into());
    }
    let mut dirs_ok = true;
    for (name, dir) in [("output dir", &common.output_dir), ("log dir", &common.log_dir), ("state dir", &common.state_dir)] {
        match ensure_writable(dir) {
            Ok(()) => line(true, name, format!("{} writable", dir.display())),
            Err(e) => {
                dirs_ok = false;
                line(false, name, format!("{}: {e}", dir.display()))
            }
        }
    }
    match lock::read(&common.state_dir) {
        Some(l) if l.holder_alive() => line(false, "no other campaign", format!("campaign {} is running (pid {})", l.campaign_id, l.pid)),
        Some(l) => line(true, "no other campaign", format!("none running (a stale lock of {} will be cleared)", l.campaign_id)),
        None => line(true, "no other campaign", "none running".into()),
    }
    if dirs_ok {
        let id = format!("check-{}", new_campaign_id());
        let profiles = common.state_dir.join("runs").join(&id).join("profiles");
        let probe = match runtime() {
            Ok(rt) => rt.block_on(crate::preflight::probe(&cfg, &common.output_dir, &profiles, &common.log_dir, &id)),
            Err(e) => {
                line(false, "runtime", e.to_string());
                crate::preflight::Probe::default()
            }
        };
        let _ = std::fs::remove_dir_all(common.state_dir.join("runs").join(&id));
        for i in &probe.items {
            if i.what == "browser launch" && !browsers_ok {
                continue; // already reported above
            }
            line(i.passed, &i.what, i.detail.clone());
        }
        let dir = common.output_dir.join(&id);
        let path = dir.join("baseline.json");
        let written = std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(&path, serde_json::to_string_pretty(&probe.baseline).unwrap_or_default() + "\n"));
        match written {
            Ok(()) => line(true, "baseline", path.display().to_string()),
            Err(e) => line(false, "baseline", format!("{}: {e}", path.display())),
        }
    }
    println!("{}", if ok { "all checks passed" } else { "some checks failed" });
    if ok {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

fn latest_or(state_dir: &Path, id: Option<&str>) -> Result<String, String> {
    match id {
        Some(id) => Ok(id.to_string()),
        None => store::list_campaigns(state_dir)
            .pop()
            .ok_or_else(|| format!("no campaigns recorded in {} (run `stressctl launch` first)", state_dir.display())),
    }
}

fn load_report(state_dir: &Path, id: &str) -> Result<report::CampaignReport, String> {
    let path = store::store_path(state_dir, id).map_err(|e| e.to_string())?;
    if !path.exists() {
        return Err(format!("no store for campaign {id} in {} (see `stressctl report --list`)", state_dir.display()));
    }
    let r = StoreReader::open(&path).map_err(|e| e.to_string())?;
    report::campaign_report(&r).map_err(|e| e.to_string())
}

/// `stressctl report`.
fn report_cmd(common: &CommonArgs, a: &ReportArgs) -> u8 {
    if a.list {
        for id in store::list_campaigns(&common.state_dir) {
            println!("{id}");
        }
        return EXIT_OK;
    }
    let id = match latest_or(&common.state_dir, a.id.as_deref()) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("stressctl: {e}");
            return EXIT_USAGE;
        }
    };
    let base = match load_report(&common.state_dir, &id) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stressctl: {e}");
            return EXIT_FAILED;
        }
    };
    if let Some(other) = &a.compare {
        let new = match load_report(&common.state_dir, other) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("stressctl: {e}");
                return EXIT_FAILED;
            }
        };
        let tol = report::Tolerance {
            success_rate_points: a.tolerance_success,
            throughput_pct: a.tolerance_throughput,
            latency_pct: a.tolerance_latency,
        };
        let c = report::compare(&base, &new, &tol);
        print!("{}", report::render_comparison(&c));
        return if c.has_regressions() { EXIT_FAILED } else { EXIT_OK };
    }
    let dir = common.output_dir.join(&id);
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| report::write_campaign_reports(&dir, &base)) {
        eprintln!("stressctl: cannot write reports to {}: {e}", dir.display());
        return EXIT_FAILED;
    }
    println!("stressctl: reports of {id} rebuilt from its store in {}/", dir.display());
    EXIT_OK
}
