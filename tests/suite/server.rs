//! The test page server (`[server]`): bad addresses and a server that a worker on another machine
//! could not reach are exit 2 naming the key (no browser); a real Chromium `model` campaign is
//! served under the run's secret prefix and content-hashed paths, refuses everything else with 404,
//! and the prefix appears in no report, log, event or store.

use crate::common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

fn webgpu_config(name: &str, extra: &str) -> String {
    format!("{}{}{}{extra}", header(name, ""), webgpu_task(64), phase("p", "2s", 1, ""))
}

/// `check` and `launch` of `cfg` exit 2 and name `key` (and `why`) on stderr; nothing is run.
fn refused(sb: &Sandbox, cfg: &Path, key: &str, why: &str) {
    for cmd in [sb.cmd(["check".into(), "--config".into(), cfg.as_os_str().to_owned()]), sb.launch(cfg)] {
        let out = run(cmd, T);
        out.expect_code(2);
        let text = format!("{}{}", out.stdout, out.stderr);
        assert!(text.contains(key) && text.contains(why), "{key} / {why}: {}", out.describe());
    }
    assert!(sb.campaign_dirs().iter().all(|d| !d.join("campaign_report.json").exists()), "nothing ran");
}

#[test]
fn a_worker_on_another_machine_is_refused_a_loopback_server_and_bad_addresses_name_their_key() {
    let sb = Sandbox::new("server-config");
    // TEST-NET-1: never contacted (the refusal comes first)
    let remote = "[[workers]]\nid = \"far\"\nurl = \"http://192.0.2.10:4444\"\n";
    let cfg = sb.write("remote.toml", &webgpu_config("remote", remote));
    refused(&sb, &cfg, "server.listen", "worker far (http://192.0.2.10:4444) is on another machine");
    let cfg = sb.write("remote-lo.toml", &webgpu_config("remote-lo", &format!("[server]\nlisten = \"127.0.0.1:8099\"\n{remote}")));
    refused(&sb, &cfg, "server.listen", "\"127.0.0.1:8099\"");
    let cfg = sb.write(
        "remote-adv.toml",
        &webgpu_config("remote-adv", &format!("[server]\nlisten = \"0.0.0.0:0\"\nadvertise = \"http://localhost:8099\"\n{remote}")),
    );
    refused(&sb, &cfg, "server.advertise", "host it can reach");
    for (text, key) in [
        ("listen = \"0.0.0.0\"", "server.listen"),
        ("listen = \"somehost:80\"", "server.listen"),
        ("advertise = \"192.0.2.1:8099\"", "server.advertise"),
        ("advertise = \"http://h:8099/?x=1\"", "server.advertise"),
    ] {
        let cfg = sb.write("bad.toml", &webgpu_config("bad", &format!("[server]\n{text}\n")));
        refused(&sb, &cfg, key, "");
    }
    // a reachable setting passes the config: --print-config shows it back
    let ok = sb.write(
        "ok.toml",
        &webgpu_config("ok", &format!("[server]\nlisten = \"0.0.0.0:0\"\nadvertise = \"http://192.0.2.1:8099\"\n{remote}")),
    );
    let out = run(sb.cmd(["check".into(), "--print-config".into(), "--config".into(), ok.into_os_string()]), T);
    out.expect_code(0);
    assert!(out.stdout.contains("[server]") && out.stdout.contains("advertise = \"http://192.0.2.1:8099\""), "{}", out.describe());
    // `page` tasks open the user's URL, not stressctl's page: a remote worker needs no server
    let page = format!(
        "{}\n[task]\nkind = \"page\"\nurl = \"http://192.0.2.30/\"\nscript = \"arguments[0]({{ok: true}})\"\n{}{remote}",
        header("page", ""),
        phase("p", "2s", 1, "")
    );
    let page = sb.write("page.toml", &page);
    let out = run(sb.cmd(["check".into(), "--print-config".into(), "--config".into(), page.into_os_string()]), T);
    out.expect_code(0);
}

