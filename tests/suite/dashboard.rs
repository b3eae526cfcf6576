//! The dashboard against the real binary: a synthetic campaign with `--dashboard 127.0.0.1:0`
//! (the bound address is read from stdout), its JSON API, its event stream, `/metrics` parsed by
//! a strict text-format parser, the guard (token, loopback, read-only), `stressctl dashboard ID`
//! on the finished store, and `report.html`.

use crate::common::{http, promtext};

use crate::common::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const TOKEN: &str = "test-token-0123456789abcdef";

/// Two phases of a synthetic task that fails often, with short breaker timeouts: breakers open,
/// probe and close again within seconds.
fn flaky_config(sb: &Sandbox, secs: u32) -> std::path::PathBuf {
    let text = format!(
        "{}{}\n[breaker]\nrecovery_timeout = \"300ms\"\nmax_recovery_timeout = \"1s\"\n{}{}",
        header("dash", "").replace("[safety]\n", "[safety]\nsample_interval = \"500ms\"\n"),
        synthetic_task("5ms", 0.3),
        phase("one", &format!("{secs}s"), 2, ""),
        phase("two", &format!("{secs}s"), 2, "")
    );
    sb.write("dash.toml", &text)
}

fn metrics(addr: SocketAddr) -> promtext::Exposition {
    let r = http::get(addr, "/metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").unwrap_or("").starts_with("text/plain; version=0.0.4"), "{:?}", r.headers);
    promtext::parse(&r.body).unwrap_or_else(|e| panic!("/metrics does not parse: {e}\n{}", r.body))
}

/// Every counter of `before` is in `after` with a value at least as high.
fn assert_counters_grew(before: &promtext::Exposition, after: &promtext::Exposition) {
    let (b, a) = (before.counters(), after.counters());
    assert!(!b.is_empty(), "no counters");
    for (k, v) in &b {
        let now = a.get(k).unwrap_or_else(|| panic!("counter {k} disappeared"));
        assert!(now >= v, "counter {k} went down: {v} -> {now}");
    }
}

