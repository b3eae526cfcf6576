//! The command line (clap derive).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Phased, unattended stress campaigns against real browsers (WebGPU/WebNN), with a guardian
/// that keeps the host safe.
///
/// Typical night: `stressctl --check-only` before leaving, `stressctl launch --profile overnight`,
/// `tail -f monitoring_logs/*.log` meanwhile, and `results_summary/<id>/summary.txt` in the morning.
/// `stressctl emergency-stop --force` when something is wrong.
///
/// Exit codes: 0 campaign passed / check passed, 1 campaign failed, halted or stopped / check
/// failed, 2 bad usage or config, 130 interrupted by Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "stressctl", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Run the pre-flight check and exit (same as `stressctl check`).
    #[arg(long)]
    pub check_only: bool,

    /// Settings shared by every command.
    #[command(flatten)]
    pub common: CommonArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Where things are; accepted before or after the command.
#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// Campaign config (TOML). Alone, it is the whole config; with --profile, it is layered over
    /// the profile: its keys override the profile's, its [[phases]], [[workers]] and [[faults]]
    /// replace the profile's lists.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Embedded profile: `quick` (a few minutes, the default without --config), `overnight`
    /// (eight phases, about 8 h) or `capacity` (a warm-up, then a search for the most WebGPU
    /// sessions this machine holds: a few minutes). With --config, the base the file is layered
    /// over.
    #[arg(long, short = 'p', global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// Reports go to DIR/<campaign-id>/.
    #[arg(long, global = true, value_name = "DIR", default_value = "results_summary")]
    pub output_dir: PathBuf,

    /// Log files (`<component>_<timestamp>.log`) go here.
    #[arg(long, global = true, value_name = "DIR", default_value = "monitoring_logs")]
    pub log_dir: PathBuf,

    /// State: the campaign stores (SQLite), browser profiles, lock and control socket.
    #[arg(long, global = true, value_name = "DIR", default_value = ".stressctl")]
    pub state_dir: PathBuf,
}

/// `launch --help`'s exit codes: what a CI job's step sees.
const LAUNCH_EXIT_CODES: &str = "Exit codes: 0 the campaign passed (its verdict; phases whose task was unsupported are left \
out of it); 1 it failed, halted, was stopped (emergency-stop, guardian, SIGTERM, SIGHUP) or did not complete its plan, \
or a report file (--junit, --summary-md) could not be written; 2 bad usage or config, nothing started; 130 \
interrupted by Ctrl-C (the reports are still written).";

/// `report --help`'s exit codes.
const REPORT_EXIT_CODES: &str = "Exit codes: 0 the reports were rebuilt (whatever the campaign's verdict; read it in \
campaign_report.json or junit.xml), or --compare found no regression; 1 --compare found a regression, the store is \
damaged, or a file could not be written; 2 bad usage, or no campaign with that id.";

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a campaign: phases of concurrent browser sessions, reports after each phase and at
    /// the end. Ctrl-C stops gracefully (reports are still written); a second Ctrl-C kills the
    /// browsers at once.
    #[command(after_help = LAUNCH_EXIT_CODES)]
    Launch(LaunchArgs),
    /// Pre-flight check: config valid, chromium and chromedriver present (with versions),
    /// directories writable, remote workers answering. Prints a checklist; exit 0 when everything
    /// passes, 1 otherwise.
    Check(CheckArgs),
    /// Stop the running campaign from another terminal (graceful; --force kills at once).
    EmergencyStop(StopArgs),
    /// Show the running campaign: phase, progress, ops, success rate, p95, resources.
    Status(StatusArgs),
    /// List or command the running campaign's circuit breakers: `breaker list`, `breaker open
    /// worker:w1 --reason "..."` (force open: work moves off it until `close`), `close`, `reset`
    /// (closed, as new), `disable` (let every call through, still counting). Scopes are breaker
    /// keys or globs (`worker:grid/*`). An unknown scope exits 2 and lists the breakers there are.
    #[command(subcommand)]
    Breaker(BreakerCommand),
    /// Rebuild a campaign's reports from its store, or compare two campaigns.
    #[command(after_help = REPORT_EXIT_CODES)]
    Report(ReportArgs),
    /// Print a config overlay (TOML) tuned from finished campaigns' stores: op_timeout from the
    /// in-page p99.9, the breakers' recovery_timeout from measured recovery times and their
    /// failure_rate_threshold above the noise of passing phases, each key with a comment naming
    /// its measurement. `launch --tuned-from ID…` runs with it. An unknown id exits 2.
    Tune(TuneArgs),
    /// Serve a recorded campaign's dashboard (charts, breakers, events, /metrics) from its store,
    /// read-only, until Ctrl-C.
    Dashboard(DashboardArgs),
}

/// `tune` options.
#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Finished campaigns to tune from (ids as `stressctl report --list` prints them).
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
}

