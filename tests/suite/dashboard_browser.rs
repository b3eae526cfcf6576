//! The dashboard and `report.html` in real headless Chromium, driven over chromedriver with the
//! project's WebDriver stack (fantoccini, `DriverProcess`): the pages load without a console
//! error, their charts have data (painted canvases, SVG rects) and change while the campaign
//! runs, and no request of theirs leaves loopback: every request the page makes is read from
//! chromedriver's performance log (the DevTools `Network.requestWillBeSent` events of the tab).
//! Chromium's own background traffic (component updates, time, accounts: it has some whatever
//! the flags) goes to a proxy that answers nothing, so the test sends nothing off the machine.
//! A campaign on Chromium and Firefox side by side gets its per-browser charts, live and in the
//! report. Screenshots go to `<target>/tmp/dashboard-screenshots/`.

use crate::common::exporter::Exporter;
use crate::common::http;

use crate::common::*;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use serde_json::{json, Value};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stressctl::browser::driver::DriverProcess;
use stressctl::browser::session::{running_as_root, MANDATORY_ARGS};

/// A proxy that answers nothing (a sink for Chromium's own requests) and records the first line
/// of every request it gets.
fn recording_proxy() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
            let n = (&conn).read(&mut buf).unwrap_or(0);
            let line = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_string();
            s.lock().unwrap().push(line);
        }
    });
    (addr, seen)
}

/// `POST /session/{id}/se/log` (chromedriver): the `browser` (console) or `performance`
/// (DevTools events) log since the last call.
#[derive(Debug)]
struct GetLog(&'static str);

impl WebDriverCompatibleCommand for GetLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or("")))
    }
    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(json!({"type": self.0}).to_string()))
    }
}

/// Every URL the page requested since the last call (from the performance log).
async fn requested_urls(c: &fantoccini::Client) -> Vec<String> {
    let logs = c.issue_cmd(GetLog("performance")).await.expect("performance log");
    let mut out = Vec::new();
    for e in logs.as_array().cloned().unwrap_or_default() {
        let Ok(m) = serde_json::from_str::<Value>(e["message"].as_str().unwrap_or("")) else { continue };
        let p = &m["message"]["params"];
        // the browser's own pages (the new tab page before the first navigation) are not ours
        let doc = p["documentURL"].as_str().unwrap_or("");
        if m["message"]["method"] == "Network.requestWillBeSent" && !doc.starts_with("chrome://") && !doc.starts_with("about:") {
            out.push(p["request"]["url"].as_str().unwrap_or("").to_string());
        }
    }
    out
}

/// Asserts the page requested only URLs under `prefix` (or inline `data:`), and something.
async fn assert_requests_local(c: &fantoccini::Client, prefix: &str) {
    let urls = requested_urls(c).await;
    assert!(!urls.is_empty(), "no request seen in the performance log");
    for u in &urls {
        assert!(u.starts_with(prefix) || u.starts_with("data:"), "the page requested {u}, not under {prefix}");
    }
}

fn screenshots_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// What the page has drawn: painted canvases (any non-transparent pixel), SVG rects, a hash of
/// the canvases' pixels, the URLs it loaded, and the dashboard's end marker.
const PROBE: &str = r#"
const cs = Array.from(document.querySelectorAll('.chart canvas'));
let painted = 0, hash = 0;
for (const c of cs) {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let any = false;
  for (let i = 3; i < d.length; i += 16) { if (d[i] !== 0) { any = true; hash = (hash * 31 + d[i - 3] + i) >>> 0; } }
  if (any) painted++;
}
return {
  canvases: cs.length, painted: painted, hash: hash,
  rects: document.querySelectorAll('#timeline svg rect').length,
  breakerRows: document.querySelectorAll('#breakers tr[data-key]').length,
  nodeRows: Array.from(document.querySelectorAll('#nodes tr[data-node]')).map(r => r.dataset.node + ' ' + r.dataset.state),
  nodeLines: Array.from(document.querySelectorAll('#nodes svg.spark path')).filter(p => (p.getAttribute('d') || '').includes('L')).length,
  ended: document.body.dataset.ended || null,
  state: (document.getElementById('state-badge') || {}).textContent || null,
  resources: performance.getEntriesByType('resource').map(e => e.name).concat([location.href]),
};
"#;