#[test]
fn live_dashboard_serves_status_breakers_events_and_metrics_of_a_running_campaign() {
    let sb = Sandbox::new("dash-live");
    let cfg = flaky_config(&sb, 5);
    let mut cmd = sb.launch(&cfg);
    cmd.args(["--dashboard", "127.0.0.1:0"]);
    let child = Running::spawn(cmd, Some(&sb.root));
    let addr = dashboard_addr(&child);
    assert!(addr.ip().is_loopback());
    let mut sse = http::Sse::open(addr, "/api/events", &[]);
    assert_eq!(sse.status, 200);
    assert!(sse.headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")), "{:?}", sse.headers);

    // status: the running campaign, the shape of `stressctl status --json`
    let st = http::get(addr, "/api/status").json();
    assert!(st["campaign_id"].as_str().is_some_and(|s| !s.is_empty()), "{st}");
    assert!(matches!(st["state"].as_str(), Some("running" | "stopping" | "cooling_down")), "{st}");
    assert!(st["ops"]["attempted"].is_u64(), "{st}");

    // metrics twice, some time apart: the counters only grow
    let first = metrics(addr);
    assert!(first.value("stressctl_campaign_ended", &[]) == Some(0.0));

    // events in order: phase_started first, then breaker transitions and phase_ended
    let mut kinds: Vec<String> = Vec::new();
    let mut last_id = 0u64;
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut breakers_seen = None;
    let mut mid = None;
    while Instant::now() < deadline {
        let Some(ev) = sse.next(Duration::from_secs(10)) else { break };
        let id: u64 = ev.id.as_deref().and_then(|i| i.parse().ok()).expect("every event has an id");
        assert_eq!(id, last_id + 1, "event ids are consecutive");
        last_id = id;
        let v: Value = serde_json::from_str(&ev.data).unwrap_or_else(|e| panic!("event not JSON ({e}): {}", ev.data));
        assert_eq!(v["seq"], id);
        assert!(v["data"].is_object() || v["data"].is_array(), "typed event with data: {v}");
        let kind = v["kind"].as_str().expect("kind").to_string();
        if kind == "breaker_transition" && breakers_seen.is_none() {
            // while a breaker moves, the API shows it
            breakers_seen = Some(http::get(addr, "/api/circuit-breakers").json());
        }
        if kind == "phase_ended" && mid.is_none() {
            mid = Some(metrics(addr));
        }
        kinds.push(kind.clone());
        if kind == "campaign_ended" {
            break;
        }
    }
    let pos = |k: &str| kinds.iter().position(|x| x == k);
    let started = pos("phase_started").unwrap_or_else(|| panic!("no phase_started in {kinds:?}"));
    let transition = pos("breaker_transition").unwrap_or_else(|| panic!("no breaker_transition in {kinds:?}"));
    let ended = pos("phase_ended").unwrap_or_else(|| panic!("no phase_ended in {kinds:?}"));
    assert!(started < transition && started < ended, "{kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("campaign_ended"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "phase_started").count(), 2, "{kinds:?}");

    let b = breakers_seen.expect("a breaker moved");
    for k in ["aggregate", "workers", "browsers", "tasks", "hardware_classes"] {
        assert!(b[k].is_object(), "{k} in {b}");
    }
    assert!(b["aggregate"]["total"].as_u64().unwrap_or(0) >= 1, "{b}");
    assert!(b["tasks"]["synthetic"]["calls"].as_u64().is_some(), "{b}");

    let mid = mid.expect("metrics at a phase end");
    assert_counters_grew(&first, &mid);
    assert!(mid.value("stressctl_circuitbreaker_calls_total", &[("name", "task:synthetic"), ("kind", "failed")]).unwrap_or(0.0) > 0.0);
    // synthetic ops ran in no browser: `browser="none"` (a browser worker's ops carry its browser)
    let ops = [("phase", "one"), ("task", "synthetic"), ("worker", "synthetic"), ("browser", "none"), ("outcome", "succeeded")];
    assert!(mid.value("stressctl_ops_total", &ops).unwrap_or(0.0) > 0.0, "ops of phase one counted");
    assert!(
        mid.value("stressctl_op_latency_seconds_count", &[("phase", "one"), ("task", "synthetic"), ("browser", "none")]).unwrap_or(0.0)
            > 0.0,
        "latencies of phase one counted"
    );

    let out = child.finish(Duration::from_secs(60));
    assert!(matches!(out.code(), Some(0 | 1)), "{}", out.describe());

    // the report beside summary.txt: one file, no URL, small
    let html = std::fs::read_to_string(sb.campaign_dir().join("report.html")).expect("report.html");
    assert!(!html.contains("http://") && !html.contains("https://"), "report.html holds a URL");
    assert!(!html.contains(" src=\""), "report.html loads no script or image");
    assert!(html.split(" href=\"").skip(1).all(|rest| rest.starts_with("data:")), "report.html links nothing");
    assert!(html.len() < 2 * 1024 * 1024);
    assert!(html.contains("id=\"phase-table\"") && html.contains("stressctl-data"));

    // the host's headroom over time: stored per sample, aggregated per phase, charted
    let report: Value = serde_json::from_str(&std::fs::read_to_string(sb.campaign_dir().join("campaign_report.json")).unwrap()).unwrap();
    let host = &report["phases"][0]["resources"]["host"];
    assert!(host["host_demand_max"].as_f64().is_some_and(|v| (0.0..=100.0).contains(&v)), "{host}");
    assert!(host["campaign_cpu_max"].as_f64().is_some() && host["cpu_limit"].as_f64().is_some(), "{host}");
    let summary = std::fs::read_to_string(sb.campaign_dir().join("summary.txt")).unwrap();
    assert!(summary.contains("host headroom") && summary.contains("demand max (limit)"), "{summary}");
    assert!(
        html.contains("id=\"c-host\"") && html.contains("\"host_demand\":[") && !html.contains("\"host_demand\":[]"),
        "report.html charts the host"
    );
}

#[test]
fn a_non_loopback_address_without_a_token_exits_2_with_the_reason() {
    let sb = Sandbox::new("dash-noloop");
    let cfg = flaky_config(&sb, 1);
    let mut cmd = sb.launch(&cfg);
    cmd.args(["--dashboard", "0.0.0.0:0"]).env_remove("STRESSCTL_DASHBOARD_TOKEN");
    let out = run(cmd, Duration::from_secs(20));
    out.expect_code(2);
    assert!(out.stderr.contains("not loopback") && out.stderr.contains("--dashboard-token"), "{}", out.describe());
    assert!(sb.campaign_dirs().is_empty(), "no campaign started");

    // a token too short is refused too
    let mut cmd = sb.launch(&cfg);
    cmd.args(["--dashboard", "0.0.0.0:0", "--dashboard-token", "short"]);
    let out = run(cmd, Duration::from_secs(20));
    out.expect_code(2);
    assert!(out.stderr.contains("at least 16"), "{}", out.describe());
}

#[test]
fn with_a_token_every_request_needs_it() {
    let sb = Sandbox::new("dash-token");
    let cfg = flaky_config(&sb, 3);
    let mut cmd = sb.launch(&cfg);
    cmd.args(["--dashboard", "127.0.0.1:0"]).env("STRESSCTL_DASHBOARD_TOKEN", TOKEN);
    let child = Running::spawn(cmd, Some(&sb.root));
    let addr = dashboard_addr(&child);
    for path in ["/", "/api/status", "/api/circuit-breakers", "/api/events", "/metrics", "/assets/dashboard.js"] {
        let r = http::get(addr, path);
        assert_eq!(r.status, 401, "{path} without a token: {}", r.body);
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"stressctl\""));
        let r = http::request("GET", addr, path, &[("Authorization", "Bearer wrong-token-0123456789abc")]);
        assert_eq!(r.status, 401, "{path} with a wrong token");
    }
    let auth = format!("Bearer {TOKEN}");
    let r = http::request("GET", addr, "/api/status", &[("Authorization", &auth)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["campaign_id"].is_string());
    let r = http::request("GET", addr, "/metrics", &[("Authorization", &auth)]);
    assert_eq!(r.status, 200);

    // a browser logs in once: the token buys a session cookie (HttpOnly, SameSite=Strict)
    let r = http::get(addr, "/login?token=wrong-token-0123456789abc");
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none());
    let r = http::get(addr, &format!("/login?token={TOKEN}"));
    assert_eq!((r.status, r.header("location")), (303, Some("/")), "{}", r.body);
    let cookie = r.header("set-cookie").expect("a session cookie").to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains(TOKEN), "the cookie is a session, not the token: {cookie}");
    let pair = cookie.split(';').next().unwrap_or_default().to_string();
    for path in ["/", "/api/status", "/metrics", "/assets/dashboard.js"] {
        assert_eq!(http::request("GET", addr, path, &[("Cookie", &pair)]).status, 200, "{path} with the session cookie");
    }
    // one character changed (never to itself: the secret may end in '0')
    let last = if pair.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &pair[..pair.len() - 1]);
    assert_eq!(http::request("GET", addr, "/api/status", &[("Cookie", &forged)]).status, 401);
    // and with curl, as a browser would: follow the redirect, keep the cookie jar
    let jar = sb.root.join("cookies.txt");
    let curl = std::process::Command::new("curl")
        .args([
            "-sS",
            "-L",
            "-c",
            jar.to_str().unwrap_or_default(),
            "-b",
            jar.to_str().unwrap_or_default(),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("http://{addr}/login?token={TOKEN}"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "200", "{}", String::from_utf8_lossy(&curl.stderr));
    let curl = std::process::Command::new("curl")
        .args(["-sS", "-b", jar.to_str().unwrap_or_default(), "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{addr}/api/circuit-breakers"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "200");
    child.finish(Duration::from_secs(60));
}

#[test]
fn the_dashboard_table_serves_without_the_flag_and_bad_values_exit_2_naming_the_key() {
    let sb = Sandbox::new("dash-table");
    let base = std::fs::read_to_string(flaky_config(&sb, 2)).expect("config");
    let with = |name: &str, table: &str| sb.write(name, &format!("{base}\n[dashboard]\n{table}\n"));

    // enabled in the file, the token from the variable it names; --dashboard ADDR would override the address
    let cfg = with("on.toml", "enabled = true\nlisten = \"127.0.0.1:0\"\ntoken_env = \"DASH_TABLE_TOKEN\"");
    let mut cmd = sb.launch(&cfg);
    cmd.env("DASH_TABLE_TOKEN", TOKEN).env_remove("STRESSCTL_DASHBOARD_TOKEN");
    let child = Running::spawn(cmd, Some(&sb.root));
    let addr = dashboard_addr(&child);
    assert_eq!(http::get(addr, "/api/status").status, 401);
    assert_eq!(http::request("GET", addr, "/api/status", &[("Authorization", &format!("Bearer {TOKEN}"))]).status, 200);
    child.finish(Duration::from_secs(60));

    let started = sb.campaign_dirs().len();
    for (name, table, key) in [
        ("addr.toml", "listen = \"nowhere\"", "dashboard.listen"),
        ("short.toml", "token = \"short\"", "dashboard.token"),
        ("env.toml", "token_env = \"NOT A NAME\"", "dashboard.token_env"),
        ("unset.toml", "enabled = true\ntoken_env = \"DASH_TABLE_UNSET_VAR\"", "dashboard.token_env"),
        ("noloop.toml", "enabled = true\nlisten = \"0.0.0.0:0\"", "dashboard.listen"),
    ] {
        let mut cmd = sb.launch(&with(name, table));
        cmd.env_remove("STRESSCTL_DASHBOARD_TOKEN").env_remove("DASH_TABLE_UNSET_VAR");
        let out = run(cmd, Duration::from_secs(20));
        out.expect_code(2);
        assert!(out.stderr.contains(key), "{name}: {}", out.describe());
    }
    // the flag's address is named as the flag
    let mut cmd = sb.launch(&with("flag.toml", "listen = \"127.0.0.1:0\""));
    cmd.args(["--dashboard", "nowhere"]);
    let out = run(cmd, Duration::from_secs(20));
    out.expect_code(2);
    assert!(out.stderr.contains("--dashboard"), "{}", out.describe());
    assert_eq!(sb.campaign_dirs().len(), started, "no campaign started by a bad value");
}

#[test]
fn the_guard_is_read_only_names_loopback_and_serves_no_files() {
    let sb = Sandbox::new("dash-guard");
    let cfg = flaky_config(&sb, 3);
    let mut cmd = sb.launch(&cfg);
    cmd.args(["--dashboard", "127.0.0.1:0"]).env_remove("STRESSCTL_DASHBOARD_TOKEN");
    let child = Running::spawn(cmd, Some(&sb.root));
    let addr = dashboard_addr(&child);
    let page = http::get(addr, "/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/assets/dashboard.js") && page.body.contains("/assets/uPlot.iife.min.js"));
    let csp = page.header("content-security-policy").unwrap_or("");
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(http::get(addr, "/circuit-breakers").status, 200);
    assert_eq!(http::get(addr, "/assets/uPlot.iife.min.js").status, 200);
    for path in ["/../../../../etc/passwd", "/assets/../Cargo.toml", "/assets/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd"] {
        let r = http::get(addr, path);
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.body.contains("root:"), "{path}");
    }
    assert_eq!(http::request("POST", addr, "/api/status", &[("Content-Length", "0")]).status, 405);
    assert_eq!(http::request("DELETE", addr, "/", &[]).status, 405);
    assert_eq!(http::request("GET", addr, "/api/status", &[("Host", "attacker.example")]).status, 403, "DNS rebinding guard");
    assert_eq!(http::request("GET", addr, "/api/status", &[("Host", &format!("localhost:{}", addr.port()))]).status, 200);
    child.finish(Duration::from_secs(60));
}

