//! The commands, as the binary runs them. Each returns `Result<ExitCode, CliError>`; [`run`] is
//! the one place that prints an error and maps it to the exit code.

mod check;
mod ci;
mod dashboard_cmd;
mod error;
mod remote;
mod report_cmd;
mod tune_cmd;

pub use error::{CliError, ErrorKind, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE};

use crate::campaign::{new_campaign_id, Campaign, CampaignOutcome, ResumePoint, RunOptions};
use crate::cli::{Cli, Command, CommonArgs, LaunchArgs};
use crate::config::Config;
use crate::control::daemon::{self, Detached};
use crate::control::lock::RunLock;
use crate::control::{signals, StopCause, StopSignal};
use crate::fmt::say;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tracing::Instrument;

/// Runs the parsed command line: dispatches, then prints the error (if any) in one place.
pub fn run(cli: Cli) -> ExitCode {
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => e.report(),
    };
    ExitCode::from(code)
}

fn dispatch(cli: &Cli) -> Result<u8, CliError> {
    match (&cli.command, cli.check_only) {
        (Some(Command::Check(a)), _) => check::check(&cli.common, a.print_config),
        (None, true) => check::check(&cli.common, false),
        (Some(Command::Launch(a)), _) => launch(&cli.common, a),
        (Some(Command::Report(a)), _) => report_cmd::report(&cli.common, a),
        (Some(Command::Tune(a)), _) => tune_cmd::tune(&cli.common, a),
        (Some(Command::EmergencyStop(a)), _) => remote::emergency_stop(&cli.common, a),
        (Some(Command::Status(a)), _) => remote::status(&cli.common, a),
        (Some(Command::Breaker(b)), _) => remote::breaker(&cli.common, b),
        (Some(Command::Dashboard(a)), _) => dashboard_cmd::dashboard(&cli.common, a),
        (None, false) => Err(CliError::usage("say what to do: `stressctl launch`, `stressctl --check-only`, … (see `stressctl --help`)")),
    }
}

/// The effective config (profile and file layered); prints a warning line per fault that can
/// never fire.
pub(super) fn load_config(common: &CommonArgs) -> Result<Config, CliError> {
    let cfg = Config::load(common.config.as_deref(), common.profile.as_deref())?;
    for w in cfg.warnings() {
        crate::fmt::warn(&format!("stressctl: warning: {w}"));
    }
    Ok(cfg)
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    // One thread: the browsers need the cores, and the orchestrator's work per op is tiny.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the runtime: {e}")))
}

pub(crate) fn ensure_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".stressctl-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(&probe)
}

/// The campaign to resume (`--resume [ID]`): its id, stored config and where to continue.
fn resume_target(common: &CommonArgs, r: &str) -> Result<(String, Config, ResumePoint), CliError> {
    let id = if r == "latest" {
        crate::campaign::resume::unfinished(&common.state_dir)
            .pop()
            .ok_or_else(|| CliError::failed(format!("no unfinished campaign in {} to resume", common.state_dir.display())))?
    } else {
        r.to_string()
    };
    let (cfg, point) =
        crate::campaign::resume_point(&common.state_dir, &id).map_err(|e| CliError::failed(format!("cannot resume: {e}")))?;
    Ok((id, cfg, point))
}

/// Reaps what unfinished campaigns of this state dir left: we hold the lock, so they died.
fn reap_dead_runs(state_dir: &Path) {
    for dead in crate::campaign::resume::unfinished(state_dir) {
        match crate::campaign::resume::reap(state_dir, &dead) {
            Ok(r) if !r.killed.is_empty() => say(&format!(
                "stressctl: reaped {} leftover browser/driver processes of campaign {dead} (pids {:?})",
                r.killed.len(),
                r.killed
            )),
            Ok(_) => {}
            Err(e) => crate::fmt::warn(&format!("stressctl: could not check campaign {dead} for leftover processes: {e}")),
        }
        let Ok(rt) = runtime() else { continue };
        for (worker, n) in rt.block_on(crate::campaign::resume::reap_grid_sessions(state_dir, &dead)) {
            say(&format!("stressctl: deleted {n} Selenium Grid session(s) campaign {dead} left on worker {worker} through its hub"));
        }
    }
}

