//! One WebDriver session: a browser (Chromium or Firefox) with a fresh profile directory under
//! the run's state dir, the test page loaded, and the identity of its browser process recorded.

use super::adapter::AdapterMode;
use super::driver::DriverProcess;
pub use super::grid_status::{node_profile_dir, run_tag};
use super::process::{find_browser, ProcId};
use crate::config::{BrowserConfig, BrowserKind, TaskSpec};
use crate::recovery::classify_cmd_error;
use crate::recovery::{FailureClass, OpError};
use fantoccini::wd::{Capabilities, TimeoutConfiguration};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The script handed to Execute Async Script to call into stressctl's test page: calls
/// `window.stressctl[fn](spec)` and always answers through the callback, also when the page is
/// missing or the promise rejects. The one way every layer calls the page over WebDriver.
pub const CALL_SCRIPT: &str = r#"const done = arguments[arguments.length - 1];
const fn = arguments[0], spec = arguments[1] || {};
const fail = (m) => done({ok: false, class: 'script_error', message: String(m)});
try {
  const s = window.stressctl;
  if (!s || typeof s[fn] !== 'function') {
    fail(s ? 'unknown stressctl function: ' + fn : 'test page not loaded');
  } else {
    Promise.resolve().then(() => s[fn](spec)).then(
      (r) => (r && typeof r === 'object') ? done(r) : fail('bad result: ' + String(r)),
      (e) => fail((e && e.stack) || e));
  }
} catch (e) { fail((e && e.stack) || e); }"#;

/// Where to reach a worker now: what a session needs of its worker (the pool hands it out, so
/// the pool depends on sessions and not the other way round).
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// WebDriver URL.
    pub url: String,
    /// Driver generation: a session opened on an older generation belongs to a dead driver.
    pub generation: u64,
    /// Process group of the local driver (managed workers).
    pub pgid: Option<u32>,
}
/// What a session is launched as: the browser, the adapter it is launched for, and the
/// settings it shares with every session.
#[derive(Clone, Copy)]
pub struct Launch<'a> {
    /// Chromium or Firefox.
    pub kind: BrowserKind,
    /// The WebGPU adapter the browser is launched for.
    pub adapter: AdapterMode,
    /// `[browser]`.
    pub cfg: &'a BrowserConfig,
}

/// The flags every Chromium gets: offline-safe, WebGPU and WebNN on (the adapter flags come
/// from [`AdapterMode::chromium_flags`]).
pub const MANDATORY_ARGS: &[&str] = &[
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--enable-unsafe-webgpu",
    "--enable-features=Vulkan,WebMachineLearningNeuralNetwork",
    "--disable-dev-shm-usage",
    "--no-default-browser-check",
    "--disable-crash-reporter",
    "--disable-breakpad",
];

static SESSION_SEQ: AtomicU64 = AtomicU64::new(0);

/// Whether we run as root (Chromium then needs `--no-sandbox`).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Firefox preferences every session gets: WebGPU on (also on Linux, where it is behind the
/// blocklist), and nothing that reaches beyond loopback (geckodriver's recommended preferences
/// already turn most of that off; these are the rest seen here).
pub const FIREFOX_PREFS: &[(&str, bool)] = &[
    ("dom.webgpu.enabled", true),
    ("gfx.webgpu.ignore-blocklist", true),
    ("browser.shell.checkDefaultBrowser", false),
    ("network.connectivity-service.enabled", false),
    ("network.captive-portal-service.enabled", false),
    ("network.dns.disablePrefetch", true),
    ("network.prefetch-next", false),
    ("browser.safebrowsing.malware.enabled", false),
    ("browser.safebrowsing.phishing.enabled", false),
    ("browser.safebrowsing.downloads.enabled", false),
    ("datareporting.healthreport.uploadEnabled", false),
    ("datareporting.policy.dataSubmissionEnabled", false),
    ("toolkit.telemetry.enabled", false),
    ("extensions.update.enabled", false),
    ("extensions.getAddons.cache.enabled", false),
    ("app.update.auto", false),
    ("browser.newtabpage.enabled", false),
    ("browser.startup.homepage_override.mstone", false),
];