#[test]
fn dashboard_command_serves_a_finished_campaign_from_its_store() {
    let sb = Sandbox::new("dash-store");
    let cfg = flaky_config(&sb, 2);
    let out = run_marked(sb.launch(&cfg), &sb.root, Duration::from_secs(60));
    let id = out.campaign_id();
    let report_before = std::fs::read(sb.campaign_dir().join("report.html")).expect("report.html");

    let child = Running::spawn(sb.cmd(["dashboard", id.as_str(), "--listen", "127.0.0.1:0"]), None);
    let mut addr = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            addr = child
                .stdout_so_far()
                .lines()
                .find_map(|l| l.split_once(" at http://").map(|(_, r)| r.to_string()))
                .and_then(|r| r.split('/').next().and_then(|a| a.parse::<SocketAddr>().ok()));
            addr.is_some()
        }),
        "{}{}",
        child.stdout_so_far(),
        child.stderr_so_far()
    );
    let addr = addr.unwrap();
    let st = http::get(addr, "/api/status").json();
    assert_eq!(st["campaign_id"], id.as_str());
    assert_eq!(st["state"], "ended", "{st}");
    let b = http::get(addr, "/api/circuit-breakers").json();
    assert!(b["tasks"]["synthetic"].is_object(), "the final snapshot: {b}");
    let o = http::get(addr, "/api/overview").json();
    assert_eq!(o["campaign"]["ended"], true);
    assert!(!o["ops"]["t"].as_array().unwrap().is_empty(), "op series from the store");
    let m = metrics(addr);
    assert_eq!(m.value("stressctl_campaign_ended", &[]), Some(1.0));
    // the stored events, ending with campaign_ended
    let mut sse = http::Sse::open(addr, "/api/events", &[]);
    let mut last = String::new();
    while let Some(ev) = sse.next(Duration::from_secs(3)) {
        last = serde_json::from_str::<Value>(&ev.data).unwrap()["kind"].as_str().unwrap_or("").to_string();
        if last == "campaign_ended" {
            break;
        }
    }
    assert_eq!(last, "campaign_ended");
    // Last-Event-ID resumes after it: nothing more to replay
    let mut again = http::Sse::open(addr, "/api/events", &[("Last-Event-ID", "1000000")]);
    assert!(again.next(Duration::from_millis(500)).is_none());

    child.signal(libc::SIGTERM);
    child.finish(Duration::from_secs(10)).expect_code(0);

    // the report rebuilt from the store is the same file
    run(sb.cmd(["report", id.as_str()]), Duration::from_secs(30)).expect_code(0);
    assert!(std::fs::read(sb.campaign_dir().join("report.html")).unwrap() == report_before, "report.html rebuilt identically");
}

