//! The minimal baseline for `scripts/bench-throughput.sh`: the same WebGPU op stressctl runs, issued
//! by a naive fantoccini loop, so stressctl's own per-op overhead can be measured against it.
//!
//! Everything that decides the work is taken from the stressctl library, so the two sides are
//! identical: the page server ([`PageServer`], same embedded page on 127.0.0.1), the chromedriver
//! spawn ([`DriverProcess::spawn`], own process group, killed on drop), the Chromium flags
//! ([`chromium_args`]), the session capabilities and timeouts (as `browser::session::open` sets
//! them), the op script ([`CALL_SCRIPT`] with `["webgpu", {size, seed}]`) and the seed policy of a
//! campaign slot (a new random seed on ops 1, 65, 129, … of each session, counted from 1 in every
//! phase; here the warm-up and the measured loop each count from 1, like two stressctl phases).
//!
//! What it does: one chromedriver, N sessions on it (default 2, opened concurrently like
//! stressctl's slots) — with `--browser firefox`, one geckodriver per session, as stressctl's
//! managed Firefox worker runs them — each navigated to the page; W warm-up ops per session (not timed); then M
//! ops per session concurrently, one tokio task per session, each a plain `execute_async` + check
//! of `ok` in a loop. Only the measured loop is timed (sessions are already open). Prints one JSON
//! line:
//! `{"sessions":2,"ops":N,"seconds":S,"ops_per_s":X,"failures":F,...}`.
//!
//! The runtime is a multi-thread tokio runtime by default (what a naive loop uses, DESIGN.md §5);
//! `--runtime current` runs it on a current-thread runtime like stressctl's, for comparison.
//!
//! Every process it starts is loopback-only and is stopped before it exits (also on Ctrl-C /
//! SIGTERM): sessions are closed, then chromedriver's process group is killed.

use clap::{Parser, ValueEnum};
use fantoccini::wd::{Capabilities, TimeoutConfiguration};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use stressctl::browser::adapter::AdapterMode;
use stressctl::browser::driver::{resolve_binary, DriverProcess, DriverSpec};
use stressctl::browser::session::CALL_SCRIPT;
use stressctl::browser::session::{capabilities, Launch, Placement};
use stressctl::config::{BrowserConfig, BrowserKind};
use stressctl::tasks::server::PageServer;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Flavor {
    /// tokio multi-thread runtime (default worker count = cores).
    Multi,
    /// tokio current-thread runtime (what stressctl uses).
    Current,
}

impl Flavor {
    fn as_str(self) -> &'static str {
        match self {
            Flavor::Multi => "multi_thread",
            Flavor::Current => "current_thread",
        }
    }
}

/// Minimal fantoccini loop running stressctl's WebGPU op (throughput baseline).
#[derive(Clone, Debug, Parser)]
struct Args {
    /// Concurrent sessions (one chromedriver, like stressctl's single managed worker).
    #[arg(long, default_value_t = 2)]
    sessions: u32,
    /// Measured ops per session.
    #[arg(long, default_value_t = 200)]
    ops: u64,
    /// Warm-up ops per session (not timed).
    #[arg(long, default_value_t = 64)]
    warmup: u64,
    /// Matrix size N (N×N), as `[task] matrix_size`.
    #[arg(long, default_value_t = 128)]
    size: u32,
    /// Tokio runtime flavor.
    #[arg(long, value_enum, default_value_t = Flavor::Multi)]
    runtime: Flavor,
    /// Worker threads of the multi-thread runtime (default: number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Chromium binary.
    #[arg(long, default_value = "/usr/bin/chromium")]
    chromium: PathBuf,
    /// Chromedriver binary.
    #[arg(long, default_value = "/usr/bin/chromedriver")]
    chromedriver: PathBuf,
    /// The browser: chromium or firefox (ESR, through one geckodriver per session).
    #[arg(long, default_value = "chromium", value_parser = parse_browser)]
    browser: BrowserKind,
    /// Firefox binary.
    #[arg(long, default_value = "/usr/bin/firefox-esr")]
    firefox: PathBuf,
    /// geckodriver binary (a bare name is looked up in PATH and cargo's bin directory).
    #[arg(long, default_value = "geckodriver")]
    geckodriver: PathBuf,
    /// Scratch directory for the browser profiles and the chromedriver log (default: a new
    /// directory under the system temp dir, removed at the end).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Script timeout of one op (stressctl's `browser.op_timeout`).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    op_timeout: Duration,
}