/// A hub on loopback whose `/status` lists `nodes` (answers every request with it) until dropped.
struct Hub {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hub {
    fn serve(status: Value) -> Hub {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let halt = stop.clone();
        let body = status.to_string();
        let thread = std::thread::spawn(move || {
            while !halt.load(std::sync::atomic::Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let mut buf = [0u8; 4096];
                        let _ = s.read(&mut buf);
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Hub { port, stop, thread: Some(thread) }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_grid_whose_nodes_are_elsewhere_is_refused_a_loopback_server_at_check_and_launch() {
    let sb = Sandbox::new("server-grid");
    let node = |uri: &str, name: &str| {
        serde_json::json!({"id": name, "uri": uri, "availability": "UP", "version": "4.20.0",
            "slots": [{"id": {"hostId": "h", "id": "s"}, "stereotype": {"browserName": "chrome", "stressctl:node": name}, "session": null}]})
    };
    let hub = Hub::serve(serde_json::json!({"value": {"ready": true, "message": "Selenium Grid ready.",
        "nodes": [node("http://127.0.0.1:5555", "node-1"), node("http://192.0.2.20:5555", "node-2")]}}));
    let grid = format!("[[workers]]\nid = \"grid\"\nurl = \"http://127.0.0.1:{}\"\n", hub.port);
    let cfg = sb.write("grid.toml", &webgpu_config("grid", &grid));
    refused(&sb, &cfg, "server.listen", "node-2 (http://192.0.2.20:5555)");
}

/// A free loopback port (bound, then released for the campaign's server).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One request to the page server; its status code.
fn status_of(port: u16, method: &str, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").ok()?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace().nth(1)?.parse().ok()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn a_model_campaign_is_served_under_a_secret_prefix_with_hashed_assets_and_nothing_else() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("server-model");
    let port = free_port();
    let ort = Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor/onnxruntime-web");
    let cfg = format!(
        "{}\n[browser]\nop_timeout = \"30s\"\nsession_timeout = \"30s\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n{}\n[phases.criteria]\nmax_p95 = \"30s\"\n[phases.task]\nkind = \"model\"\nmodel = \"builtin:text\"\nort_dir = {:?}\n",
        header("server-model", ""),
        phase("text", "10s", 1, "stress_level = \"low\""),
        ort.display().to_string()
    );
    let cfg = sb.write("model.toml", &cfg);
    let before = snapshot();
    let run = Running::spawn(sb.launch(&cfg), Some(&sb.root));
    // while it runs: the server answers nothing outside its prefix, and no method but GET/HEAD
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut probed = Vec::new();
    while Instant::now() < deadline {
        if let Some(code) = status_of(port, "GET", "/") {
            probed.push(("GET /", code));
            for (m, p) in [("GET", "/index.html"), ("POST", "/"), ("HEAD", "/webnn.js"), ("PUT", "/a/0/model.mjs")] {
                probed.push((m, status_of(port, m, p).unwrap_or(0)));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = run.finish(Duration::from_secs(240));
    assert_no_orphans(&before, &sb.root);
    assert_eq!(probed.len(), 5, "the server never answered on port {port}\n{}", out.describe());
    assert!(probed.iter().all(|(_, c)| *c == 404), "{probed:?}");
    out.expect_code(0);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let p = &r["phases"][0];
    let t = &p["tasks"]["model"];
    let ok = count(&t["ops_succeeded"], "ops_succeeded");
    assert!(ok > 0 && t["ops_failed"] == 0, "{p}");
    assert_eq!(count(&t["verified"], "verified"), ok, "every inference verified");
    for s in t["sessions"].as_array().expect("sessions") {
        assert_eq!(s["other_origin_resources"], serde_json::json!([]), "{s}");
    }
    // what the browsers pulled: hashed paths only, each file once per fresh session
    let served = &t["served"];
    let sessions = t["sessions"].as_array().map_or(0, Vec::len) as u64;
    assert!(sessions >= 1, "{t}");
    assert!(count(&served["rejected"], "rejected") >= 5, "the probes above were refused: {served}");
    let files = served["files"].as_object().unwrap_or_else(|| panic!("no served files: {served}"));
    let hashed = |k: &str| {
        let mut parts = k.split('/');
        parts.next() == Some("a") && parts.next().is_some_and(|h| h.len() >= 9 && h.chars().all(|c| c.is_ascii_hexdigit()))
    };
    for (k, v) in files {
        assert!(k == "index.html" || hashed(k) || (k.starts_with("webnn.") && k.ends_with(".js")), "an unhashed path: {k}");
        if k != "index.html" {
            assert!(count(&v["requests"], k) <= sessions, "{k} fetched more than once per session: {served}");
        }
    }
    for want in ["/model.mjs", "/model.onnx", "/ort.webgpu.min.mjs"] {
        assert!(files.keys().any(|k| k.ends_with(want)), "{want} not served: {served}");
    }
    let bytes = count(&served["bytes"], "bytes");
    assert!(bytes > 10 << 20, "onnxruntime-web's wasm is tens of MB: {served}");
    eprintln!("served: {} bytes in {} requests over {sessions} session(s): {served}", bytes, served["requests"]);
    let summary = std::fs::read_to_string(sb.campaign_dir().join("summary.txt")).expect("summary");
    let line = summary.lines().find(|l| l.trim_start().starts_with("served ")).unwrap_or_else(|| panic!("{summary}"));
    assert!(line.contains(&format!("{:.1} MB", bytes as f64 / 1e6)), "{line}");
    // the prefix is the run's secret: no file the run wrote names a path under it
    let mut all = Vec::new();
    for d in [&sb.out, &sb.state, &sb.logs] {
        files_under(d, &mut all);
    }
    assert!(all.iter().any(|f| f.extension().is_some_and(|e| e == "sqlite")), "the store is among the files searched");
    let needle = format!(":{port}/");
    for f in &all {
        let Ok(bytes) = std::fs::read(f) else { continue };
        let text = String::from_utf8_lossy(&bytes);
        for (i, _) in text.match_indices(&needle) {
            let next = text[i + needle.len()..].chars().next();
            assert!(!next.is_some_and(|c| c.is_ascii_hexdigit()), "{} names a path under the server's prefix", f.display());
        }
    }
}

/// A chromedriver this test runs (not stressctl): stressctl sees it as a remote worker. Its
/// process group (its own) is killed when dropped.
struct OwnDriver {
    child: std::process::Child,
    port: u16,
}

impl OwnDriver {
    fn start() -> OwnDriver {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let child = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver (scripts/setup.sh)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while status_of(port, "GET", "/status") != Some(200) {
            assert!(Instant::now() < deadline, "chromedriver did not answer on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        OwnDriver { child, port }
    }
}

impl Drop for OwnDriver {
    fn drop(&mut self) {
        // SAFETY: killpg on the process group of our own child (it leads it).
        unsafe { libc::killpg(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

#[test]
fn a_remote_worker_runs_its_own_browser_with_no_path_of_this_machine() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("server-remote");
    let driver = OwnDriver::start();
    // a node running as root needs --no-sandbox from its operator: stressctl sends no local fact
    let root = unsafe { libc::geteuid() } == 0;
    let cfg = format!(
        "{}{}extra_args = [{}]\n[[workers]]\nid = \"node\"\nurl = \"http://127.0.0.1:{}\"\n{}",
        header("remote", ""),
        webgpu_task(64),
        if root { "\"--no-sandbox\"" } else { "" },
        driver.port,
        phase("p", "6s", 1, "")
    );
    let cfg = sb.write("remote.toml", &cfg);
    // check tries the node's browser for real and says what WebGPU it has
    let check = run_marked(sb.cmd(["check".into(), "--config".into(), cfg.clone().into_os_string()]), &sb.root, Duration::from_secs(120));
    let line = check.stdout.lines().find(|l| l.contains("worker node browser")).unwrap_or_else(|| panic!("{}", check.describe()));
    assert!(line.starts_with('✓') && line.contains("chromium: webgpu"), "{line}\n{}", check.describe());
    eprintln!("{line}");
    let run = Running::spawn(sb.launch(&cfg), Some(&sb.root));
    // the browser the node's driver started: what it was given
    let pgid = driver.child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = None;
    while seen.is_none() && Instant::now() < deadline {
        seen = browser_processes().into_iter().find(|p| p.pgid == pgid && p.cmdline.contains("--enable-unsafe-webgpu"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = run.finish(Duration::from_secs(120));
    out.expect_code(0);
    let browser = seen.unwrap_or_else(|| panic!("no browser under the node's chromedriver\n{}", out.describe()));
    let root_dir = sb.root.display().to_string();
    assert!(!browser.cmdline.contains(&root_dir), "a path of the run reached the node: {}", browser.cmdline);
    assert!(browser.cmdline.contains("--user-data-dir="), "the node's driver made its profile: {}", browser.cmdline);
    assert!(browser.cmdline.contains("--use-webgpu-adapter="), "the flags travel: {}", browser.cmdline);
    let r = read_json(&sb.out.join(out.campaign_id()).join("campaign_report.json"));
    let t = &r["phases"][0]["tasks"]["webgpu"];
    let ok = count(&t["ops_succeeded"], "ops_succeeded");
    assert!(ok > 0 && t["ops_failed"] == 0, "{t}");
    assert_eq!(count(&t["verified"], "verified"), ok, "every result verified");
}
