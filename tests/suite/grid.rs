//! Selenium Grid 4 workers (issue 15), against a real local Grid (scripts/grid.sh: a Java hub and
//! nodes driving the system Chromium) and real Chromium: per-node results and breakers, a node
//! killed mid-campaign, and no stressctl session left on the hub after Ctrl-C or emergency-stop.
//! Needs scripts/setup-grid.sh to have run (scripts/test.sh runs the set-up first).
//! Every test brings its own Grid up on its own ports and state directory and takes it down on
//! every path (a guard), then checks that nothing the Grid started is still alive.

use crate::common::exporter::Exporter;
use crate::common::*;
use crate::common::{http, promtext};
use serde_json::Value;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use stressctl::browser::grid_status::NODE_CAP;

/// The tests' hub port (not the 4444 a developer's own Grid uses); nodes on 4655, 4656, ….
const HUB_PORT: u16 = 4644;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A Grid brought up by scripts/grid.sh in `dir`, taken down when dropped; the drop then checks
/// that no process of it (its recorded groups: java, chromedriver, Chromium) is left.
struct GridUp {
    dir: PathBuf,
    /// (pid, start time) of every process grid.sh recorded: each leads its own group.
    recorded: Vec<(i32, u64)>,
}

impl GridUp {
    fn start(dir: &Path, nodes: u32, slots: u32) -> GridUp {
        let out = Command::new(repo().join("scripts/grid.sh"))
            .args(["up", "--nodes", &nodes.to_string(), "--slots", &slots.to_string(), "--hub-port", &HUB_PORT.to_string()])
            .env("STRESSCTL_GRID_DIR", dir)
            .output()
            .expect("run scripts/grid.sh");
        let g = GridUp { dir: dir.to_path_buf(), recorded: recorded(dir) };
        assert!(
            out.status.success(),
            "grid.sh up failed (did scripts/setup-grid.sh run?):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        g
    }

    /// Adds one more node (`grid.sh add`), returning once the hub lists it UP; `down` (the drop)
    /// takes it down with the rest.
    fn add(&mut self) {
        let out =
            Command::new(repo().join("scripts/grid.sh")).arg("add").env("STRESSCTL_GRID_DIR", &self.dir).output().expect("grid.sh add");
        self.recorded = recorded(&self.dir);
        assert!(
            out.status.success(),
            "grid.sh add failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The pid and start time of a node's java process.
    fn node(&self, name: &str) -> (i32, u64) {
        let state = std::fs::read_to_string(self.dir.join("state")).expect("grid state file");
        state
            .lines()
            .filter_map(|l| l.strip_prefix("proc "))
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.first() == Some(&name)).then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
            })
            .unwrap_or_else(|| panic!("no {name} in the grid state"))
    }
}

fn recorded(dir: &Path) -> Vec<(i32, u64)> {
    std::fs::read_to_string(dir.join("state"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("proc "))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(1)?.parse().ok()?, f.get(2)?.parse().ok()?))
        })
        .collect()
}

/// Live processes in the groups grid.sh recorded (started no earlier than their leader).
fn grid_processes(recorded: &[(i32, u64)]) -> Vec<Proc> {
    let all: Vec<Proc> = std::fs::read_dir("/proc")
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()).filter_map(read_proc).collect())
        .unwrap_or_default();
    all.into_iter().filter(|p| p.state != 'Z' && recorded.iter().any(|&(g, st)| p.pgid == g && p.start >= st)).collect()
}

impl Drop for GridUp {
    fn drop(&mut self) {
        let out = Command::new(repo().join("scripts/grid.sh")).arg("down").env("STRESSCTL_GRID_DIR", &self.dir).output();
        let left = grid_processes(&self.recorded);
        if !std::thread::panicking() {
            assert!(out.is_ok_and(|o| o.status.success()), "grid.sh down failed");
            let list: Vec<String> = left.iter().map(|p| format!("  pid {}: {:.200}", p.pid, p.cmdline)).collect();
            assert!(left.is_empty(), "grid.sh down left java/chromedriver/chromium behind:\n{}", list.join("\n"));
        }
    }
}

