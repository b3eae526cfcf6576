//! The pre-flight check (`stressctl --check-only`): everything a campaign needs, tried for real
//! before a night is spent on it, and a baseline of the idle host and of single-session latency.
//! Every remote worker is asked for its WebDriver `/status`; managed workers are covered by a
//! real browser of each kind they run, started through the campaign's own pool.

use crate::browser::pool::Pool;
use crate::browser::session::CALL_SCRIPT;
use crate::config::{AdapterChoice, BrowserKind, Config, TaskSpec, WorkerConfig, WorkerEndpoint};
use crate::guardian::{health_score, Metric, ResourceSample, Sampler};
use crate::metrics::{new_histogram, record_latency, LatencySummary};
use crate::tasks::{run_browser_op, server::PageServer};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// One line of the checklist.
#[derive(Debug, Clone)]
pub struct CheckItem {
    /// Passed (informational items always pass).
    pub passed: bool,
    /// What was checked.
    pub what: String,
    /// What was found.
    pub detail: String,
}

/// The result of the browser probe and baseline.
#[derive(Debug, Default)]
pub struct Probe {
    /// Checklist lines.
    pub items: Vec<CheckItem>,
    /// `baseline.json` content.
    pub baseline: Value,
    /// Health score of the baseline.
    pub health: Option<f64>,
}

fn item(items: &mut Vec<CheckItem>, passed: bool, what: &str, detail: impl Into<String>) {
    items.push(CheckItem { passed, what: what.to_string(), detail: detail.into() });
}

/// Idle resources over `n` samples one second apart (the guardian's sampler).
pub async fn idle_baseline(output_dir: &Path, n: usize) -> Vec<ResourceSample> {
    let dir = output_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut s = Sampler::new(dir);
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            if i > 0 {
                std::thread::sleep(Duration::from_secs(1));
            }
            out.push(s.sample());
        }
        out
    })
    .await
    .unwrap_or_default()
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

