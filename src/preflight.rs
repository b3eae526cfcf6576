//! The pre-flight check (`stressctl --check-only`): everything a campaign needs, tried for real
//! before a night is spent on it, and a baseline of the idle host and of single-session latency.
//! Every remote worker is asked for its WebDriver `/status`; managed workers are covered by the
//! local chromedriver and browser probe.

use crate::browser::driver::DriverProcess;
use crate::browser::session;
use crate::browser::session::Endpoint;
use crate::config::{Config, TaskSpec, WorkerEndpoint};
use crate::guardian::{health_score, Metric, ResourceSample, Sampler};
use crate::metrics::{new_histogram, record_latency, LatencySummary};
use crate::tasks::{run_browser_op, server::PageServer, CALL_SCRIPT};
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
    let cpu = avg(Metric::Cpu);
    item(&mut p.items, true, "idle cpu", format!("{cpu:.1}% (informational; threshold {:.0}%)", t.cpu_percent));
    let confinement = confinement_items(&mut p.items, cfg.safety.reserve_percent);

    if cfg.needs_browser() {
        for w in &cfg.workers {
            if let WorkerEndpoint::Remote(url) = &w.endpoint {
                let (ok, detail) = match probe_worker(url, WORKER_PROBE_TIMEOUT).await {
                    // grid hook: a Selenium Grid also needs a slot for the browser; say what it has
                    Ok(d) => match crate::browser::grid::check(url, "chromium").await {
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

    let mut latency = new_histogram();
    let mut ops_ok = 0u32;
    let mut ops = 0u32;
    let mut caps = Value::Null;
    if cfg.needs_browser() {
        match browser_probe(cfg, profiles_dir, log_dir, stamp).await {
            Ok((c, lat)) => {
                caps = c;
                let gpu = &caps["webgpu"];
                if gpu["supported"].as_bool() == Some(true) {
                    let a = &gpu["adapter"];
                    item(
                        &mut p.items,
                        true,
                        "webgpu",
                        format!("adapter {} / {}", a["vendor"].as_str().unwrap_or("?"), a["architecture"].as_str().unwrap_or("?")),
                    );
                } else {
                    let needs = cfg.phases.iter().any(|ph| matches!(ph.task, TaskSpec::Webgpu { .. }));
                    item(&mut p.items, !needs, "webgpu", format!("not available: {}", gpu["error"].as_str().unwrap_or("no adapter")));
                }
                let nn = &caps["webnn"];
                let nn_text = if nn["supported"].as_bool() == Some(true) {
                    "supported".to_string()
                } else {
                    format!("not supported ({}) — informational", nn["error"].as_str().unwrap_or("navigator.ml is not available"))
                };
                item(&mut p.items, true, "webnn", nn_text);
                for r in lat {
                    ops += 1;
                    if let Ok(d) = r {
                        ops_ok += 1;
                        record_latency(&mut latency, d);
                    }
                }
                let l = LatencySummary::of(&latency);
                item(
                    &mut p.items,
                    ops_ok == ops && ops > 0,
                    "single-session ops",
                    format!("{ops_ok}/{ops} ok, p50 {:.1} ms, p95 {:.1} ms", l.p50, l.p95),
                );
            }
            Err(e) => item(&mut p.items, false, "browser launch", e),
        }
    }
    let success = (ops > 0).then(|| ops_ok as f64 / ops as f64);
    let last = idle.last().cloned().unwrap_or_default();
    let health = health_score(&last, &t, success);
    p.health = Some(health);
    let req = cfg.campaign.baseline_health_requirement;
    item(&mut p.items, health >= req, "health", format!("{health:.0} (requirement {req:.0})"));
    p.baseline = json!({
        "taken_at": crate::store::rfc3339(std::time::SystemTime::now()),
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
        "thresholds": {"memory_percent": t.memory_percent, "cpu_percent": t.cpu_percent, "disk_percent": t.disk_percent},
        "confinement": confinement,
    });
    p
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
        let resp = client.get(uri).await.map_err(|e| format!("GET {status_url}: {}", error_chain(&e)))?;
        let status = resp.status();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map_err(|e| format!("GET {status_url}: {}", error_chain(&e)))?
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
        Err(_) => Err(format!("no answer within {}", crate::config::fmt_duration(timeout))),
    }
}

/// An error and its causes on one line (hyper's own message is only "client error (Connect)").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
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

/// Starts chromedriver and one browser for real, asks the page for its capabilities and times 20
/// ops of the campaign's first browser task. Everything started is stopped before returning.
async fn browser_probe(cfg: &Config, profiles_dir: &Path, log_dir: &Path, stamp: &str) -> Result<(Value, Latencies), String> {
    let server = PageServer::start(tokio_util::sync::CancellationToken::new(), &tokio_util::task::TaskTracker::new())
        .await
        .map_err(|e| format!("cannot serve the test page on 127.0.0.1: {e}"))?;
    std::fs::create_dir_all(profiles_dir).map_err(|e| format!("{}: {e}", profiles_dir.display()))?;
    let mut driver = DriverProcess::spawn(
        &cfg.browser.chromedriver,
        &log_dir.join(format!("chromedriver_check_{stamp}.log")),
        &profiles_dir.join("xdg-config"),
    )
    .await
    .map_err(|e| e.to_string())?;
    let ep = Endpoint { url: driver.url.clone(), generation: 1, pgid: Some(driver.id.pid) };
    let task = cfg.phases.iter().map(|p| &p.task).find(|t| t.needs_browser()).cloned().unwrap_or(TaskSpec::Webgpu { matrix_size: 128 });
    let result = async {
        let s = session::open(&ep, "check", &cfg.browser, profiles_dir, &server.url(), &TaskSpec::Webgpu { matrix_size: 128 })
            .await
            .map_err(|e| format!("chromium did not start through chromedriver: {e}"))?;
        let caps = s.client.execute_async(CALL_SCRIPT, vec![json!("capabilities"), json!({})]).await.unwrap_or(Value::Null);
        let mut lat = Vec::new();
        if !matches!(task, TaskSpec::Page { .. }) {
            let size = match task {
                TaskSpec::Webgpu { matrix_size } => matrix_size,
                _ => 0,
            };
            for i in 0..20u32 {
                let t0 = Instant::now();
                let r = tokio::time::timeout(cfg.browser.op_timeout, run_browser_op(&s.client, &task, size, 1 + i / 10, None)).await;
                lat.push(match r {
                    Ok(Ok(_)) => Ok(t0.elapsed()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("timeout".into()),
                });
            }
        }
        s.discard().await;
        Ok((caps, lat))
    }
    .await;
    driver.kill().await;
    server.stop();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::driver::{free_port, DriverProcess};

    #[tokio::test]
    async fn a_remote_worker_is_ready_only_when_its_webdriver_says_so() {
        // a real chromedriver (no browser is started by /status)
        let dir = tempfile::tempdir().expect("tempdir");
        let mut driver = DriverProcess::spawn(Path::new("/usr/bin/chromedriver"), &dir.path().join("d.log"), dir.path())
            .await
            .expect("chromedriver starts (scripts/setup.sh installs it)");
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