/// `launch` options.
#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// Layer the overlay `stressctl tune ID…` prints over the config (its keys win); the report
    /// lists every tuned setting with its old and new value and the measurement behind it.
    #[arg(long, value_name = "ID", num_args = 1.., conflicts_with = "resume")]
    pub tuned_from: Vec<String>,
    /// Replace the campaign's [safety] table with this file's (see config/safety.toml).
    #[arg(long, value_name = "FILE")]
    pub safety: Option<PathBuf>,
    /// Mirror warnings and errors to stderr.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Start the campaign in the background (its own session, output to the log dir), print its
    /// id and return at once. Follow it with `stressctl status`.
    #[arg(long)]
    pub detach: bool,
    /// Continue a campaign whose process died (the latest unfinished one when no ID is given):
    /// its leftover browsers and drivers are reaped, completed phases are kept as they are, and
    /// the interrupted phase continues from its checkpoint.
    #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = "latest")]
    pub resume: Option<String>,
    /// Skip the night's baseline (a few seconds before the first phase: the idle host and one
    /// session's ops, which the report compares the last phase against).
    #[arg(long)]
    pub no_baseline: bool,
    /// The campaign id to use (set by --detach for the background process).
    #[arg(long, hide = true, value_name = "ID")]
    pub campaign_id: Option<String>,
    /// Serve a live dashboard while the campaign runs, on ADDR or else `[dashboard] listen`
    /// (default 127.0.0.1:8080; port 0 picks a free one). The address is printed as
    /// `stressctl: dashboard http://ADDR/`. `[dashboard] enabled = true` serves it without this.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "")]
    pub dashboard: Option<String>,
    /// Bearer token every dashboard request must carry; required to bind a non-loopback address.
    #[command(flatten)]
    pub dashboard_token: TokenArg,
    /// Report files for CI.
    #[command(flatten)]
    pub ci: CiArgs,
}

/// Report files for CI (shared by `launch` and `report`): copies of the reports directory's
/// `junit.xml` and `summary.md`, where the CI job looks for them.
#[derive(Debug, Args, Clone, Default)]
pub struct CiArgs {
    /// Also write the JUnit XML report to FILE (as `junit.xml` in the reports directory): one
    /// testsuite for the campaign, one testcase per phase criterion (success rate, p95) and per
    /// campaign criterion (phase ratio, overall success rate, plan completed); a failed criterion
    /// is a <failure> with its figures, an unsupported phase <skipped>.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the Markdown summary (verdict, phases, what failed, breakers; as `summary.md` in
    /// the reports directory) to FILE. With $GITHUB_STEP_SUMMARY set, `launch` appends it there
    /// (with or without this option), `report` only with this option.
    #[arg(long = "summary-md", value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
}

/// The dashboard's bearer token (shared by `launch --dashboard` and `dashboard`).
#[derive(Debug, Args, Clone)]
pub struct TokenArg {
    /// Bearer token every dashboard request must carry (`Authorization: Bearer TOKEN`); required
    /// to bind a non-loopback address. At least 16 characters.
    #[arg(long = "dashboard-token", value_name = "TOKEN", env = "STRESSCTL_DASHBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `dashboard` options.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Campaign id (default: the latest one in the state dir).
    pub id: Option<String>,
    /// Address to serve on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = crate::config::addr::DEFAULT_ADDR)]
    pub listen: String,
    /// Bearer token (see `launch --dashboard-token`).
    #[command(flatten)]
    pub token: TokenArg,
}

/// `check` options.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print the effective config (the profile and --config layered, every key explicit,
    /// defaults included) as TOML and exit 0 without checking anything else. The output is a
    /// complete config: `launch --config` with it runs the same campaign.
    #[arg(long)]
    pub print_config: bool,
}

/// `emergency-stop` options.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Kill the campaign's browsers and drivers at once instead of stopping gracefully.
    #[arg(long)]
    pub force: bool,
    /// Why (recorded in the report).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// How long to wait for the campaign to exit.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

/// `breaker` subcommands.
#[derive(Debug, Subcommand)]
pub enum BreakerCommand {
    /// Every breaker: scope, state, health, calls, failures, rejections, opens.
    List(BreakerListArgs),
    /// Force breakers open: every call is rejected and work moves to other workers, until
    /// `close` or `reset`.
    Open(BreakerScopeArgs),
    /// Close breakers (ends `open`/`disable` or an open period); the window is cleared, the open
    /// backoff kept.
    Close(BreakerScopeArgs),
    /// Reset breakers to closed, as new (window, failure streak and open backoff cleared).
    Reset(BreakerScopeArgs),
    /// Disable breakers: every call runs and is still counted, nothing opens them, until `close`
    /// or `reset`.
    Disable(BreakerScopeArgs),
}

/// `breaker list` options.
#[derive(Debug, Args)]
pub struct BreakerListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The breakers a command is for, and why.
#[derive(Debug, Args)]
pub struct BreakerScopeArgs {
    /// Breaker keys (`worker:w1`, `browser:firefox`, `task:webgpu`) or globs (`worker:grid/*`).
    #[arg(required = true, value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Why (recorded in the event, the transitions and the reports).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// `status` options.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `report` options.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Campaign id (default: the latest one in the state dir).
    pub id: Option<String>,
    /// Compare with this campaign (the baseline is ID, the new run is OTHER); exit 1 on a
    /// regression beyond the tolerances: a change whose 95% bootstrap interval over the phases'
    /// windows lies wholly beyond the tolerance (one that is merely noisy is listed apart).
    #[arg(long, value_name = "OTHER", conflicts_with_all = ["junit", "summary_md"])]
    pub compare: Option<String>,
    /// Allowed drop in success rate, in percentage points.
    #[arg(long, default_value_t = 2.0, value_name = "POINTS")]
    pub tolerance_success: f64,
    /// Allowed drop in throughput, in percent.
    #[arg(long, default_value_t = 10.0, value_name = "PCT")]
    pub tolerance_throughput: f64,
    /// Allowed rise of p50/p95/p99, in percent.
    #[arg(long, default_value_t = 10.0, value_name = "PCT")]
    pub tolerance_latency: f64,
    /// List the campaigns in the state dir instead.
    #[arg(long, conflicts_with_all = ["junit", "summary_md"])]
    pub list: bool,
    /// Report files for CI.
    #[command(flatten)]
    pub ci: CiArgs,
}