fn hub_status() -> Value {
    let out =
        Command::new("curl").args(["-fsS", "--max-time", "5", &format!("http://127.0.0.1:{HUB_PORT}/status")]).output().expect("curl");
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// The sessions the hub lists in its UP nodes' slots: (the node's `stressctl:node` name, if its
/// stereotype has one; the session id).
fn hub_slot_sessions() -> Vec<(Option<String>, String)> {
    let st = hub_status();
    let mut out = Vec::new();
    for n in st["value"]["nodes"].as_array().into_iter().flatten().filter(|n| n["availability"] == "UP") {
        for s in n["slots"].as_array().into_iter().flatten() {
            if let Some(id) = s["session"]["sessionId"].as_str() {
                out.push((s["stereotype"][NODE_CAP].as_str().map(str::to_string), id.to_string()));
            }
        }
    }
    out
}

/// Session ids the hub lists in its UP nodes' slots.
fn hub_sessions() -> Vec<String> {
    hub_slot_sessions().into_iter().map(|(_, id)| id).collect()
}

/// The nodes (their `stressctl:node` names) holding a session now, from the hub's `/status`.
fn nodes_with_sessions() -> Vec<String> {
    hub_slot_sessions().into_iter().filter_map(|(node, _)| node).collect()
}

fn grid_config(phases: &str) -> String {
    format!(
        "{}{}\n[[workers]]\nid = \"grid\"\nurl = \"http://127.0.0.1:{HUB_PORT}\"\n{phases}",
        header("grid", "grace_period = \"3s\""),
        webgpu_task(64)
    )
}

fn node<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["grid_nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["node"] == name))
        .unwrap_or_else(|| panic!("no grid node {name} in the report: {}", report["grid_nodes"]))
}

/// One Grid for the two tests that leave it as they found it: a passing campaign with results and
/// breakers per node, then no stressctl session left on the hub after Ctrl-C or emergency-stop.
/// (The node-kill test brings up its own: it kills one.)
#[test]
fn a_two_node_grid_passes_a_campaign_per_node_and_keeps_no_session_after_ctrl_c_or_emergency_stop() {
    let _lock = BrowserLock::acquire();
    let sb = Sandbox::new("grid-pass");
    let grid = GridUp::start(&sb.root.join("grid"), 2, 2);
    a_campaign_passes_with_results_and_breakers_per_node(&sb);
    no_session_is_left_on_the_hub_after_ctrl_c_or_emergency_stop(&sb);
    drop(grid);
}

/// A quick-shaped campaign on the two-node Grid passes with results and breakers per node.
fn a_campaign_passes_with_results_and_breakers_per_node(sb: &Sandbox) {
    // quick-shaped: rising sessions, the last asking for more than the Grid's 4 slots
    let phases = [phase("warmup", "3s", 1, ""), phase("light", "3s", 2, ""), phase("stress", "4s", 5, "stress_level = \"high\"")].concat();
    let cfg = sb.write("grid.toml", &grid_config(&phases));
    let check = run(sb.cmd([OsString::from("check"), "--config".into(), cfg.clone().into()]), Duration::from_secs(120));
    assert!(check.stdout.contains("Selenium Grid, 2 node(s), 2 UP, slots: chrome 4"), "{}", check.describe());
    let out = run(sb.launch(&cfg), Duration::from_secs(180));
    out.expect_code(0);
    let dir = sb.out.join(out.campaign_id());
    let report = read_json(&dir.join("campaign_report.json"));
    for n in ["node-1", "node-2"] {
        let r = node(&report, n);
        assert!(r["ops_attempted"].as_u64().unwrap_or(0) > 0 && r["sessions"].as_u64().unwrap_or(0) > 0, "{r}");
        assert!(r["success_rate"].as_f64().unwrap_or(0.0) >= 0.95, "{r}");
        assert!(report["breakers"]["final"]["workers"][format!("grid/{n}")]["state"] == "closed", "{}", report["breakers"]["final"]);
    }
    let stress = &report["phases"][2];
    assert_eq!(stress["sessions"], 4, "bounded by the Grid's free slots: {stress}");
    assert!(stress["notes"].to_string().contains("4 free chromium slot(s)"), "{stress}");
    let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert!(summary.contains("Selenium Grid nodes") && summary.contains("grid/node-1:"), "{summary}");
    assert!(hub_sessions().is_empty(), "sessions left on the hub: {:?}", hub_sessions());
}

#[test]
fn a_node_killed_mid_campaign_opens_its_breaker_and_its_work_moves_to_the_other_node() {
    let _lock = BrowserLock::acquire();
    let sb = Sandbox::new("grid-kill");
    let grid = GridUp::start(&sb.root.join("grid"), 2, 2);
    let phases = [phase("one", "3s", 2, ""), phase("two", "3s", 2, ""), phase("three", "15s", 2, "stress_level = \"extreme\"")].concat();
    let cfg = sb.write("grid.toml", &grid_config(&phases));
    let mut child = Running::spawn(sb.launch(&cfg), Some(&sb.root));
    assert!(wait_until(Duration::from_secs(90), || child.stdout_so_far().contains("[2/3]")), "{}", child.stdout_so_far());
    std::thread::sleep(Duration::from_secs(3));
    // the node to kill is one that holds work now: both sessions may be on the same node
    let mut busy = Vec::new();
    assert!(wait_until(Duration::from_secs(10), || {
        busy = nodes_with_sessions();
        !busy.is_empty()
    }));
    let dead_name = busy[0].clone();
    let alive_name = if dead_name == "node-1" { "node-2" } else { "node-1" };
    let (pid, start) = grid.node(&dead_name);
    assert!(read_proc(pid).is_some_and(|p| p.start == start), "{dead_name} is not the process grid.sh started");
    // SAFETY: kill(2) on the node's java process, verified above by pid + start time.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(child.wait_timeout(Duration::from_secs(120)).and_then(|s| s.code()), Some(0), "{}", child.stdout_so_far());
    let report = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let dead = node(&report, &dead_name);
    let transitions = dead["breaker_transitions"].to_string();
    assert!(transitions.contains("forced_open") || transitions.contains("-> open"), "{dead}");
    assert!(dead["moved_away"].as_u64().unwrap_or(0) >= 1, "the report shows the work moved: {dead}");
    let alive = node(&report, alive_name);
    assert!(alive["ops_attempted"].as_u64().unwrap_or(0) > dead["ops_attempted"].as_u64().unwrap_or(0), "{alive} vs {dead}");
    assert_eq!(report["phases"][2]["criteria"]["passed"], true, "{}", report["phases"][2]);
    drop(grid);
}

/// Ctrl-C, then `emergency-stop`, of a campaign whose 3 sessions are open on the hub: nothing of
/// stressctl's is left there.
fn no_session_is_left_on_the_hub_after_ctrl_c_or_emergency_stop(sb: &Sandbox) {
    let cfg = sb.write("grid-stop.toml", &grid_config(&phase("long", "120s", 3, "")));
    for how in ["SIGINT", "emergency-stop"] {
        let mut child = Running::spawn(sb.launch(&cfg), Some(&sb.root));
        assert!(
            wait_until(Duration::from_secs(60), || hub_sessions().iter().filter(|s| *s != "reserved").count() == 3),
            "{how}: sessions never opened: {}",
            hub_status()
        );
        std::thread::sleep(Duration::from_secs(2));
        if how == "SIGINT" {
            child.signal(libc::SIGINT);
        } else {
            run(sb.cmd(["emergency-stop"]), Duration::from_secs(60));
        }
        assert!(child.wait_timeout(Duration::from_secs(60)).is_some(), "{how}: stressctl did not exit");
        let left = hub_sessions();
        assert!(left.is_empty(), "{how}: stressctl sessions left on the hub: {left:?}");
    }
}

/// `kill -9` of stressctl while its 2 sessions are open on a 1-node Grid, then `launch --resume`:
/// the resumed run deletes the dead run's sessions through the hub before it opens its own (they
/// are gone while it runs, not at the node's 120 s session timeout), passes, and leaves nothing.
#[test]
fn after_kill_9_resume_deletes_the_dead_runs_grid_sessions_through_the_hub() {
    let _lock = BrowserLock::acquire();
    let sb = Sandbox::new("grid-kill9");
    let grid = GridUp::start(&sb.root.join("grid"), 1, 2);
    let phases = [phase("one", "2s", 2, ""), phase("two", "20s", 2, "")].concat();
    let cfg = sb.write("grid.toml", &grid_config(&phases));
    let running = Running::spawn(sb.launch(&cfg), Some(&sb.root));
    let second_started = || sb.campaign_dirs().first().is_some_and(|d| d.join("phase_01_one.json").exists());
    assert!(wait_until(Duration::from_secs(90), second_started), "phase two never started\n{}", running.stdout_so_far());
    assert!(
        wait_until(Duration::from_secs(20), || hub_sessions().iter().filter(|s| *s != "reserved").count() == 2),
        "sessions never opened: {}",
        hub_status()
    );
    std::thread::sleep(Duration::from_secs(1));
    running.signal(libc::SIGKILL);
    assert_eq!(running.finish(Duration::from_secs(10)).code(), None, "killed by a signal");
    // what is on the hub 3 s after the kill is the dead run's (nobody else uses this Grid), and
    // it stays: nothing deletes it on its own. (A DELETE the run had in flight when it was killed,
    // a session it was replacing, may still complete in those 3 s: such a session is not counted.)
    std::thread::sleep(Duration::from_secs(3));
    let dead: Vec<String> = hub_sessions().into_iter().filter(|s| s != "reserved").collect();
    assert!(!dead.is_empty(), "the dead run's sessions stay on the hub until someone deletes them: {}", hub_status());
    std::thread::sleep(Duration::from_secs(3));
    let left: Vec<String> = hub_sessions().into_iter().filter(|s| dead.contains(s)).collect();
    assert_eq!(left, dead, "nothing deletes them on its own: {}", hub_status());

    let mut resumed = Running::spawn(sb.cmd(["launch", "--resume"]), Some(&sb.root));
    // while the resumed run holds its own sessions, none of the dead run's is on the hub
    let mut now = Vec::new();
    assert!(
        wait_until(Duration::from_secs(60), || {
            now = hub_sessions();
            now.iter().any(|s| s != "reserved" && !dead.contains(s))
        }),
        "the resumed run never opened a session: {}\n{}",
        hub_status(),
        resumed.stdout_so_far()
    );
    assert!(now.iter().all(|s| !dead.contains(s)), "the dead run's sessions {dead:?} are still on the hub: {now:?}");
    assert_eq!(resumed.wait_timeout(Duration::from_secs(90)).and_then(|s| s.code()), Some(0), "{}", resumed.stdout_so_far());
    let out = resumed.stdout_so_far();
    assert!(out.contains("Selenium Grid session(s) campaign") && out.contains("left on worker grid"), "{out}");
    let report = read_json(&sb.campaign_dir().join("campaign_report.json"));
    assert_eq!(report["outcome"], "passed", "{}", report["phases"]);
    assert!(hub_sessions().is_empty(), "sessions left on the hub: {}", hub_status());
    drop(grid);
}

/// A new-session request waits in the hub's queue no longer than `session_timeout`, and one
/// stressctl gave up on is cancelled there: on a Grid of two 1-slot nodes where another client
/// holds node-1's slot, `check`'s probe of node-1 gives up after 3 s; its request is gone from
/// the hub's queue, and no browser is created for it when the slot frees (without the cancel the hub would keep it
/// queued for its 60 s request timeout and start a browser nobody drives).
#[test]
fn a_session_request_given_up_is_cancelled_in_the_hubs_queue_so_no_browser_is_created_after() {
    let _lock = BrowserLock::acquire();
    let sb = Sandbox::new("grid-queue");
    let grid = GridUp::start(&sb.root.join("grid"), 2, 1);
    let hub = format!("http://127.0.0.1:{HUB_PORT}");
    // another client takes node-1's only slot (node-2's stays free: a Grid with no free slot at
    // all says it is not ready, and `check` stops there)
    let caps = format!(r#"{{"capabilities":{{"alwaysMatch":{{"browserName":"chrome","{NODE_CAP}":"node-1"}}}}}}"#);
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "60", "-H", "Content-Type: application/json; charset=utf-8", "-d", &caps, &format!("{hub}/session")])
        .output()
        .expect("curl");
    let blocker = serde_json::from_slice::<Value>(&out.stdout).ok().and_then(|v| v["value"]["sessionId"].as_str().map(str::to_string));
    let blocker = blocker.unwrap_or_else(|| panic!("the blocking session did not open: {}", String::from_utf8_lossy(&out.stderr)));
    let cfg =
        sb.write("grid.toml", &grid_config(&phase("p", "2s", 1, "")).replace("session_timeout = \"30s\"", "session_timeout = \"3s\""));
    let check = run(sb.cmd([OsString::from("check"), "--config".into(), cfg.into()]), Duration::from_secs(120));
    check.expect_code(1);
    let line = |n: &str| check.stdout.lines().find(|l| l.contains(&format!("node grid/{n}"))).unwrap_or("").to_string();
    assert!(line("node-1").starts_with('✗') && line("node-1").contains("within 3s"), "{}", check.describe());
    assert!(line("node-2").starts_with('✓'), "{}", check.describe());
    let queue = || {
        let out = Command::new("curl").args(["-fsS", "--max-time", "5", &format!("{hub}/se/grid/newsessionqueue/queue")]).output();
        out.ok().and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok()).unwrap_or(Value::Null)
    };
    assert_eq!(queue()["value"], serde_json::json!([]), "the given-up request is still queued");
    let del = Command::new("curl").args(["-fsS", "--max-time", "10", "-X", "DELETE", &format!("{hub}/session/{blocker}")]).output();
    assert!(del.is_ok_and(|o| o.status.success()), "cannot delete the blocking session");
    std::thread::sleep(Duration::from_secs(4));
    assert!(hub_sessions().is_empty(), "a browser was created after stressctl gave its request up: {}", hub_status());
    drop(grid);
}