/// Runs the resource checks, the real-browser probe and the baseline.
pub async fn probe(cfg: &Config, output_dir: &Path, profiles_dir: &Path, log_dir: &Path, stamp: &str) -> Probe {
    let mut p = Probe::default();
    let t = cfg.safety.thresholds();
    let idle = idle_baseline(output_dir, 3).await;
    let avg = |m: Metric| mean(idle.iter().map(|s| m.value(s)));
    for m in [Metric::Memory, Metric::Disk] {
        let v = avg(m);
        let thr = t.for_metric(m);
        let ok = v <= thr;
        item(
            &mut p.items,
            ok,
            &format!("{m} headroom"),
            format!("{v:.1}% in use, threshold {thr:.0}%{}", if ok { "" } else { ": a campaign would trip at once" }),
        );
    }
    // the absolute floors, judged on the last idle sample (what the guardian would see first)
    if let Some(last) = idle.last() {
        for m in [Metric::MemoryFree, Metric::DiskFree] {
            let (v, min) = (m.value(last), t.for_metric(m));
            let ok = !m.violates(v, min);
            let what = if m == Metric::MemoryFree { "memory available" } else { "disk free" };
            let detail = if min > 0.0 {
                format!("{v:.0} MiB, minimum {min:.0} MiB{}", if ok { "" } else { ": a campaign would trip at once" })
            } else {
                format!("{v:.0} MiB (no minimum set)")
            };
            item(&mut p.items, ok, what, detail);
        }
    }
    let cpu = avg(Metric::Cpu);
    item(&mut p.items, true, "idle cpu", format!("{cpu:.1}% (informational; threshold {:.0}%)", t.cpu_percent));
    let confinement = confinement_items(&mut p.items, cfg.safety.reserve_percent);
    for (ok, detail) in crate::tasks::model::check_assets(cfg) {
        item(&mut p.items, ok, "onnxruntime-web", detail);
    }

    if cfg.needs_browser() {
        for w in &cfg.workers {
            if let WorkerEndpoint::Remote(url) = &w.endpoint {
                let (ok, detail) = match probe_worker(url, WORKER_PROBE_TIMEOUT).await {
                    // grid hook: a Selenium Grid also needs a slot for the browser; say what it has
                    Ok(d) => match crate::browser::grid::check(url, w.browser.as_str()).await {
                        Some(Ok(g)) => (true, format!("{url}: {d}; {g}")),
                        Some(Err(g)) => (false, format!("{url}: {g}")),
                        None => (true, format!("{url}: {d}")),
                    },
                    Err(e) => (false, format!("{url}: {e}")),
                };
                item(&mut p.items, ok, &format!("worker {}", w.id), detail);
            }
        }
    }

    if cfg.needs_page_server() {
        let reachable: Vec<&str> = cfg
            .workers
            .iter()
            .filter(|w| p.items.iter().any(|i| i.passed && i.what == format!("worker {}", w.id)))
            .map(|w| w.id.as_str())
            .collect();
        p.items.extend(remote_probe(cfg, &reachable, profiles_dir, log_dir, stamp).await);
    }

    let mut latency = new_histogram();
    let mut ops_ok = 0u32;
    let mut ops = 0u32;
    let mut caps = serde_json::Map::new();
    if cfg.needs_browser() {
        let needs_webgpu = cfg.phases.iter().any(|ph| matches!(ph.task, TaskSpec::Webgpu { .. }));
        for r in browser_probe(cfg, profiles_dir, log_dir, stamp).await {
            let b = r.kind.as_str();
            let (c, lat) = match r.result {
                Ok(x) => x,
                Err(e) => {
                    item(&mut p.items, false, &format!("browser launch ({b})"), e);
                    continue;
                }
            };
            let gpu = &c["webgpu"];
            let what = format!("webgpu adapter ({b})");
            if gpu["supported"].as_bool() == Some(true) {
                let mut detail = describe_adapter(&gpu["adapter"]);
                if let Some(n) = &r.gpu_name {
                    detail.push_str(&format!("; chrome://gpu: {n}"));
                }
                if let Some(n) = gpu["adapter_retries"].as_u64().filter(|n| *n > 0) {
                    detail.push_str(&format!("; requestAdapter() answered null {n}× before the adapter came"));
                }
                item(&mut p.items, true, &what, format!("{} (webgpu_adapter = \"{}\")", detail, r.choice.as_str()));
            } else {
                let err = gpu["error"].as_str().unwrap_or("no adapter");
                let required = needs_webgpu || r.choice == AdapterChoice::Hardware;
                item(&mut p.items, !required, &what, format!("not available (webgpu_adapter = \"{}\"): {err}", r.choice.as_str()));
            }
            let nn = &c["webnn"];
            let nn_text = if nn["supported"].as_bool() == Some(true) {
                format!("supported, graph verified ({})", nn["backend"])
            } else {
                format!("not supported: {} — informational", nn["error"].as_str().unwrap_or("navigator.ml is not available"))
            };
            item(&mut p.items, true, &format!("webnn ({b})"), nn_text);
            let mut one = new_histogram();
            let (mut n, mut n_ok) = (0u32, 0u32);
            let mut first_err = None;
            for r in lat {
                n += 1;
                match r {
                    Ok(d) => {
                        n_ok += 1;
                        record_latency(&mut one, d);
                        record_latency(&mut latency, d);
                    }
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            ops += n;
            ops_ok += n_ok;
            let l = LatencySummary::of(&one);
            let mut detail = format!("{n_ok}/{n} ok, p50 {:.1} ms, p95 {:.1} ms", l.p50, l.p95);
            if let Some(e) = first_err {
                detail.push_str(&format!("; first failure: {e}"));
            }
            item(&mut p.items, n_ok == n && n > 0, &format!("single-session ops ({b})"), detail);
            caps.insert(b.to_string(), c);
        }
    }
    let caps = Value::Object(caps);
    let success = (ops > 0).then(|| ops_ok as f64 / ops as f64);
    let last = idle.last().cloned().unwrap_or_default();
    let health = health_score(&last, &t, success);
    p.health = Some(health);
    let req = cfg.campaign.baseline_health_requirement;
    item(&mut p.items, health >= req, "health", format!("{health:.0} (requirement {req:.0})"));
    p.baseline = json!({
        "taken_at": crate::fmt::rfc3339(std::time::SystemTime::now()),
        "config_source": cfg.source,
        "idle": {
            "samples": idle.len(),
            "cpu_percent": (cpu * 10.0).round() / 10.0,
            "memory_percent": (avg(Metric::Memory) * 10.0).round() / 10.0,
            "disk_percent": (avg(Metric::Disk) * 10.0).round() / 10.0,
            "memory_available_mb": last.memory_available_bytes >> 20,
            "disk_available_mb": last.disk_available_bytes >> 20,
        },
        "single_session": {"ops": ops, "succeeded": ops_ok, "latency_ms": LatencySummary::of(&latency)},
        "capabilities": caps,
        "health": health.round(),
        "health_requirement": req,
        "thresholds": {
            "memory_percent": t.memory_percent,
            "cpu_percent": t.cpu_percent,
            "disk_percent": t.disk_percent,
            "min_free_memory_mb": t.min_free_memory_mb,
            "min_free_disk_mb": t.min_free_disk_mb,
        },
        "confinement": confinement,
    });
    p
}

/// What [`timed_ops`] measured.
#[derive(Debug, Default)]
pub struct TimedOps {
    /// Each op's time from call to answer (one-off set-up inside an op, a model's session
    /// creation, left out), or why it failed.
    pub results: Vec<Result<Duration, String>>,
    /// Wall time of the ops, the same set-up left out: ops / elapsed is the session's rate.
    pub elapsed: Duration,
}

/// Runs up to `n` ops of `task` in session `s`, one at a time, one op per WebDriver call, each
/// timed from call to answer; stops after three failures in a row (they say enough) or once
/// `budget` of op time has passed. The single-session figures of `check`'s baseline and of the
/// night's baseline `launch` takes before its first phase.
pub async fn timed_ops(
    s: &crate::browser::session::Session,
    task: &TaskSpec,
    page_url: &str,
    op_timeout: Duration,
    n: u32,
    budget: Duration,
) -> TimedOps {
    let size = match task {
        TaskSpec::Webgpu { matrix_size } => *matrix_size,
        _ => 0,
    };
    let started = Instant::now();
    let mut setup = Duration::ZERO;
    let mut out = TimedOps::default();
    for i in 0..n {
        if started.elapsed().saturating_sub(setup) >= budget {
            break;
        }
        let t0 = Instant::now();
        let r = tokio::time::timeout(op_timeout, run_browser_op(&s.client, task, size, 1 + i / 10, None, s.adapter, page_url, &|_, _| {}))
            .await;
        out.results.push(match r {
            Ok(Ok(ok)) => {
                setup += ok.setup;
                Ok(t0.elapsed().saturating_sub(ok.setup))
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timeout".into()),
        });
        if out.results.len() >= 3 && out.results.iter().rev().take(3).all(Result::is_err) {
            break;
        }
    }
    out.elapsed = started.elapsed().saturating_sub(setup);
    out
}

/// How long a remote worker may take to answer `/status` (a Grid router asks its nodes first).
pub const WORKER_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks the WebDriver at `url` (a remote worker) whether it can open sessions: `GET <url>/status`
/// must answer `{"value": {"ready": true}}` within `timeout`. Ok is what it said (`ready: …`), Err
/// one line saying what went wrong. An `https` worker is only checked to accept TCP connections
/// (the probe has no TLS client; the campaign's sessions do).
pub async fn probe_worker(url: &str, timeout: Duration) -> Result<String, String> {
    let status_url = format!("{}/status", url.trim_end_matches('/'));
    let fut = async {
        if url.starts_with("https://") {
            let u = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
            let host = u.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
            let port = u.port_or_known_default().unwrap_or(443);
            tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("cannot connect: {e}"))?;
            return Ok("accepts connections (https: /status not probed)".to_string());
        }
        let uri: hyper::Uri = status_url.parse().map_err(|e| format!("not a URL: {e}"))?;
        let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let resp = client.get(uri).await.map_err(|e| format!("GET {status_url}: {}", crate::fmt::error_chain(&e)))?;
        let status = resp.status();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map_err(|e| format!("GET {status_url}: {}", crate::fmt::error_chain(&e)))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("GET {status_url} answered HTTP {status}: not a WebDriver endpoint?"));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|_| format!("GET {status_url} did not answer WebDriver status JSON"))?;
        let message = v["value"]["message"].as_str().unwrap_or("").trim().to_string();
        match v["value"]["ready"].as_bool() {
            Some(true) if message.is_empty() => Ok("ready".to_string()),
            Some(true) => Ok(format!("ready ({message})")),
            Some(false) => Err(format!("answers but is not ready: {}", if message.is_empty() { "no reason given" } else { &message })),
            None => Err(format!("GET {status_url} did not answer WebDriver status JSON (no value.ready)")),
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {}", crate::fmt::fmt_duration(timeout))),
    }
}

/// The checklist lines about confinement, tried for real (an empty PID namespace, a cgroup created
/// and removed, `/proc/pressure` read). Informational: where a mechanism is missing the campaign
/// still runs, with the fallback each line names. Returns the same as JSON for `baseline.json`.
fn confinement_items(items: &mut Vec<CheckItem>, reserve_percent: u32) -> Value {
    let support = crate::confine::check(reserve_percent);
    let tree = match &support.pid_namespace {
        Ok(()) => "die with stressctl, even when it is SIGKILLed (each driver in its own PID namespace)".to_string(),
        Err(e) => format!(
            "no PID namespaces ({e}; needs CAP_SYS_ADMIN): if stressctl is SIGKILLed, its browsers run on until the next launch reaps them"
        ),
    };
    item(items, true, "browser processes", tree);
    let reservation = match &support.cgroup {
        Ok(r) => format!(
            "{}% of CPU and memory kept for the host: the campaign is capped at {} ({}); the guardian judges the host's CPU demand outside the campaign",
            r.reserve_percent,
            crate::confine::caps_text(r),
            r.mechanism
        ),
        Err(e) => format!("not possible ({e}): the campaign is not capped and the guardian judges total CPU"),
    };
    item(items, true, "reservation", reservation);
    let psi = crate::guardian::pressure::read();
    let pressure = match psi {
        Some(p) => format!(
            "memory/io full stall {:.1}% now; the guardian stops the campaign above {:.0}%",
            p.host_stall(),
            crate::guardian::PRESSURE_STALL_PERCENT
        ),
        None => "no /proc/pressure on this kernel: stalls are not judged".to_string(),
    };
    item(items, true, "pressure", pressure);
    json!({
        "pid_namespaces": support.pid_namespace.is_ok(),
        "reservation": support.cgroup.as_ref().ok(),
        "why_not_confined": support.cgroup.as_ref().err(),
        "pressure": psi.is_some(),
    })
}

type Latencies = Vec<Result<Duration, String>>;

/// What the probe of one browser found.
struct BrowserProbe {
    kind: BrowserKind,
    choice: AdapterChoice,
    /// The page's capabilities and the timed ops, or why the browser did not start.
    result: Result<(Value, Latencies), String>,
    /// The GPU Chromium names on chrome://gpu.
    gpu_name: Option<String>,
}

/// The adapter as one line: its kind, whatever of vendor, architecture, device and description
/// the browser gives ("not exposed by the browser" for the rest), and the compute limits.
pub fn describe_adapter(a: &Value) -> String {
    let field = |k: &str| a[k].as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let named: Vec<String> =
        ["vendor", "architecture", "device", "description"].iter().filter_map(|k| field(k).map(|v| format!("{k} {v}"))).collect();
    let info = if named.is_empty() {
        "vendor, architecture, device and description not exposed by the browser".to_string()
    } else {
        named.join(", ")
    };
    let l = &a["limits"];
    let limits: Vec<String> =
        ["maxBufferSize", "maxStorageBufferBindingSize", "maxComputeWorkgroupSizeX", "maxComputeInvocationsPerWorkgroup"]
            .iter()
            .filter_map(|k| {
                let v = l[*k].as_u64()?;
                Some(if k.ends_with("Size") && v >= 1 << 20 { format!("{k} {} MiB", v >> 20) } else { format!("{k} {v}") })
            })
            .collect();
    let limits = if limits.is_empty() { "limits not reported".to_string() } else { limits.join(", ") };
    format!("{} adapter: {info}; {limits}", a["kind"].as_str().unwrap_or("unknown"))
}

/// For each browser of the managed workers, starts its driver and one browser for real through
/// the campaign's own pool (same flags, same adapter choice), asks the page for its
/// capabilities and times 20 ops of the campaign's first browser task. Everything started is
/// stopped before returning.
async fn browser_probe(cfg: &Config, profiles_dir: &Path, log_dir: &Path, stamp: &str) -> Vec<BrowserProbe> {
    let files = crate::tasks::model::ServedFiles::for_config(cfg);
    let server =
        match PageServer::start_serving(tokio_util::sync::CancellationToken::new(), &tokio_util::task::TaskTracker::new(), files).await {
            Ok(s) => s,
            Err(e) => {
                let why = format!("cannot serve the test page on 127.0.0.1: {e}");
                return cfg
                    .browsers()
                    .into_iter()
                    .map(|kind| BrowserProbe { kind, choice: cfg.browser.webgpu_adapter, result: Err(why.clone()), gpu_name: None })
                    .collect();
            }
        };
    if let Err(e) = std::fs::create_dir_all(profiles_dir) {
        server.stop();
        let why = format!("{}: {e}", profiles_dir.display());
        return cfg
            .browsers()
            .into_iter()
            .map(|kind| BrowserProbe { kind, choice: cfg.browser.webgpu_adapter, result: Err(why.clone()), gpu_name: None })
            .collect();
    }
    // one check worker per browser of the managed workers, with the first such worker's adapter
    let mut workers: Vec<WorkerConfig> = Vec::new();
    for w in cfg.workers.iter().filter(|w| w.endpoint == WorkerEndpoint::Managed) {
        if !workers.iter().any(|c| c.browser == w.browser) {
            workers.push(WorkerConfig {
                id: format!("check-{}", w.browser),
                endpoint: WorkerEndpoint::Managed,
                browser: w.browser,
                webgpu_adapter: w.webgpu_adapter,
                node_metrics: None,
                safety: Default::default(),
            });
        }
    }
    let pool = Pool::new(cfg.browser.clone(), &workers, profiles_dir.to_path_buf(), log_dir.to_path_buf(), stamp.to_string(), None);
    let task = cfg.phases.iter().map(|p| &p.task).find(|t| t.needs_browser()).cloned().unwrap_or(TaskSpec::Webgpu { matrix_size: 128 });
    let mut out = Vec::new();
    for w in &pool.workers {
        let result = async {
            let s = pool
                .open_session(w, &server.url(), &TaskSpec::Webgpu { matrix_size: 128 })
                .await
                .map_err(|e| format!("{} did not start through {}: {e}", w.browser, w.browser.driver_name()))?;
            let caps = s
                .client
                .execute_async(CALL_SCRIPT, vec![json!("capabilities"), json!({"adapter": s.adapter.as_str()})])
                .await
                .unwrap_or(Value::Null);
            let lat = if matches!(task, TaskSpec::Page { .. }) {
                Vec::new()
            } else {
                timed_ops(&s, &task, &server.url(), cfg.browser.op_timeout, 20, Duration::MAX).await.results
            };
            pool.discard(s).await;
            Ok((caps, lat))
        }
        .await;
        out.push(BrowserProbe { kind: w.browser, choice: w.adapter_choice, result, gpu_name: w.gpu_name() });
    }
    pool.shutdown().await;
    server.stop();
    out
}

/// The browsers of the remote workers in `ids` (their `/status` answered), tried for real: a
/// session on each plain remote worker and, on a Grid, on each UP node with a slot for the
/// worker's browser (placed there by its `stressctl:node` capability), loads the test page from
/// the configured `[server]` and says whether it has a WebGPU adapter. A node or worker without
/// one is named (a failure when a phase runs `webgpu` or the adapter is `hardware`), and so is one
/// where the browser did not start. Every session is closed (and deleted through the hub).
async fn remote_probe(cfg: &Config, ids: &[&str], profiles_dir: &Path, log_dir: &Path, stamp: &str) -> Vec<CheckItem> {
    let mut items = Vec::new();
    let workers: Vec<WorkerConfig> = cfg.workers.iter().filter(|w| ids.contains(&w.id.as_str())).cloned().collect();
    if workers.is_empty() {
        return items;
    }
    let opts = crate::tasks::server::ServeOptions::for_config(cfg);
    let tracker = tokio_util::task::TaskTracker::new();
    let server = match PageServer::start_with(tokio_util::sync::CancellationToken::new(), &tracker, Default::default(), &opts).await {
        Ok(s) => s,
        Err(e) => {
            item(&mut items, false, "page server", format!("cannot listen on {}: {e}", opts.listen));
            return items;
        }
    };
    let needs_webgpu = cfg.phases.iter().any(|ph| matches!(ph.task, TaskSpec::Webgpu { .. }));
    let pool = Pool::new(cfg.browser.clone(), &workers, profiles_dir.to_path_buf(), log_dir.to_path_buf(), stamp.to_string(), None);
    pool.detect_grids().await;
    let task = TaskSpec::Webgpu { matrix_size: 128 };
    for w in &pool.workers {
        // (label, node to place the session on)
        let mut places: Vec<(String, Option<String>)> = Vec::new();
        match pool.grids.get(&w.id) {
            Some(g) => {
                let browser = crate::browser::grid::stereotype_browser(w.browser.as_str());
                for n in g.status().await.map(|st| st.nodes).unwrap_or_default() {
                    let label = format!("node {}/{}", w.id, n.name);
                    if n.availability != crate::browser::grid_status::Availability::Up || !n.slots.iter().any(|s| s.browser == browser) {
                        continue; // named by the Grid line above
                    }
                    if !n.targetable {
                        item(&mut items, true, &label, "not probed: its stereotypes carry no `stressctl:node` to place a session there");
                        continue;
                    }
                    places.push((label, Some(n.name.clone())));
                }
            }
            None => places.push((format!("worker {} browser", w.id), None)),
        }
        for (label, node) in places {
            let opened = match &node {
                Some(n) => pool.open_on_node(w, &server.url(), &task, n).await,
                None => pool.open_session(w, &server.url(), &task).await,
            };
            let s = match opened {
                Ok(s) => s,
                Err(e) => {
                    item(&mut items, false, &label, format!("{} did not start there: {}", w.browser, e.message));
                    continue;
                }
            };
            let caps = s
                .client
                .execute_async(CALL_SCRIPT, vec![json!("capabilities"), json!({"adapter": s.adapter.as_str()})])
                .await
                .unwrap_or(Value::Null);
            pool.discard(s).await;
            let gpu = &caps["webgpu"];
            if gpu["supported"].as_bool() == Some(true) {
                item(&mut items, true, &label, format!("{}: webgpu {}", w.browser, describe_adapter(&gpu["adapter"])));
            } else {
                let required = needs_webgpu || w.adapter_choice == AdapterChoice::Hardware;
                let why = gpu["error"].as_str().unwrap_or("the page answered no capabilities");
                item(&mut items, !required, &label, format!("{}: no WebGPU adapter: {why}", w.browser));
            }
        }
    }
    pool.shutdown().await;
    server.stop();
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::driver::{free_port, DriverProcess};

    #[tokio::test]
    async fn a_remote_worker_is_ready_only_when_its_webdriver_says_so() {
        // a real chromedriver (no browser is started by /status)
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = crate::browser::driver::DriverSpec {
            kind: BrowserKind::Chromium,
            binary: Path::new("/usr/bin/chromedriver"),
            log_path: &dir.path().join("d.log"),
            config_home: dir.path(),
            env: Vec::new(),
        };
        let mut driver = DriverProcess::spawn(&spec).await.expect("chromedriver starts (scripts/setup.sh installs it)");
        let ok = probe_worker(&format!("{}/", driver.url), Duration::from_secs(5)).await;
        assert!(ok.as_deref().is_ok_and(|d| d.starts_with("ready")), "{ok:?}");
        driver.kill().await;

        // nothing listening
        let port = free_port().expect("free port");
        let e = probe_worker(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5)).await.unwrap_err();
        assert!(e.contains("/status") && e.to_lowercase().contains("refused") && !e.contains('\n'), "{e}");

        // an HTTP server that is not a WebDriver (the page server answers 404 to /status)
        let server = PageServer::start(tokio_util::sync::CancellationToken::new(), &tokio_util::task::TaskTracker::new())
            .await
            .expect("page server");
        let e = probe_worker(&server.url(), Duration::from_secs(5)).await.unwrap_err();
        assert!(e.contains("404") || e.contains("WebDriver"), "{e}");
        server.stop();
    }
}