/// A chromedriver of the sandbox and a headless Chromium session on it, with the project's
/// mandatory flags, every request through `proxy`, and browser and performance logs kept.
async fn open_browser(sb: &Sandbox, log: &str, profile: &str, window: &str, proxy: SocketAddr) -> (DriverProcess, fantoccini::Client) {
    let xdg = sb.root.join("xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    let spec = stressctl::browser::driver::DriverSpec {
        kind: stressctl::config::BrowserKind::Chromium,
        binary: Path::new("/usr/bin/chromedriver"),
        log_path: &sb.logs.join(log),
        config_home: &xdg,
        env: Vec::new(),
    };
    let driver = DriverProcess::spawn(&spec).await.expect("chromedriver");
    let mut args: Vec<String> = MANDATORY_ARGS.iter().map(|s| s.to_string()).collect();
    args.extend(["--headless=new".into(), format!("--window-size={window}"), format!("--proxy-server=http://{proxy}")]);
    args.push(format!("--user-data-dir={}", sb.root.join(profile).display()));
    if running_as_root() {
        args.push("--no-sandbox".into());
    }
    let mut caps = Capabilities::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), json!({"binary": "/usr/bin/chromium", "args": args}));
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL", "performance": "ALL"}));
    let mut b = fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
    b.capabilities(caps);
    let c = b.connect(&driver.url).await.expect("session");
    (driver, c)
}

async fn probe(c: &fantoccini::Client) -> Value {
    c.execute(PROBE, vec![]).await.expect("probe")
}