/// Where a session's browser runs, as far as what it is sent goes.
#[derive(Clone, Copy, Debug)]
pub enum Placement<'a> {
    /// On this machine, under a driver stressctl runs: its own profile directory here, the
    /// configured browser binary, `--no-sandbox` when stressctl runs as root.
    Local {
        /// The session's fresh profile directory.
        profile_dir: &'a Path,
    },
    /// On a WebDriver stressctl does not run (a remote `url`, a Selenium Grid node): nothing of
    /// this machine is sent — no profile directory here, no binary, no environment; the node's
    /// own browser runs. Only the flags and preferences that make the test work travel, in
    /// `goog:chromeOptions.args` and `moz:firefoxOptions.prefs`. `node_profile` (Chromium on a
    /// Grid: [`node_profile_dir`], a path on the node naming the run) is the profile the node's
    /// Chromium is told to use, so that a session whose id stressctl never learnt can be found
    /// in the hub's `/status`; without it the node's driver makes a profile of its own.
    Remote {
        /// The profile directory on the node, if any.
        node_profile: Option<&'a str>,
    },
}

/// The Chromium command-line arguments for a session of `adapter`: with `user_data_dir` (a
/// local session) also that profile and `--no-sandbox` when stressctl runs as root; without, only
/// what any machine's Chromium needs for the test (a node sets its own sandbox and profile).
pub fn chromium_args(cfg: &BrowserConfig, adapter: AdapterMode, user_data_dir: Option<&Path>) -> Vec<String> {
    chromium_args_for(cfg, adapter, user_data_dir.map(|d| (d.display().to_string(), true)))
}

/// [`chromium_args`] with the profile as text, and whether the browser runs here (`--no-sandbox`
/// as root is a fact of this machine).
fn chromium_args_for(cfg: &BrowserConfig, adapter: AdapterMode, profile: Option<(String, bool)>) -> Vec<String> {
    let mut args: Vec<String> = MANDATORY_ARGS.iter().map(|s| s.to_string()).collect();
    args.extend(adapter.chromium_flags().iter().map(|s| s.to_string()));
    if cfg.headless {
        args.push("--headless=new".into());
    }
    if let Some((dir, here)) = profile {
        if here && running_as_root() {
            args.push("--no-sandbox".into());
        }
        args.push(format!("--user-data-dir={dir}"));
    }
    args.extend(cfg.extra_args.iter().cloned());
    args
}

/// The capabilities that open a session of `launch` placed as `place`.
pub fn capabilities(launch: &Launch<'_>, place: Placement<'_>) -> Capabilities {
    let mut caps = Capabilities::new();
    caps.insert("pageLoadStrategy".into(), json!("normal"));
    let (local, node_profile) = match place {
        Placement::Local { profile_dir } => (Some(profile_dir), None),
        Placement::Remote { node_profile } => (None, node_profile),
    };
    match launch.kind {
        BrowserKind::Chromium => {
            caps.insert("browserName".into(), json!("chrome"));
            let profile = match (local, node_profile) {
                (Some(d), _) => Some((d.display().to_string(), true)),
                (None, Some(p)) => Some((p.to_string(), false)),
                (None, None) => None,
            };
            let mut opts = json!({"args": chromium_args_for(launch.cfg, launch.adapter, profile)});
            if local.is_some() {
                opts["binary"] = json!(launch.cfg.chromium.display().to_string());
            }
            caps.insert("goog:chromeOptions".into(), opts);
        }
        BrowserKind::Firefox => {
            caps.insert("browserName".into(), json!("firefox"));
            let mut args = Vec::new();
            if launch.cfg.headless {
                args.push(json!("-headless"));
            }
            if let Some(dir) = local {
                args.extend([json!("-profile"), json!(dir.display().to_string())]);
            }
            args.extend(launch.cfg.extra_args.iter().map(|a| json!(a)));
            let prefs: serde_json::Map<String, serde_json::Value> = FIREFOX_PREFS.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            let mut opts = json!({"args": args, "prefs": prefs});
            if local.is_some() {
                opts["binary"] = json!(launch.cfg.firefox.display().to_string());
            }
            caps.insert("moz:firefoxOptions".into(), opts);
        }
    }
    caps
}