/// A Grid that grows mid-campaign: a second node registers while the first phase runs (as an
/// autoscaler would add one); the second phase asks for more sessions than the first node has
/// slots, waits (`[grid] capacity_wait`) until the new node's slots appear, runs all its
/// sessions — some on the new node, with no restart — and its notes say how long it waited.
#[test]
fn a_node_registering_mid_campaign_gets_sessions_in_the_next_phase_after_a_capacity_wait() {
    let _lock = BrowserLock::acquire();
    let sb = Sandbox::new("grid-grow");
    let mut grid = GridUp::start(&sb.root.join("grid"), 1, 2);
    let phases = [phase("one", "3s", 2, ""), phase("two", "4s", 4, "")].concat();
    let cfg = sb.write("grid.toml", &format!("{}\n[grid]\ncapacity_wait = \"90s\"\n", grid_config(&phases)));
    let mut running = Running::spawn(sb.launch(&cfg), Some(&sb.root));
    // phase two found too few free slots and waits for more (its browser log says so)
    let waiting = || {
        let logs = std::fs::read_dir(sb.root.join("logs")).map(|rd| rd.flatten().map(|e| e.path()).collect::<Vec<_>>()).unwrap_or_default();
        logs.iter().any(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("waiting up to 1m 30s for more")))
    };
    assert!(wait_until(Duration::from_secs(90), waiting), "phase two never waited for slots\n{}", running.stdout_so_far());
    grid.add();
    assert_eq!(running.wait_timeout(Duration::from_secs(150)).and_then(|s| s.code()), Some(0), "{}", running.stdout_so_far());
    let report = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let two = &report["phases"][1];
    assert_eq!(two["sessions"], 4, "node-2's slots counted: {two}");
    let notes = two["notes"].to_string();
    assert!(notes.contains("waited") && notes.contains("capacity_wait 1m 30s") && notes.contains("enough slots became free"), "{two}");
    println!("phase two notes: {notes}");
    let n2 = node(&report, "node-2");
    assert!(n2["ops_attempted"].as_u64().unwrap_or(0) > 0 && n2["sessions"].as_u64().unwrap_or(0) > 0, "{n2}");
    assert!(hub_sessions().is_empty(), "sessions left on the hub: {}", hub_status());
    drop(grid);
}