/// `stressctl launch`.
fn launch(common: &CommonArgs, args: &LaunchArgs) -> Result<u8, CliError> {
    let resume = args.resume.as_deref().map(|r| resume_target(common, r)).transpose()?;
    let (mut cfg, tuned) = match &resume {
        Some((_, cfg, _)) => (cfg.clone(), None),
        None if !args.tuned_from.is_empty() => {
            let (cfg, tuned) = tune_cmd::tuned_config(common, &args.tuned_from)?;
            (cfg, Some(tuned))
        }
        None => (load_config(common)?, None),
    };
    if let Some(path) = &args.safety {
        cfg.apply_safety_file(path)?;
    }
    for dir in [&common.output_dir, &common.log_dir, &common.state_dir] {
        ensure_writable(dir).map_err(|e| {
            CliError::usage(format!("{}: {e} (choose another directory with --output-dir/--log-dir/--state-dir)", dir.display()))
        })?;
    }
    let id = match &resume {
        Some((id, _, _)) => id.clone(),
        None => args.campaign_id.clone().unwrap_or_else(new_campaign_id),
    };
    crate::store::validate_campaign_id(&id).map_err(|why| CliError::usage(format!("invalid campaign id {id:?}: {why}")))?;
    let listen = dashboard_cmd::live_listen(&cfg, args)?;
    crate::notify::check_tokens(&cfg.notify).map_err(|e| CliError::usage(e.to_string()))?;
    server_reaches_workers(&cfg)?;
    node_templates_on_grids(&cfg)?;
    if args.detach {
        return detach(common, &id, resume.is_some());
    }
    let socket_path = common.state_dir.join("control.sock");
    let (run_lock, note) = RunLock::acquire(&common.state_dir, &id, &socket_path).map_err(|e| CliError::failed(e.to_string()))?;
    if let Some(n) = note {
        say(&format!("stressctl: {n}"));
    }
    reap_dead_runs(&common.state_dir);
    let dashboard = match &listen {
        Some(l) => {
            let bound = l.bind().map_err(CliError::usage)?;
            say(&format!("stressctl: dashboard {}", bound.url()));
            Some(crate::dashboard::LiveSetup {
                bound,
                store: crate::store::store_path(&common.state_dir, &id).map_err(|e| CliError::usage(e.to_string()))?,
                limits: crate::dashboard::source::limits_of_config(&cfg),
                planned: cfg.planned_duration(),
            })
        }
        None => None,
    };
    let stamp = format!("{id}{}", if resume.is_some() { format!("-resumed-{}", std::process::id()) } else { String::new() });
    let logs = crate::logging::init(&common.log_dir, &stamp, args.verbose)
        .map_err(|e| CliError::usage(format!("cannot open log files in {}: {e}", common.log_dir.display())))?;
    // room for the store whatever clients of control.sock do
    if let Err(e) = crate::control::socket::raise_nofile_limit() {
        tracing::warn!(target: "stressctl::campaign", "cannot raise the open-file limit: {e}");
    }
    let rt = runtime()?;
    let interactive = std::io::stdout().is_terminal();
    match &resume {
        Some((_, _, p)) => {
            say(&format!("stressctl: resuming campaign {id} ({}) at phase {}/{}: {}", cfg.profile, p.phase + 1, cfg.phases.len(), p.note))
        }
        None => say(&format!(
            "stressctl: campaign {id} ({}, {} phases, planned {})",
            cfg.profile,
            cfg.phases.len(),
            crate::fmt::fmt_duration(cfg.planned_duration())
        )),
    }
    say(&format!("stressctl: logs {}", logs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")));
    let opts = RunOptions {
        output_dir: common.output_dir.clone(),
        state_dir: common.state_dir.clone(),
        log_dir: common.log_dir.clone(),
        log_stamp: stamp,
        socket: Some(socket_path),
        baseline: !args.no_baseline,
        tuned,
    };
    let stop = Arc::new(StopSignal::new());
    let span = tracing::info_span!("campaign", id = %id);
    let result = rt.block_on(
        async {
            signals::install(stop.clone()).map_err(|e| CliError::failed(format!("cannot install signal handlers: {e}")))?;
            let campaign = Campaign::new(cfg, opts, stop.clone()).on_start(move |bus, feed, breakers| {
                tokio::spawn(crate::progress::render(bus.subscribe(), feed.clone(), interactive).in_current_span());
                if let Some(d) = dashboard {
                    crate::dashboard::start_live(d, bus, feed, breakers);
                }
            });
            Ok::<_, CliError>(campaign.run_from(id.clone(), resume.map(|(_, _, p)| p)).await)
        }
        .instrument(span),
    )?;
    // Nothing may outlive the run: the runtime is dropped here, after the pool's shutdown.
    drop(rt);
    drop(run_lock);
    match result {
        Ok(r) => {
            let reason = r.stop_reason.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
            say(&format!("stressctl: campaign {} {}{reason}", r.id, r.outcome.as_str().to_uppercase()));
            say(&format!("stressctl: reports in {}/ (summary.txt, campaign_report.json)", r.report_dir.display()));
            ci::write_ci_outputs(&r.report_dir, &args.ci, true)?;
            Ok(match (r.outcome, r.stop_cause) {
                (CampaignOutcome::Passed, _) => EXIT_OK,
                (_, Some(StopCause::Interrupted)) => EXIT_INTERRUPTED,
                _ => EXIT_FAILED,
            })
        }
        Err(e) => Err(CliError::failed(format!("campaign {id} stopped because it could not be recorded: {e}")).hint(format!(
            "everything committed before that is in the store; once the cause is fixed (e.g. disk space), `stressctl report {id}` rebuilds the reports"
        ))),
    }
}

/// Refuses (exit 2, naming `server.listen`) a loopback-only page server when a worker is a
/// Selenium Grid with nodes on other machines: their browsers could not load the page. A worker
/// URL on another machine is refused when the config is read; a Grid's nodes are known only from
/// its hub's `/status`, asked here (bounded) before anything starts.
pub(super) fn server_reaches_workers(cfg: &Config) -> Result<(), CliError> {
    use crate::config::{addr, WorkerEndpoint};
    let listen = cfg.server.listen.as_deref().unwrap_or(addr::DEFAULT_SERVER_LISTEN);
    let loopback = addr::parse_server_listen(listen).is_ok_and(|a| a.ip().is_loopback());
    let remote: Vec<(&str, &str)> = cfg
        .workers
        .iter()
        .filter_map(|w| match &w.endpoint {
            WorkerEndpoint::Remote(u) => Some((w.id.as_str(), u.as_str())),
            WorkerEndpoint::Managed => None,
        })
        .collect();
    if !cfg.needs_page_server() || !loopback || remote.is_empty() {
        return Ok(());
    }
    let rt = runtime()?;
    for (id, url) in remote {
        let nodes = rt.block_on(crate::browser::grid::remote_nodes(url));
        if !nodes.is_empty() {
            return Err(CliError::usage(format!(
                "config error in {}: `server.listen` = {listen:?}: the Selenium Grid of worker {id} ({url}) has node(s) on other machines ({}), \
                 whose browsers cannot load pages from this machine's loopback",
                cfg.source,
                nodes.join(", ")
            ))
            .hint("listen on an address the nodes can reach, e.g. [server] listen = \"0.0.0.0:8099\" (and advertise = \"http://THIS-HOST:8099\")"));
        }
    }
    Ok(())
}

/// Refuses (exit 2, naming `workers[i].node_metrics`) a `{host}` template on a remote worker
/// that is not a Selenium Grid: the template is filled with each node's host from the hub's
/// `/status`, and only a Grid has nodes. The config check refuses one on a managed worker; a
/// remote worker is a Grid when its `/status` lists `value.nodes`, known only by asking it
/// (bounded), so a worker that does not answer is refused too: nothing could be watched.
pub(super) fn node_templates_on_grids(cfg: &Config) -> Result<(), CliError> {
    use crate::config::WorkerEndpoint;
    let templated: Vec<(usize, &str, &str, &str)> = cfg
        .workers
        .iter()
        .enumerate()
        .filter(|(_, w)| w.node_metrics_template())
        .filter_map(|(i, w)| match &w.endpoint {
            WorkerEndpoint::Remote(u) => Some((i, w.id.as_str(), u.as_str(), w.node_metrics.as_deref().unwrap_or_default())),
            WorkerEndpoint::Managed => None,
        })
        .collect();
    if templated.is_empty() {
        return Ok(());
    }
    let rt = runtime()?;
    for (i, id, url, metrics) in templated {
        let status = format!("{}/status", url.trim_end_matches('/'));
        let why = match rt.block_on(crate::browser::grid_status::get_json(&status, crate::browser::grid::HUB_TIMEOUT)) {
            Ok(v) => match crate::browser::grid::parse_status(&v) {
                Ok(_) => continue,
                Err(_) => format!("worker {id} ({url}) is not a Selenium Grid (its /status lists no nodes)"),
            },
            Err(e) => format!("worker {id} ({url}) did not answer, so it cannot be told to be a Selenium Grid ({e})"),
        };
        return Err(CliError::usage(format!(
            "config error in {}: `workers[{i}].node_metrics` = {metrics:?}: a {{host}} template is filled with each Selenium Grid node's host, and {why}",
            cfg.source
        ))
        .hint("give the machine's node_exporter as a plain URL, e.g. node_metrics = \"http://HOST:9100/metrics\""));
    }
    Ok(())
}

/// `launch --detach`: re-runs this launch in the background and returns once it holds the lock.
/// `resumed`: the background run resumes `id`, so its logs are stamped with its own pid.
fn detach(common: &CommonArgs, id: &str, resumed: bool) -> Result<u8, CliError> {
    match daemon::detach(&common.log_dir, &common.state_dir, id).map_err(|e| CliError::failed(e.to_string()))? {
        Detached::Running { pid, log } => {
            say(id);
            crate::fmt::warn(&format!(
                "stressctl: campaign {id} running in the background (pid {pid}); `stressctl status` to follow it, `stressctl emergency-stop` to stop it; output in {}",
                log.display()
            ));
            // the same stamp as the background run's logging::init
            let stamp = if resumed { format!("{id}-resumed-{pid}") } else { id.to_string() };
            crate::fmt::warn(&format!("stressctl: tail -f {}", common.log_dir.join(format!("campaign_{stamp}.log")).display()));
            Ok(EXIT_OK)
        }
        Detached::Exited { code, output } => {
            crate::fmt::warn(output.trim_end());
            if code == EXIT_OK {
                crate::fmt::warn("stressctl: the background campaign already finished");
                return Ok(EXIT_OK);
            }
            Err(CliError {
                kind: if code == EXIT_USAGE { ErrorKind::Usage } else { ErrorKind::Failed },
                message: "the background campaign exited at once".into(),
                hint: None,
            })
        }
    }
}