/// The origin (`http://host:port`) and host of `page_url` when browsers must be told to treat
/// it as a secure context: plain HTTP on an address other than loopback. WebGPU and WebNN exist
/// only in secure contexts, and an `http://` page is one only on loopback, so a node loading the
/// page from this machine's LAN address would find no `navigator.gpu` without it.
fn insecure_origin(page_url: &str) -> Option<(String, String)> {
    let u = url::Url::parse(page_url).ok().filter(|u| u.scheme() == "http")?;
    let host = u.host()?;
    if crate::config::addr::host_is_loopback(&host) {
        return None;
    }
    let name = match host {
        url::Host::Ipv6(ip) => ip.to_string(),
        other => other.to_string(),
    };
    Some((u.origin().ascii_serialization(), name))
}

/// Lets the browser treat the page's origin as secure when it is plain HTTP off loopback (see
/// [`insecure_origin`]): Chromium by `--unsafely-treat-insecure-origin-as-secure`, Firefox by its
/// `dom.securecontext.allowlist` pref. Only stressctl's own page origin is named.
pub fn trust_page_origin(caps: &mut Capabilities, page_url: &str) {
    let Some((origin, host)) = insecure_origin(page_url) else { return };
    if let Some(args) = caps.get_mut("goog:chromeOptions").and_then(|o| o.get_mut("args")).and_then(|a| a.as_array_mut()) {
        args.push(json!(format!("--unsafely-treat-insecure-origin-as-secure={origin}")));
    }
    if let Some(prefs) = caps.get_mut("moz:firefoxOptions").and_then(|o| o.get_mut("prefs")).and_then(|p| p.as_object_mut()) {
        prefs.insert("dom.securecontext.allowlist".into(), json!(host));
    }
}

/// A live session.
pub struct Session {
    /// The WebDriver client.
    pub client: fantoccini::Client,
    /// Worker it runs on.
    pub worker: String,
    /// Driver generation of the worker when opened (a restarted driver invalidates it).
    pub driver_generation: u64,
    /// Its profile directory here (removed when the session is discarded); None for a remote
    /// session, whose node keeps its own.
    pub user_data_dir: Option<PathBuf>,
    /// The browser's main process, when it runs on this machine (managed workers).
    pub browser: Option<ProcId>,
    /// Ops run in this session.
    pub ops: u64,
    /// Short id for logs (`s<N>`).
    pub label: String,
    /// The browser it runs.
    pub kind: BrowserKind,
    /// The adapter it was launched for.
    pub adapter: AdapterMode,
    /// The session's own driver, for browsers whose driver serves one session (geckodriver):
    /// it lives and dies with the session.
    pub own_driver: Option<DriverProcess>,
    /// Where it runs on a Selenium Grid worker (session id, node); None elsewhere.
    pub grid: Option<super::grid::GridPlace>,
    /// The URL it shows: the page its task runs in (stressctl's page, or a `page` task's own
    /// URL). A session kept for a later phase of another task is moved to that task's page
    /// ([`Session::show`]).
    pub page: String,
}

/// The page `task` runs in: a `page` task's own URL, else stressctl's page (`page_url`).
fn page_of<'a>(task: &'a TaskSpec, page_url: &'a str) -> &'a str {
    match task {
        TaskSpec::Page { url, .. } => url.as_str(),
        _ => page_url,
    }
}