async fn wait_probe(c: &fantoccini::Client, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = probe(c).await;
        if ok(&p) {
            return p;
        }
        assert!(Instant::now() < deadline, "{what}: {p}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn console_errors(c: &fantoccini::Client) -> Vec<Value> {
    let logs = c.issue_cmd(GetLog("browser")).await.expect("console log");
    logs.as_array().cloned().unwrap_or_default().into_iter().filter(|e| e["level"] == "SEVERE").collect()
}

async fn save(c: &fantoccini::Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let path = screenshots_dir().join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

fn all_local(p: &Value, prefix: &str) {
    for u in p["resources"].as_array().unwrap() {
        let u = u.as_str().unwrap();
        assert!(u.starts_with(prefix), "{u} is not under {prefix}");
    }
}

#[test]
fn dashboard_and_report_render_in_chromium_without_leaving_loopback() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("dash-browser");
    // a worker watched through a real node_exporter: the overview's node view has its row and
    // sparkline (synthetic ops run on no worker, so nothing here drains it)
    let exporter = std::path::Path::new(Exporter::BIN).exists().then(Exporter::start);
    let watched = exporter
        .as_ref()
        .map(|e| format!("\n[[workers]]\nid = \"local\"\nmanaged = true\nnode_metrics = \"{}\"\n", e.url("127.0.0.1")))
        .unwrap_or_default();
    let cfg = sb.write(
        "dash.toml",
        &format!(
            "{}{}\n[breaker]\nrecovery_timeout = \"300ms\"\nmax_recovery_timeout = \"1s\"\n{watched}{}{}",
            header("dash", "").replace("[safety]\n", "[safety]\nsample_interval = \"500ms\"\n"),
            synthetic_task("5ms", 0.3),
            phase("one", "10s", 2, ""),
            phase("two", "10s", 2, "")
        ),
    );
    let mut cmd = sb.launch(&cfg);
    cmd.args(["--dashboard", "127.0.0.1:0"]);
    let child = Running::spawn(cmd, Some(&sb.root));
    let addr = dashboard_addr(&child);
    let (proxy, proxied) = recording_proxy();
    let before = snapshot();

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report_path = rt.block_on(async {
        let (mut driver, c) = open_browser(&sb, "chromedriver-test.log", "profile", "1400,1800", proxy).await;

        // the overview, live: painted charts that change
        let base = format!("http://{addr}/");
        c.goto(&base).await.unwrap();
        let first =
            wait_probe(&c, "overview charts painted", |p| p["canvases"].as_u64() >= Some(3) && p["painted"].as_u64() >= Some(3)).await;
        assert_eq!(first["ended"], "no", "{first}");
        save(&c, "overview-live.png").await;
        let later = wait_probe(&c, "overview charts change", |p| p["hash"] != first["hash"]).await;
        all_local(&later, &base);
        if exporter.is_some() {
            let n = wait_probe(&c, "the watched node's row and sparkline", |p| p["nodeLines"].as_u64() >= Some(2)).await;
            assert_eq!(n["nodeRows"], json!(["local/local watched"]), "{n}");
            save(&c, "overview-nodes.png").await;
        } else {
            eprintln!("node view not checked: {} is not installed (apt-get install prometheus-node-exporter)", Exporter::BIN);
        }
        assert_requests_local(&c, &base).await;

        // the breakers page: table rows and a timeline
        c.goto(&format!("{base}circuit-breakers")).await.unwrap();
        let br =
            wait_probe(&c, "breaker table and timeline", |p| p["breakerRows"].as_u64() >= Some(1) && p["rects"].as_u64() >= Some(1)).await;
        save(&c, "circuit-breakers-live.png").await;
        all_local(&br, &base);
        // the end of the campaign: the page says so instead of going blank
        let end = wait_probe(&c, "campaign ended shown", |p| p["ended"] == "yes").await;
        assert!(end["state"].as_str().is_some_and(|s| s == "PASSED" || s == "FAILED"), "{end}");
        save(&c, "circuit-breakers-ended.png").await;
        assert_requests_local(&c, &base).await;
        let errs = console_errors(&c).await;
        // the stressctl process exits after the campaign: the pages' lost polls are not errors
        // of the dashboard; anything else is
        let errs: Vec<&Value> = errs.iter().filter(|e| !e["message"].as_str().unwrap_or("").contains("ERR_CONNECTION_REFUSED")).collect();
        assert!(errs.is_empty(), "console errors: {errs:?}");
        c.close().await.unwrap();
        driver.kill().await;
        sb.campaign_dir().join("report.html")
    });
    let out = child.finish(Duration::from_secs(60));
    assert!(matches!(out.code(), Some(0 | 1)), "{}", out.describe());

    // report.html opened from disk
    rt.block_on(async {
        let (mut driver, c) = open_browser(&sb, "chromedriver-test2.log", "profile2", "1400,3000", proxy).await;
        let url = format!("file://{}", report_path.display());
        c.goto(&url).await.unwrap();
        let p = wait_probe(&c, "report charts", |p| {
            p["painted"].as_u64() >= Some(3) && p["rects"].as_u64() >= Some(1) && p["breakerRows"].as_u64() >= Some(1)
        })
        .await;
        assert_eq!(p["ended"], "yes", "{p}");
        all_local(&p, "file://");
        assert_requests_local(&c, "file://").await;
        save(&c, "report.png").await;
        let errs = console_errors(&c).await;
        assert!(errs.is_empty(), "console errors in report.html: {errs:?}");
        c.close().await.unwrap();
        driver.kill().await;
    });

    drop(exporter);
    assert_no_orphans(&before, &sb.root);
    let sunk = proxied.lock().unwrap().len();
    eprintln!("Chromium's own background requests caught by the sink proxy: {sunk}");
}

#[test]
fn api_circuit_breakers_shows_a_killed_worker_open_while_the_campaign_runs() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("dash-killed");
    let cfg = killed_worker_campaign(&sb);
    let before = snapshot();
    let mut cmd = sb.launch(&cfg);
    cmd.args(["--dashboard", "127.0.0.1:0"]);
    let child = Running::spawn(cmd, Some(&sb.root));
    let addr = dashboard_addr(&child);
    let mut seen = None;
    let open = wait_until(Duration::from_secs(90), || {
        let r = http::get(addr, "/api/circuit-breakers");
        if r.status != 200 {
            return false;
        }
        let b = r.json();
        let st = b["workers"]["w1"]["state"].as_str().unwrap_or("").to_string();
        if st == "open" {
            seen = Some(b);
            return true;
        }
        false
    });
    assert!(open, "worker w1 never showed open in /api/circuit-breakers\n{}", child.stdout_so_far());
    let b = seen.unwrap();
    assert!(b["aggregate"]["open"].as_u64().unwrap_or(0) >= 1, "{b}");
    // seen: the rest of the phase would show nothing more, so stop it now
    run(sb.cmd(["emergency-stop"]), Duration::from_secs(60)).expect_code(0);
    let out = child.finish(Duration::from_secs(120));
    assert_no_orphans(&before, &sb.root);
    assert_eq!(out.code(), Some(1), "stopped by emergency-stop: {}", out.describe());
}