/// Bad `[grid]` keys are refused before anything starts: exit 2, naming the key.
#[test]
fn bad_grid_keys_exit_2_naming_the_key() {
    let sb = Sandbox::new("grid-bad");
    for (text, key) in [
        ("capacity_wait = \"25h\"", "grid.capacity_wait"),
        ("capacity_wait = \"soon\"", "capacity_wait"),
        ("registration_secret_env = \"NOT A NAME\"", "grid.registration_secret_env"),
        ("wait = \"1s\"", "wait"),
    ] {
        let cfg = sb.write("bad.toml", &format!("{}\n[grid]\n{text}\n", grid_config(&phase("p", "2s", 1, ""))));
        for cmd in ["check", "launch"] {
            let out = run(sb.cmd([OsString::from(cmd), "--config".into(), cfg.clone().into()]), Duration::from_secs(60));
            out.expect_code(2);
            assert!(out.stderr.contains(key), "{cmd} {text}: {}", out.describe());
        }
    }
}

/// Issue 23, "each node watched": a Grid worker whose nodes' node_exporter figures are over its
/// own (very low) memory limit has both nodes drained — their breakers forced open with the
/// reason — while a managed worker, watched with the campaign's limits, carries the load and the
/// campaign passes. Every node_exporter here reports the whole machine (so the two Grid nodes,
/// both on 127.0.0.1, read the same figures: the per-worker limit is what tells them apart). The
/// exporter is then killed mid-run: every node is reported unwatched (`unwatched_node = "warn"`
/// keeps the managed worker working).
#[test]
fn grid_nodes_over_their_workers_memory_limit_are_drained_while_the_other_worker_carries_the_load() {
    if !Path::new(Exporter::BIN).exists() {
        eprintln!("skipped: {} is not installed (apt-get install prometheus-node-exporter)", Exporter::BIN);
        return;
    }
    let _lock = BrowserLock::acquire();
    let sb = Sandbox::new("grid-nodes");
    let grid = GridUp::start(&sb.root.join("grid"), 2, 2);
    let mut exporter = Exporter::start();
    let safety = "[safety]\nsample_interval = \"500ms\"\nconsecutive_violations = 2\nunwatched_node = \"warn\"\n";
    let text = format!(
        "{}{}\n[breaker.worker]\nrecovery_timeout = \"60s\"\n\n[[workers]]\nid = \"grid\"\nurl = \"http://127.0.0.1:{HUB_PORT}\"\nnode_metrics = \"{}\"\n\
         [workers.safety]\nmemory_percent = 1\n\n[[workers]]\nid = \"local\"\nmanaged = true\nnode_metrics = \"{}\"\n{}{}",
        header("grid-nodes", "grace_period = \"3s\"").replace("[safety]\n", safety),
        webgpu_task(64),
        exporter.url("{host}"),
        exporter.url("127.0.0.1"),
        phase("one", "8s", 2, ""),
        phase("two", "8s", 2, ""),
    );
    let cfg = sb.write("nodes.toml", &text);
    let mut cmd = sb.launch(&cfg);
    cmd.args(["--dashboard", "127.0.0.1:0"]);
    let mut child = Running::spawn(cmd, Some(&sb.root));
    // the live dashboard shows each Grid node drained, with the reason and its series, while
    // the managed worker stays watched; /metrics says the same
    let addr = dashboard_addr(&child);
    let mut overview = Value::Null;
    let drained_live = wait_until(Duration::from_secs(90), || {
        overview = http::get(addr, "/api/overview").json();
        let nodes = overview["nodes"].as_array().cloned().unwrap_or_default();
        let state = |n: &str| nodes.iter().find(|x| x["node"] == n).map(|x| x["state"].clone()).unwrap_or(Value::Null);
        state("node-1") == "drained" && state("node-2") == "drained" && state("local") == "watched"
    });
    assert!(drained_live, "the dashboard's nodes: {}", overview["nodes"]);
    for n in overview["nodes"].as_array().into_iter().flatten().filter(|n| n["worker"] == "grid") {
        assert!(n["why"].as_str().is_some_and(|w| w.starts_with("node_distress: memory ")), "{n}");
        assert!(n["drains_total"] == 1 && n["drains"][0]["reopened_s"].is_null(), "{n}");
        assert!(!n["series"]["memory"].as_array().unwrap().is_empty(), "{n}");
    }
    let m = http::get(addr, "/metrics").body;
    let parsed = promtext::parse(&m).unwrap_or_else(|e| panic!("{e}\n{m}"));
    assert_eq!(parsed.value("stressctl_node_drained", &[("worker", "grid"), ("node", "node-1")]), Some(1.0), "{m}");
    assert_eq!(parsed.value("stressctl_node_drained", &[("worker", "local"), ("node", "local")]), Some(0.0), "{m}");
    assert!(parsed.value("stressctl_node_memory_percent", &[("worker", "local"), ("node", "local")]).is_some_and(|v| v > 1.0), "{m}");
    // "[1/2]" is phase one's result line: the exporter dies during phase two
    assert!(wait_until(Duration::from_secs(90), || child.stdout_so_far().contains("[1/2]")), "{}", child.stdout_so_far());
    exporter.kill();
    let code = child.wait_timeout(Duration::from_secs(90)).and_then(|s| s.code());
    let dir = sb.campaign_dir();
    assert_eq!(code, Some(0), "{}\n{}", child.stdout_so_far(), std::fs::read_to_string(dir.join("summary.txt")).unwrap_or_default());
    let report = read_json(&dir.join("campaign_report.json"));
    let nodes = report["nodes"].as_array().cloned().unwrap_or_default();
    let of = |w: &str, n: &str| {
        nodes.iter().find(|x| x["worker"] == w && x["node"] == n).cloned().unwrap_or_else(|| panic!("no node {w}/{n}: {nodes:?}"))
    };
    for n in ["node-1", "node-2"] {
        let r = of("grid", n);
        let drain = &r["drains"][0];
        let reason = drain["reason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("node_distress: memory ") && reason.ends_with(" % > 1 %"), "{r}");
        assert!(r["samples"].as_u64().unwrap_or(0) >= 2 && r["memory_max"].as_f64().unwrap_or(0.0) > 1.0, "{r}");
        assert!(!r["series"].as_array().unwrap().is_empty(), "{r}");
        let forced = report["breakers"]["transitions"].as_array().into_iter().flatten().find(|t| t["key"] == format!("worker:grid/{n}"));
        assert!(
            forced
                .is_some_and(|t| t["to"] == "forced_open" && t["reason"].as_str().is_some_and(|r| r.starts_with("node_distress: memory"))),
            "the node's breaker is forced open, naming the reason: {}",
            report["breakers"]["transitions"]
        );
        assert!(r["unwatched"].as_array().is_some_and(|u| !u.is_empty()), "the killed exporter is reported: {r}");
    }
    let local = of("local", "local");
    assert!(local["drains"].as_array().is_some_and(|d| d.is_empty()), "{local}");
    assert!(local["unwatched"].to_string().contains("(warn)"), "{local}");
    // the managed worker carried the load: the Grid nodes were drained within a second or two
    assert_eq!(report["phases"][1]["criteria"]["passed"], true, "{}", report["phases"][1]);
    // (a Grid node that never ran an op has no `grid_nodes` entry)
    let grid_ops: u64 = report["grid_nodes"].as_array().into_iter().flatten().map(|n| n["ops_attempted"].as_u64().unwrap_or(0)).sum();
    let total = report["totals"]["ops_attempted"].as_u64().unwrap_or(0);
    assert!(total > 2 * grid_ops, "the managed worker ran most ops: {total} in all, {grid_ops} on the Grid");
    let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert!(summary.contains("Watched nodes") && summary.contains("- drained ") && summary.contains("node_distress: memory"), "{summary}");
    assert_eq!(events_of_kind(&dir, "node_drained").len(), 2, "one drain per Grid node");
    assert!(hub_sessions().is_empty(), "sessions left on the hub: {:?}", hub_sessions());
    drop(exporter);
    drop(grid);
}

/// Issue 23: the Grid's node_exporter stops answering mid-phase while its nodes hold sessions:
/// with the default `unwatched_node = "drain"` both nodes are reported unwatched and drained
/// (`node_unwatched: ...`), no session is opened on them while drained, their work moves to the
/// managed worker (whose own exporter still answers); the exporter then comes back at the same
/// URL, and both nodes are reopened once under their limits for the recovery time
/// (`node_reopened`, their breakers closed again); the campaign passes.
#[test]
fn grid_nodes_whose_exporter_stops_answering_are_drained_and_their_work_moves() {
    if !Path::new(Exporter::BIN).exists() {
        eprintln!("skipped: {} is not installed (apt-get install prometheus-node-exporter)", Exporter::BIN);
        return;
    }
    let _lock = BrowserLock::acquire();
    let sb = Sandbox::new("grid-unwatched");
    let grid = GridUp::start(&sb.root.join("grid"), 2, 2);
    let mut grid_exporter = Exporter::start();
    let local_exporter = Exporter::start();
    let text = format!(
        "{}{}\n[breaker.worker]\nrecovery_timeout = \"2s\"\n\n[[workers]]\nid = \"grid\"\nurl = \"http://127.0.0.1:{HUB_PORT}\"\nnode_metrics = \"{}\"\n\n\
         [[workers]]\nid = \"local\"\nmanaged = true\nnode_metrics = \"{}\"\n{}{}",
        header("grid-unwatched", "grace_period = \"3s\"")
            .replace("[safety]\n", "[safety]\nsample_interval = \"500ms\"\nconsecutive_violations = 2\n"),
        webgpu_task(64),
        grid_exporter.url("{host}"),
        local_exporter.url("127.0.0.1"),
        phase("one", "14s", 3, ""),
        phase("two", "6s", 3, ""),
    );
    let cfg = sb.write("unwatched.toml", &text);
    let mut child = Running::spawn(sb.launch(&cfg), Some(&sb.root));
    // phase one runs (the campaign log says so: the check before it opens sessions too) and a
    // Grid node holds one of its sessions
    let phase_one_runs = || {
        std::fs::read_dir(&sb.logs).into_iter().flatten().flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with("campaign_")
                && std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("phase one (") && t.contains(" started: "))
        })
    };
    assert!(wait_until(Duration::from_secs(90), || phase_one_runs() && !nodes_with_sessions().is_empty()), "{}", child.stdout_so_far());
    std::thread::sleep(Duration::from_secs(2));
    grid_exporter.kill();
    // both nodes drained (in phase one), then the exporter comes back at the same URL
    let drained_both = || {
        sb.campaign_dirs().first().is_some_and(|d| {
            std::fs::read_to_string(d.join("events.jsonl"))
                .is_ok_and(|t| t.lines().filter(|l| l.contains("\"node_drained\"") && l.contains("node_unwatched: ")).count() >= 2)
        })
    };
    assert!(wait_until(Duration::from_secs(30), drained_both), "the Grid's nodes were never drained\n{}", child.stdout_so_far());
    let grid_exporter = Exporter::start_on(grid_exporter.port());
    let code = child.wait_timeout(Duration::from_secs(90)).and_then(|s| s.code());
    let dir = sb.campaign_dir();
    assert_eq!(code, Some(0), "{}\n{}", child.stdout_so_far(), std::fs::read_to_string(dir.join("summary.txt")).unwrap_or_default());
    let unwatched = events_of_kind(&dir, "node_unwatched");
    let drained = events_of_kind(&dir, "node_drained");
    for n in ["node-1", "node-2"] {
        assert!(unwatched.iter().any(|e| e["data"]["node"] == n && e["data"]["action"] == "drain"), "{unwatched:?}");
        assert!(
            drained
                .iter()
                .any(|e| e["data"]["node"] == n && e["data"]["reason"].as_str().is_some_and(|r| r.starts_with("node_unwatched: "))),
            "{drained:?}"
        );
    }
    assert!(!unwatched.iter().chain(&drained).any(|e| e["data"]["worker"] == "local"), "the managed worker's exporter answered");
    let drained_at = drained.iter().filter_map(|e| e["at"].as_str()).max().unwrap_or_default().to_string();
    let reopened = events_of_kind(&dir, "node_reopened");
    for n in ["node-1", "node-2"] {
        assert!(reopened.iter().any(|e| e["data"]["node"] == n && e["data"]["worker"] == "grid"), "{n} never reopened: {reopened:?}");
    }
    let reopened_at = reopened.iter().filter_map(|e| e["at"].as_str()).min().unwrap_or_default().to_string();
    let opened: Vec<String> =
        events_of_kind(&dir, "grid_session_opened").iter().filter_map(|e| e["at"].as_str().map(str::to_string)).collect();
    assert!(opened.iter().any(|at| *at < drained_at), "the Grid held sessions before the drain: {opened:?} vs {drained_at}");
    assert!(
        opened.iter().all(|at| *at <= drained_at || *at >= reopened_at),
        "no session opened on a drained node: {opened:?}, drained {drained_at}, reopened {reopened_at}"
    );
    // reopened: each node's breaker is closed again, naming why (the phase's sessions, kept on
    // the managed worker, need no new one: that a healed node gets work again is the lab's test)
    let transitions = events_of_kind(&dir, "breaker_transition");
    for n in ["node-1", "node-2"] {
        let key = format!("worker:grid/{n}");
        assert!(
            transitions.iter().any(|t| t["data"]["key"] == key.as_str()
                && t["data"]["to"] == "closed"
                && t["data"]["reason"].as_str().is_some_and(|r| r.starts_with("node_recovered: under the limits for "))),
            "{key} was not closed again: {transitions:?}"
        );
    }
    let report = read_json(&dir.join("campaign_report.json"));
    assert_eq!(report["phases"][1]["criteria"]["passed"], true, "{}", report["phases"][1]);
    let grid_ops: u64 = report["grid_nodes"].as_array().into_iter().flatten().map(|n| n["ops_attempted"].as_u64().unwrap_or(0)).sum();
    let total = report["totals"]["ops_attempted"].as_u64().unwrap_or(0);
    assert!(grid_ops > 0 && total > grid_ops, "the Grid ran ops before the drain, the managed worker the rest: {grid_ops} of {total}");
    let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert!(summary.contains("exporter not answering") && summary.contains("node_unwatched: "), "{summary}");
    assert!(hub_sessions().is_empty(), "sessions left on the hub: {:?}", hub_sessions());
    drop(local_exporter);
    drop(grid_exporter);
    drop(grid);
}