fn parse_browser(s: &str) -> Result<BrowserKind, String> {
    BrowserKind::parse(s).ok_or_else(|| format!("unknown browser {s:?}: chromium or firefox"))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match args.runtime {
        Flavor::Multi => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if let Some(t) = args.threads {
                b.worker_threads(t);
            }
            b.enable_all().build()
        }
        Flavor::Current => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fantoccini_loop: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let (work_dir, remove_work_dir) = match &args.work_dir {
        Some(d) => (d.clone(), false),
        None => (std::env::temp_dir().join(format!("fantoccini-loop-{}", std::process::id())), true),
    };
    let code = rt.block_on(async {
        let result = run(&args, &work_dir).await;
        match result {
            Ok(line) => {
                println!("{line}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("fantoccini_loop: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    });
    drop(rt);
    if remove_work_dir {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    code
}

/// Sets up, measures and always tears down (also on Ctrl-C / SIGTERM).
async fn run(args: &Args, work_dir: &std::path::Path) -> Result<Value, String> {
    std::fs::create_dir_all(work_dir).map_err(|e| format!("{}: {e}", work_dir.display()))?;
    let server = PageServer::start(tokio_util::sync::CancellationToken::new(), &tokio_util::task::TaskTracker::new())
        .await
        .map_err(|e| format!("page server: {e}"))?;
    // chromium: one chromedriver for all sessions; firefox: one geckodriver per session
    let n_drivers = if args.browser == BrowserKind::Firefox { args.sessions } else { 1 };
    let mut drivers: Vec<DriverProcess> = Vec::new();
    for i in 0..n_drivers {
        match spawn_driver(args, work_dir, i).await {
            Ok(d) => drivers.push(d),
            Err(e) => {
                for mut d in drivers {
                    d.kill().await;
                }
                server.stop();
                return Err(e);
            }
        }
    }
    let mut clients: Vec<fantoccini::Client> = Vec::new();

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
    let page_url = server.url();
    let urls: Vec<String> = drivers.iter().map(|d| d.url.clone()).collect();
    let outcome = tokio::select! {
        r = measure(args, work_dir, &urls, &page_url, &mut clients) => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted (SIGINT)".to_string()),
        _ = term.recv() => Err("terminated (SIGTERM)".to_string()),
    };

    // Teardown: close sessions (bounded), then kill the drivers' groups (browsers included).
    for c in clients {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
    }
    for mut d in drivers {
        d.kill().await;
    }
    server.stop();
    outcome
}

/// The browser settings of both sides (stressctl's defaults but for the binaries).
fn browser_config(args: &Args) -> BrowserConfig {
    BrowserConfig {
        chromium: args.chromium.clone(),
        chromedriver: args.chromedriver.clone(),
        firefox: args.firefox.clone(),
        geckodriver: args.geckodriver.clone(),
        max_ops_per_session: u64::MAX,
        op_timeout: args.op_timeout,
        session_timeout: Duration::from_secs(60),
        ..BrowserConfig::default()
    }
}

/// Spawns driver `i` as stressctl's pool does (same environment: Firefox on lavapipe).
async fn spawn_driver(args: &Args, work_dir: &std::path::Path, i: u32) -> Result<DriverProcess, String> {
    let kind = args.browser;
    let configured = if kind == BrowserKind::Firefox { &args.geckodriver } else { &args.chromedriver };
    let binary = resolve_binary(configured).ok_or_else(|| format!("{} not found", configured.display()))?;
    let env = match kind {
        BrowserKind::Chromium => Vec::new(),
        BrowserKind::Firefox => {
            let mut env = AdapterMode::Software.firefox_env(std::path::Path::new(stressctl::browser::adapter::ICD_DIR));
            env.push(("MOZ_CRASHREPORTER_DISABLE".into(), "1".into()));
            env
        }
    };
    let log = work_dir.join(format!("{}-{i}.log", kind.driver_name()));
    let spec = DriverSpec { kind, binary: &binary, log_path: &log, config_home: &work_dir.join("xdg-config"), env };
    DriverProcess::spawn(&spec).await.map_err(|e| format!("{}: {}", kind.driver_name(), e.message))
}

async fn open_session(args: &Args, webdriver_url: &str, page_url: &str, profile: PathBuf) -> Result<fantoccini::Client, String> {
    std::fs::create_dir_all(&profile).map_err(|e| format!("{}: {e}", profile.display()))?;
    let cfg = browser_config(args);
    // Same capabilities as stressctl's `browser::session::open`.
    let caps: Capabilities =
        capabilities(&Launch { kind: args.browser, adapter: AdapterMode::Software, cfg: &cfg }, Placement::Local { profile_dir: &profile });
    let mut b = fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
    b.capabilities(caps);
    let client = tokio::time::timeout(cfg.session_timeout, b.connect(webdriver_url))
        .await
        .map_err(|_| "no session within 60s".to_string())?
        .map_err(|e| format!("new session: {e}"))?;
    client
        .update_timeouts(TimeoutConfiguration::new(Some(cfg.op_timeout), Some(cfg.session_timeout), Some(Duration::ZERO)))
        .await
        .map_err(|e| format!("timeouts: {e}"))?;
    client.goto(page_url).await.map_err(|e| format!("goto {page_url}: {e}"))?;
    Ok(client)
}

/// What one session's loop did.
#[derive(Default)]
struct LoopResult {
    ok: u64,
    failed: u64,
    /// Sum of the op latencies (execute_async call to answer).
    busy: Duration,
    first_err: Option<String>,
}

/// The naive loop of one session: `ops` ops back to back.
async fn op_loop(client: fantoccini::Client, size: u32, ops: u64, mut rng: fastrand::Rng) -> LoopResult {
    let mut res = LoopResult::default();
    let mut seed = 1u32;
    for seq in 1..=ops {
        // stressctl's slot: a new input seed on op 1, 65, 129, … (`seq % 64 == 1`).
        if seq % 64 == 1 {
            seed = rng.u32(..);
        }
        let t = Instant::now();
        let r = client.execute_async(CALL_SCRIPT, vec![json!("webgpu"), json!({"size": size, "seed": seed, "adapter": "software"})]).await;
        res.busy += t.elapsed();
        match r {
            Ok(v) if v.get("ok").and_then(Value::as_bool) == Some(true) => res.ok += 1,
            Ok(v) => {
                res.failed += 1;
                res.first_err.get_or_insert_with(|| v.to_string());
            }
            Err(e) => {
                res.failed += 1;
                res.first_err.get_or_insert_with(|| e.to_string());
            }
        }
    }
    res
}

/// Runs `ops` per session on every client concurrently; returns the wall time and the sums.
async fn concurrent(clients: &[fantoccini::Client], size: u32, ops: u64) -> Result<(f64, LoopResult), String> {
    let started = Instant::now();
    let handles: Vec<_> = clients.iter().map(|c| tokio::spawn(op_loop(c.clone(), size, ops, fastrand::Rng::new()))).collect();
    let mut sum = LoopResult::default();
    for h in handles {
        let r = h.await.map_err(|e| format!("op loop panicked: {e}"))?;
        sum.ok += r.ok;
        sum.failed += r.failed;
        sum.busy += r.busy;
        if sum.first_err.is_none() {
            sum.first_err = r.first_err;
        }
    }
    Ok((started.elapsed().as_secs_f64(), sum))
}

async fn measure(
    args: &Args,
    work_dir: &std::path::Path,
    webdriver_urls: &[String],
    page_url: &str,
    clients: &mut Vec<fantoccini::Client>,
) -> Result<Value, String> {
    // Open the sessions concurrently, as stressctl's slots do in its warm-up phase: both browsers
    // then have the same age when the clock starts. (Opening them one after the other makes the
    // first browser seconds older; a young Chromium is still busy with its own start-up work for
    // a few seconds, which slows the ops of whichever side measures it.)
    let opens = (0..args.sessions).map(|i| {
        let profile = work_dir.join(format!("profile-s{i}"));
        tokio::spawn({
            let url = &webdriver_urls[i as usize % webdriver_urls.len()];
            let (a, w, p) = (args.clone(), url.clone(), page_url.to_string());
            async move { open_session(&a, &w, &p, profile).await }
        })
    });
    let handles: Vec<_> = opens.collect();
    let mut first_err = None;
    for h in handles {
        match h.await {
            Ok(Ok(c)) => clients.push(c),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(format!("session open panicked: {e}"));
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    if args.warmup > 0 {
        let (_, w) = concurrent(clients, args.size, args.warmup).await?;
        if w.failed > 0 {
            eprintln!("fantoccini_loop: {} warm-up ops failed (first: {})", w.failed, w.first_err.unwrap_or_default());
        }
    }
    let (seconds, r) = concurrent(clients, args.size, args.ops).await?;
    let (failed, first_err) = (r.failed, r.first_err);
    let total = r.ok + failed;
    let mean_ms = if total > 0 { r.busy.as_secs_f64() * 1000.0 / total as f64 } else { 0.0 };
    let mut out = json!({
        "sessions": args.sessions,
        "ops": total,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "ops_per_s": ((total as f64 / seconds) * 100.0).round() / 100.0,
        "failures": failed,
        "latency_mean_ms": (mean_ms * 1000.0).round() / 1000.0,
        "size": args.size,
        "warmup_ops_per_session": args.warmup,
        "runtime": args.runtime.as_str(),
        "browser": args.browser.as_str(),
    });
    if let Some(e) = first_err {
        out["first_error"] = json!(e.chars().take(300).collect::<String>());
    }
    Ok(out)
}