/// Opens a session on `ep` and loads the page the task runs in.
pub async fn open(
    ep: &Endpoint,
    worker: &str,
    launch: &Launch<'_>,
    profiles_dir: &Path,
    page_url: &str,
    task: &TaskSpec,
) -> Result<Session, OpError> {
    open_with_caps(ep, worker, launch, profiles_dir, page_url, task, serde_json::Map::new(), false).await
}

/// [`open`] with `extra` capabilities in the new-session request (a Grid node target); `grid`:
/// the endpoint is a Selenium Grid hub (a Chromium there gets its profile at
/// [`node_profile_dir`]).
#[allow(clippy::too_many_arguments)]
pub async fn open_with_caps(
    ep: &Endpoint,
    worker: &str,
    launch: &Launch<'_>,
    profiles_dir: &Path,
    page_url: &str,
    task: &TaskSpec,
    extra: serde_json::Map<String, serde_json::Value>,
    grid: bool,
) -> Result<Session, OpError> {
    let cfg = launch.cfg;
    let (webdriver_url, driver_generation, local_driver_pgid) = (ep.url.as_str(), ep.generation, ep.pgid);
    let n = SESSION_SEQ.fetch_add(1, Ordering::Relaxed);
    let label = format!("s{n}");
    // a profile here only for a browser that runs here (a driver of ours)
    let user_data_dir = match local_driver_pgid {
        Some(_) => {
            let dir = profiles_dir.join(format!("{worker}-{label}-{}", std::process::id()));
            std::fs::create_dir_all(&dir)
                .map_err(|e| OpError::new(FailureClass::LaunchFailure, format!("cannot create {}: {e}", dir.display())))?;
            Some(dir)
        }
        None => None,
    };
    let mut caps = match &user_data_dir {
        Some(dir) => capabilities(launch, Placement::Local { profile_dir: dir }),
        None => {
            let node_profile = grid.then(|| node_profile_dir(&run_tag(profiles_dir), &format!("{worker}-{label}")));
            capabilities(launch, Placement::Remote { node_profile: node_profile.as_deref() })
        }
    };
    caps.extend(extra);
    trust_page_origin(&mut caps, page_url);
    let connect = async {
        if webdriver_url.starts_with("https://") {
            let mut b = fantoccini::ClientBuilder::rustls()
                .map_err(|e| OpError::new(FailureClass::ConnectionFailure, format!("TLS setup for {webdriver_url}: {e}")))?;
            b.capabilities(caps);
            b.connect(webdriver_url).await
        } else {
            let mut b = fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            b.capabilities(caps);
            b.connect(webdriver_url).await
        }
        .map_err(|e| classify_new_session_error(webdriver_url, e))
    };
    let client = match tokio::time::timeout(cfg.session_timeout, connect).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            remove_profile(user_data_dir.as_deref());
            return Err(e);
        }
        Err(_) => {
            // A browser may have been started; reap it by its profile marker in our driver's group.
            if let (Some(pgid), Some(dir)) = (local_driver_pgid, &user_data_dir) {
                if let Some(b) = find_browser(pgid, dir) {
                    b.signal(libc::SIGKILL);
                }
            }
            remove_profile(user_data_dir.as_deref());
            return Err(OpError::new(
                FailureClass::LaunchFailure,
                format!("no session from {webdriver_url} within {:?}", cfg.session_timeout),
            ));
        }
    };
    let browser = local_driver_pgid.zip(user_data_dir.as_deref()).and_then(|(pgid, dir)| find_browser(pgid, dir));
    let s = Session {
        client,
        worker: worker.to_string(),
        driver_generation,
        user_data_dir,
        browser,
        ops: 0,
        label,
        kind: launch.kind,
        adapter: launch.adapter,
        own_driver: None,
        grid: None,
        page: page_of(task, page_url).to_string(),
    };
    let setup = async {
        s.client
            .update_timeouts(TimeoutConfiguration::new(Some(cfg.op_timeout), Some(cfg.session_timeout), Some(Duration::ZERO)))
            .await
            .map_err(classify_cmd_error)?;
        s.client.goto(&s.page).await.map_err(classify_cmd_error)
    };
    if let Err(e) = setup.await {
        s.discard().await;
        return Err(OpError::new(e.class, format!("loading the test page: {}", e.message)));
    }
    Ok(s)
}