/// The per-browser charts of a campaign that ran on Chromium and Firefox side by side: shown,
/// painted, one line per browser, live on the overview and in `report.html`.
const BROWSER_PROBE: &str = r#"
const box = document.getElementById('by-browser');
const painted = (id) => Array.from(document.querySelectorAll('#' + id + ' canvas')).filter((c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < d.length; i += 16) if (d[i] !== 0) return true;
  return false;
}).length;
return {
  shown: !!box && !box.classList.contains('hidden'),
  ops: painted('c-browser-ops'), p95: painted('c-browser-p95'),
  legend: Array.from(document.querySelectorAll('#c-browser-ops .u-legend .u-label')).map((e) => e.textContent),
};
"#;

#[test]
fn per_browser_charts_are_drawn_for_a_chromium_and_firefox_campaign() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("dash-2browsers");
    let workers = "\n[[workers]]\nid = \"c1\"\nmanaged = true\n\n[[workers]]\nid = \"ff\"\nmanaged = true\nbrowser = \"firefox\"\n";
    let lenient = "browsers = [\"chromium\", \"firefox\"]\nstress_level = \"low\"\n[phases.criteria]\nmax_p95 = \"30s\"";
    let cfg = sb.write(
        "two.toml",
        &format!(
            "{}{}{}{}",
            header("two", "").replace("[safety]\n", "[safety]\nsample_interval = \"500ms\"\n"),
            webgpu_task(32),
            workers,
            phase("both", "12s", 2, lenient)
        ),
    );
    let before = snapshot();
    let mut cmd = sb.launch(&cfg);
    cmd.args(["--dashboard", "127.0.0.1:0"]);
    let child = Running::spawn(cmd, Some(&sb.root));
    let addr = dashboard_addr(&child);
    let (proxy, _) = recording_proxy();
    let browsers_drawn = |p: &Value| {
        let legend = p["legend"].to_string();
        p["shown"] == true
            && p["ops"].as_u64() >= Some(1)
            && p["p95"].as_u64() >= Some(1)
            && legend.contains("chromium")
            && legend.contains("firefox")
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report_path = rt.block_on(async {
        let (mut driver, c) = open_browser(&sb, "chromedriver-2b.log", "profile", "1400,2200", proxy).await;
        c.goto(&format!("http://{addr}/")).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let p = c.execute(BROWSER_PROBE, vec![]).await.expect("probe");
            if browsers_drawn(&p) {
                break;
            }
            assert!(Instant::now() < deadline, "per-browser charts on the live overview: {p}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        save(&c, "overview-two-browsers.png").await;
        c.close().await.unwrap();
        driver.kill().await;
        sb.campaign_dir().join("report.html")
    });
    let out = child.finish(Duration::from_secs(90));
    out.expect_code(0);
    rt.block_on(async {
        let (mut driver, c) = open_browser(&sb, "chromedriver-2b2.log", "profile2", "1400,3000", proxy).await;
        c.goto(&format!("file://{}", report_path.display())).await.unwrap();
        let p = c.execute(BROWSER_PROBE, vec![]).await.expect("probe");
        assert!(browsers_drawn(&p), "per-browser charts in report.html: {p}");
        save(&c, "report-two-browsers.png").await;
        c.close().await.unwrap();
        driver.kill().await;
    });
    assert_no_orphans(&before, &sb.root);
}