/// The nice value of `pid`'s thread named `stressctl-dashb…` (the kernel keeps 15 bytes of a
/// thread's name), from `/proc/<pid>/task/<tid>/stat` field 19.
fn dashboard_thread_nice(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(dashboard_thread(pid)?.join("stat")).ok()?;
    let after = stat.rsplit_once(") ")?.1;
    // after the comm: state is field 3, nice field 19
    after.split_whitespace().nth(16)?.parse().ok()
}

/// `/proc/PID/task/TID` of stressctl `pid`'s dashboard thread.
fn dashboard_thread(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
        .find(|e| std::fs::read_to_string(e.path().join("comm")).unwrap_or_default().trim() == "stressctl-dashb")
        .map(|e| e.path())
}

/// The v1 `cpu` cgroup directory of thread `task` (`/proc/PID/task/TID`), read with stressctl's
/// own parser, if the host has that hierarchy.
fn v1_cpu_dir(task: &std::path::Path) -> Option<std::path::PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let own = std::fs::read_to_string(task.join("cgroup")).ok()?;
    let m = stressctl::confine::cgroup::parse(&mountinfo, &own);
    m.v1.iter().find(|h| h.controllers.iter().any(|c| c == "cpu")).and_then(|h| h.own_dir())
}

/// On a host the campaign saturates, the dashboard's threads must run ahead of the browsers
/// (confine::priority): nice -10 where the process may raise it (root here), and
/// `STRESSCTL_DASHBOARD_NICE=0` keeps them at the browsers' priority. On cgroup v1 (this
/// project's machines) they also join the run's orchestrator cgroup, which is gone once the
/// campaign has ended.
#[test]
fn the_dashboard_threads_run_ahead_of_the_browsers() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let v1_cpu = stressctl::confine::cgroup::Plan::detect().v1_cpu_parent;
    for (env, want) in [(None, if root { -10 } else { 0 }), (Some("0"), 0)] {
        let sb = Sandbox::new("dash-nice");
        let cfg = flaky_config(&sb, 3);
        let mut cmd = sb.launch(&cfg);
        cmd.args(["--dashboard", "127.0.0.1:0"]);
        match env {
            Some(v) => cmd.env("STRESSCTL_DASHBOARD_NICE", v),
            None => cmd.env_remove("STRESSCTL_DASHBOARD_NICE"),
        };
        let child = Running::spawn(cmd, Some(&sb.root));
        let addr = dashboard_addr(&child);
        // the server answers: its thread has raised itself by now
        assert_eq!(http::get(addr, "/metrics").status, 200);
        let nice = dashboard_thread_nice(child.pid());
        assert_eq!(nice, Some(want), "the dashboard thread's nice with STRESSCTL_DASHBOARD_NICE={env:?}");
        let orchestrator = "/stressctl-orchestrator-";
        if let (true, Some(parent)) = (root, &v1_cpu) {
            let task = dashboard_thread(child.pid()).expect("dashboard thread");
            let cg = v1_cpu_dir(&task).expect("the thread's v1 cpu cgroup");
            let name = cg.to_string_lossy().into_owned();
            assert_eq!(name.contains(orchestrator), env.is_none(), "the dashboard thread's v1 cpu cgroup: {name}");
            if env.is_none() {
                assert_eq!(cg.parent(), Some(parent.as_path()), "a sibling of the run's cgroup: {name}");
                let shares = std::fs::read_to_string(cg.join("cpu.shares"));
                assert_eq!(shares.ok().as_deref().map(str::trim), Some("10240"), "{name}");
            }
        }
        let pid = child.pid();
        let out = child.finish(Duration::from_secs(60));
        assert!(matches!(out.code(), Some(0 | 1)), "{}", out.describe());
        if let Some(parent) = &v1_cpu {
            let left: Vec<String> = std::fs::read_dir(parent)
                .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            let left: Vec<&String> = left.iter().filter(|n| n.starts_with("stressctl-") && n.ends_with(&format!("-{pid}"))).collect();
            assert!(left.is_empty(), "the run's cgroups outlived it: {left:?}");
        }
    }
}