fn classify_new_session_error(url: &str, e: fantoccini::error::NewSessionError) -> OpError {
    use fantoccini::error::NewSessionError as E;
    let class = match &e {
        E::Failed(_) | E::FailedC(_) | E::Lost(_) | E::BadWebdriverUrl(_) => FailureClass::ConnectionFailure,
        _ => FailureClass::LaunchFailure,
    };
    OpError::new(class, format!("opening a session on {url}: {e}"))
}

fn remove_profile(dir: Option<&Path>) {
    let Some(dir) = dir else { return };
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::debug!(target: "stressctl::browser", dir = %dir.display(), "cannot remove profile: {e}");
        }
    }
}

impl Session {
    /// Moves a session kept from an earlier phase to the page `task` runs in, when it shows
    /// another (a `page` task's URL before a `webgpu` phase, or the reverse): an op would
    /// otherwise run in the wrong page and fail as "test page not loaded".
    pub async fn show(&mut self, page_url: &str, task: &TaskSpec) -> Result<(), OpError> {
        let url = page_of(task, page_url);
        if self.page == url {
            return Ok(());
        }
        self.client.goto(url).await.map_err(|e| {
            let e = classify_cmd_error(e);
            OpError::new(e.class, format!("loading the test page: {}", e.message))
        })?;
        self.page = url.to_string();
        Ok(())
    }

    /// Ends the session: asks the driver to quit the browser (bounded wait), kills the browser
    /// process if it is still there, and removes the profile directory.
    pub async fn discard(self) {
        let Session { client, user_data_dir, browser, label, worker, own_driver, .. } = self;
        let closed = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
        if !matches!(closed, Ok(Ok(()))) {
            tracing::debug!(target: "stressctl::browser", worker, session = label, "session did not close cleanly");
        }
        if let Some(b) = browser {
            // Give the browser a moment to exit after the driver's quit, then make sure.
            for _ in 0..40 {
                if !b.alive() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            if b.alive() {
                b.signal(libc::SIGKILL);
            }
        }
        if let Some(mut d) = own_driver {
            d.kill().await;
        }
        remove_profile(user_data_dir.as_deref());
    }
}

/// The GPU Chromium names on `chrome://gpu` (the ANGLE/GL renderer line), which the WebGPU
/// adapter's own info often leaves out. Leaves the session on `chrome://gpu`: load the page
/// afterwards. None where the browser has no such page or it names nothing.
pub async fn chromium_gpu_name(client: &fantoccini::Client) -> Option<String> {
    client.goto("chrome://gpu").await.ok()?;
    // chrome://gpu fills itself in from script, inside shadow roots: poll its text for a while
    // the page is a table of text cells ("GL_RENDERER", ":", "ANGLE (…)") inside shadow roots
    const SCRIPT: &str = r#"const done = arguments[arguments.length - 1];
const cells = (e, out) => { if (e.nodeName === 'STYLE' || e.nodeName === 'SCRIPT') return out;
  if (e.shadowRoot) cells(e.shadowRoot, out);
  for (const c of e.childNodes) { if (c.nodeType === 3) { const t = c.textContent.trim(); if (t) out.push(t); } else cells(c, out); }
  return out; };
let tries = 0;
const label = (x) => !x || x === ':' || /^GL_[A-Z_]+$/.test(x);
const look = () => { const t = cells(document.documentElement, []);
  const i = t.indexOf('GL_RENDERER');
  if (i >= 0) {
    const v = t[i + 1] === ':' ? t[i + 2] : t[i + 1];
    if (!label(v)) return done(v);
    // the row comes before its value: with the hardware flags the GPU process fills it in up to a
    // few seconds later (an NVIDIA H200 showed the next label, GL_VERSION, in its place)
    if (++tries <= 100) return setTimeout(look, 50);
    // still none: the active GPU's line, "VENDOR= 0x10de [NVIDIA], DEVICE=0x2335 [NVIDIA H200], … *ACTIVE*"
    const g = t.find((x) => /^VENDOR=/.test(x) && /\*ACTIVE\*/.test(x)) || t.find((x) => /^VENDOR=/.test(x));
    if (g) {
      const d = /DEVICE=\s*(0x[0-9a-fA-F]+)(?:\s*\[([^\]]+)\])?/.exec(g), v = /VENDOR=\s*(0x[0-9a-fA-F]+)(?:\s*\[([^\]]+)\])?/.exec(g);
      if (d && d[2]) return done(d[2]);
      const names = {'0x10de': 'NVIDIA', '0x1002': 'AMD', '0x8086': 'Intel'};
      if (v) return done(`PCI ${v[1]}:${d ? d[1] : '?'}` + (names[v[1].toLowerCase()] ? ` (${names[v[1].toLowerCase()]})` : ''));
    }
    return done(null);
  }
  if (++tries > 100) return done(null);
  setTimeout(look, 50); };
look();"#;
    let v = client.execute_async(SCRIPT, vec![]).await.ok()?;
    v.as_str().map(str::to_string).filter(|s| !s.is_empty())
}

/// Asks the test page (already loaded) whether the browser gives the adapter it was launched
/// for; Err carries the page's reason. Used to settle `webgpu_adapter = "auto"`.
pub async fn probe_adapter(client: &fantoccini::Client, mode: AdapterMode) -> Result<(), String> {
    let args = vec![serde_json::json!("adapter"), serde_json::json!({"adapter": mode.as_str()})];
    let v = client.execute_async(CALL_SCRIPT, args).await.map_err(|e| e.to_string())?;
    match v.get("ok").and_then(serde_json::Value::as_bool) {
        Some(true) => Ok(()),
        _ => Err(crate::fmt::ellipsize(
            v.get("message").and_then(serde_json::Value::as_str).unwrap_or("the page answered without `ok`"),
            500,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(kind: BrowserKind, cfg: &BrowserConfig) -> Launch<'_> {
        Launch { kind, adapter: AdapterMode::Hardware, cfg }
    }

    #[test]
    fn a_local_session_gets_its_profile_and_binary_a_remote_one_nothing_of_this_machine() {
        let cfg = BrowserConfig { extra_args: vec!["--lang=en".into()], ..BrowserConfig::default() };
        let dir = Path::new("/var/lib/stressctl/runs/r1/profiles/local-s1-42");
        let local =
            serde_json::to_value(capabilities(&launch(BrowserKind::Chromium, &cfg), Placement::Local { profile_dir: dir })).unwrap();
        let o = &local["goog:chromeOptions"];
        assert_eq!(o["binary"], json!(cfg.chromium.display().to_string()));
        assert!(o["args"].as_array().unwrap().contains(&json!(format!("--user-data-dir={}", dir.display()))), "{o}");

        let remote =
            serde_json::to_value(capabilities(&launch(BrowserKind::Chromium, &cfg), Placement::Remote { node_profile: None })).unwrap();
        let text = remote.to_string();
        assert!(!text.contains("/var/lib") && !text.contains(&cfg.chromium.display().to_string()), "no local path: {text}");
        assert!(remote["goog:chromeOptions"].get("binary").is_none(), "the node's own browser: {text}");
        let args: Vec<&str> = remote["goog:chromeOptions"]["args"].as_array().unwrap().iter().filter_map(|a| a.as_str()).collect();
        for flag in ["--enable-unsafe-webgpu", "--use-webgpu-adapter=default", "--lang=en"] {
            assert!(args.contains(&flag), "{flag} in {args:?}");
        }
        assert!(!args.iter().any(|a| a.starts_with("--user-data-dir") || *a == "--no-sandbox"), "{args:?}");
        // on a Grid: a profile on the node that names the run, still nothing of this machine
        let node = node_profile_dir("stressctl-r1", "grid-s3");
        let grid = capabilities(&launch(BrowserKind::Chromium, &cfg), Placement::Remote { node_profile: Some(&node) });
        let grid = serde_json::to_value(grid).unwrap();
        let args = grid["goog:chromeOptions"]["args"].as_array().unwrap();
        assert!(args.contains(&json!("--user-data-dir=/tmp/stressctl-r1/grid-s3")), "{grid}");
        assert!(!args.contains(&json!("--no-sandbox")) && grid["goog:chromeOptions"].get("binary").is_none(), "{grid}");

        let ff_local =
            serde_json::to_value(capabilities(&launch(BrowserKind::Firefox, &cfg), Placement::Local { profile_dir: dir })).unwrap();
        assert!(ff_local["moz:firefoxOptions"]["args"].as_array().unwrap().contains(&json!(dir.display().to_string())));
        assert_eq!(ff_local["moz:firefoxOptions"]["binary"], json!(cfg.firefox.display().to_string()));
        let ff = serde_json::to_value(capabilities(&launch(BrowserKind::Firefox, &cfg), Placement::Remote { node_profile: None })).unwrap();
        let o = &ff["moz:firefoxOptions"];
        assert!(o.get("binary").is_none(), "{ff}");
        assert!(!o["args"].as_array().unwrap().contains(&json!("-profile")), "{ff}");
        assert_eq!(o["prefs"]["dom.webgpu.enabled"], true);
        assert_eq!(o["prefs"]["gfx.webgpu.ignore-blocklist"], true);
        assert!(!ff.to_string().contains("/var/lib"), "{ff}");
    }

    #[test]
    fn only_a_plain_http_page_off_loopback_is_named_a_secure_origin() {
        assert_eq!(insecure_origin("http://10.213.7.3:40123/abc/"), Some(("http://10.213.7.3:40123".into(), "10.213.7.3".into())));
        assert_eq!(insecure_origin("http://[fd00::3]:8099/p/"), Some(("http://[fd00::3]:8099".into(), "fd00::3".into())));
        for secure in ["http://127.0.0.1:4000/p/", "http://localhost:4000/p/", "http://[::1]:4000/p/", "https://lab.example/p/", ""] {
            assert_eq!(insecure_origin(secure), None, "{secure}");
        }
        let cfg = BrowserConfig::default();
        let page = "http://10.213.7.3:40123/0123abcd/";
        let mut chromium = capabilities(&launch(BrowserKind::Chromium, &cfg), Placement::Remote { node_profile: None });
        trust_page_origin(&mut chromium, page);
        let args = serde_json::to_value(&chromium).unwrap()["goog:chromeOptions"]["args"].clone();
        // the origin only: never the run's secret path prefix
        assert!(args.as_array().unwrap().contains(&json!("--unsafely-treat-insecure-origin-as-secure=http://10.213.7.3:40123")), "{args}");
        assert!(!args.to_string().contains("0123abcd"), "{args}");
        let mut firefox = capabilities(&launch(BrowserKind::Firefox, &cfg), Placement::Remote { node_profile: None });
        trust_page_origin(&mut firefox, page);
        assert_eq!(serde_json::to_value(&firefox).unwrap()["moz:firefoxOptions"]["prefs"]["dom.securecontext.allowlist"], "10.213.7.3");
        let mut local = capabilities(&launch(BrowserKind::Chromium, &cfg), Placement::Remote { node_profile: None });
        let before = serde_json::to_value(&local).unwrap();
        trust_page_origin(&mut local, "http://127.0.0.1:40123/p/");
        assert_eq!(serde_json::to_value(&local).unwrap(), before, "loopback is secure already");
    }

    #[test]
    fn the_run_tag_names_the_run_not_a_path() {
        assert_eq!(run_tag(Path::new("/state/runs/20261205T211000Z-ab12/profiles")), "stressctl-20261205T211000Z-ab12");
    }
}
