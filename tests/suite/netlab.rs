//! The network-namespace lab (scripts/netlab.sh, issue 23), for real: a Selenium Grid hub, nodes
//! each with its own Chromium and Prometheus node_exporter, and an orchestrator, each in a network
//! namespace of its own on a bridge that lives in one too. Partition and heal a node, add one
//! while the lab runs, open a real WebDriver session through the hub, and check that `down`
//! leaves no namespace and no process of the lab.
//!
//! Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), iproute2, and what scripts/setup.sh and
//! scripts/setup-grid.sh install; without root or `ip` the test prints that it was skipped and
//! why. It starts Java and a browser, so it holds the [`BrowserLock`]. Its namespaces have their
//! own prefix (`sclab-t<pid>-`) and its state its own directory, so a developer's lab (the default
//! `sclab-`) is never touched.

use crate::common::*;
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The lab's /24 (the script's default, written out so the addresses below follow from it).
const NET: &str = "10.213.7";

fn hub() -> String {
    format!("http://{NET}.2:4444")
}

fn node_ip(i: u32) -> String {
    format!("{NET}.{}", 10 + i)
}

fn metrics_url(i: u32) -> String {
    format!("http://{}:9100/metrics", node_ip(i))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A lab brought up by netlab.sh with its state in `dir`; dropping it runs `down`.
struct Lab {
    dir: PathBuf,
    prefix: String,
    /// nsfs inode of every namespace the state file recorded.
    namespaces: HashSet<u64>,
    /// (pid, start time) of every process the state file recorded: each leads its own group.
    processes: HashSet<(i32, u64)>,
}

impl Lab {
    fn new(dir: &Path) -> Lab {
        Lab::named(dir, "t")
    }

    /// A lab whose namespaces are named `sclab-<tag><pid>-…`: each test has its own.
    fn named(dir: &Path, tag: &str) -> Lab {
        Lab {
            dir: dir.to_path_buf(),
            prefix: format!("sclab-{tag}{}-", std::process::id()),
            namespaces: HashSet::new(),
            processes: HashSet::new(),
        }
    }

    fn netlab(&self, args: &[&str], timeout: Duration) -> Output {
        let mut c = Command::new(repo().join("scripts/netlab.sh"));
        c.args(args)
            .env("STRESSCTL_LAB_DIR", &self.dir)
            .env("STRESSCTL_LAB_PREFIX", &self.prefix)
            .env("STRESSCTL_LAB_NET", format!("{NET}.0/24"))
            .env("STRESSCTL_LAB_TIMEOUT", "60");
        run(c, timeout)
    }

    /// `curl` in the orchestrator's namespace (through `netlab.sh exec`), at most `secs` seconds.
    fn curl(&self, secs: u32, args: &[&str]) -> Output {
        let secs = secs.to_string();
        let mut all = vec!["exec", "--", "curl", "-sS", "--max-time", &secs];
        all.extend_from_slice(args);
        self.netlab(&all, Duration::from_secs(30))
    }

    /// Whether node `i`'s node_exporter answers /metrics from the orchestrator within 2 s.
    fn exporter_answers(&self, i: u32) -> bool {
        let out = self.curl(2, &["-f", &metrics_url(i)]);
        out.code() == Some(0) && out.stdout.contains("node_memory_MemAvailable_bytes")
    }

    fn hub_status(&self) -> Value {
        let out = self.curl(5, &["-f", &format!("{}/status", hub())]);
        serde_json::from_str(&out.stdout).unwrap_or(Value::Null)
    }

    /// (`stressctl:node` name, URI) of the nodes the hub lists as UP.
    fn up_nodes(&self) -> Vec<(String, String)> {
        let st = self.hub_status();
        let mut v: Vec<(String, String)> = st["value"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["availability"] == "UP")
            .map(|n| {
                let name = n["slots"][0]["stereotype"]["stressctl:node"].as_str().unwrap_or("?").to_string();
                (name, n["uri"].as_str().unwrap_or("?").to_string())
            })
            .collect();
        v.sort();
        v
    }

    /// Adds what the state file records now to what this test remembers (it goes at `down`).
    fn remember(&mut self) {
        let state = std::fs::read_to_string(self.dir.join("state")).unwrap_or_default();
        for l in state.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.first() {
                Some(&"netns") => self.namespaces.extend(f.get(2).and_then(|s| s.parse::<u64>().ok())),
                Some(&"proc") => {
                    if let (Some(pid), Some(st)) = (f.get(2).and_then(|s| s.parse().ok()), f.get(3).and_then(|s| s.parse().ok())) {
                        self.processes.insert((pid, st));
                    }
                }
                _ => {}
            }
        }
    }

    /// Live processes that belong to the lab: in a recorded process group (started no earlier than
    /// its leader), or running in a recorded namespace.
    fn lab_processes(&self) -> Vec<Proc> {
        let pids: Vec<i32> = std::fs::read_dir("/proc")
            .map(|rd| rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
            .unwrap_or_default();
        pids.into_iter()
            .filter_map(read_proc)
            .filter(|p| p.state != 'Z')
            .filter(|p| {
                let in_group = self.processes.iter().any(|&(g, st)| p.pgid == g && p.start >= st);
                let in_ns = std::fs::read_link(format!("/proc/{}/ns/net", p.pid))
                    .ok()
                    .and_then(|l| l.to_str()?.strip_prefix("net:[")?.strip_suffix(']')?.parse::<u64>().ok())
                    .is_some_and(|ino| self.namespaces.contains(&ino));
                in_group || in_ns
            })
            .collect()
    }

    /// The namespaces named with this lab's prefix.
    fn named_namespaces(&self) -> Vec<String> {
        let out = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&self.prefix))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let out = self.netlab(&["down"], Duration::from_secs(60));
            eprintln!("netlab.sh down after the failure:\n{}", out.describe());
        }
    }
}

fn have_ip() -> bool {
    Command::new("ip").arg("-V").output().is_ok_and(|o| o.status.success())
}

/// A JSON POST through the hub from the orchestrator; the response's `value`.
fn post(lab: &Lab, path: &str, body: &str, secs: u32) -> Value {
    let url = format!("{}{path}", hub());
    let out = lab.curl(secs, &["-H", "Content-Type: application/json; charset=utf-8", "-d", body, &url]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    assert!(v.get("value").is_some(), "POST {path} answered no WebDriver value:\n{}", out.describe());
    v["value"].clone()
}

#[test]
fn a_lab_of_namespaces_runs_grid_nodes_that_can_be_partitioned_healed_and_added_and_down_leaves_nothing() {
    if !lab_possible() {
        return;
    }
    let _lock = BrowserLock::acquire();
    let sb = Sandbox::new("netlab");
    let mut lab = Lab::new(&sb.root.join("lab"));

    // up: two nodes registered, each node_exporter on its own lab address
    let Some(up) = up_two(&mut lab) else { return };
    assert_eq!(lab.namespaces.len(), 5, "bridge, hub, orchestrator and 2 nodes recorded:\n{}", up.describe());
    assert_eq!(lab.processes.len(), 5, "hub, 2 Grid nodes and 2 node_exporters recorded:\n{}", up.describe());
    let want =
        |n: u32| -> Vec<(String, String)> { (1..=n).map(|i| (format!("node-{i}"), format!("http://{}:5555", node_ip(i)))).collect() };
    assert_eq!(lab.up_nodes(), want(2), "the hub lists both nodes UP at their lab addresses");
    for i in 1..=2 {
        assert!(lab.exporter_answers(i), "node-{i}'s node_exporter answers at {}", metrics_url(i));
    }
    // the orchestrator's loopback is its own: no node_exporter there
    let lo = lab.curl(2, &["-f", "http://127.0.0.1:9100/metrics"]);
    assert_ne!(lo.code(), Some(0), "127.0.0.1:9100 in the orchestrator must not reach a node:\n{}", lo.describe());
    // nothing of the lab in the root namespace
    let root_addrs = Command::new("ip").args(["-4", "-o", "addr", "show"]).output().expect("ip addr");
    let root_addrs = String::from_utf8_lossy(&root_addrs.stdout);
    assert!(!root_addrs.contains(&format!(" {NET}.")), "a lab address in the root namespace:\n{root_addrs}");

    // a real Chromium on node-1, driven through the hub from the orchestrator, loads node-1's page
    let caps = r#"{"capabilities": {"alwaysMatch": {"browserName": "chrome", "stressctl:node": "node-1"}}}"#;
    let session = post(&lab, "/session", caps, 60);
    let id = session["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {session}")).to_string();
    post(&lab, &format!("/session/{id}/url"), &format!(r#"{{"url": "http://{}:9100/"}}"#, node_ip(1)), 20);
    let got = post(
        &lab,
        &format!("/session/{id}/execute/sync"),
        r#"{"script": "return [navigator.userAgent, location.href, document.title]", "args": []}"#,
        20,
    );
    let deleted = lab.curl(20, &["-f", "-X", "DELETE", &format!("{}/session/{id}", hub())]);
    assert!(got[0].as_str().is_some_and(|ua| ua.contains("HeadlessChrome")), "not Chromium: {got}");
    assert_eq!(got[1], format!("http://{}:9100/", node_ip(1)), "the page's URL: {got}");
    assert_eq!(got[2], "Node Exporter", "the page loaded: {got}");
    deleted.expect_code(0);

    // partition node-2: unreachable from the orchestrator while node-1 still answers; heal it
    lab.netlab(&["partition", "node-2"], Duration::from_secs(20)).expect_code(0);
    assert!(!lab.exporter_answers(2), "node-2 answers while partitioned");
    assert!(lab.exporter_answers(1), "node-1 stops answering when node-2 is partitioned");
    let st = lab.netlab(&["status"], Duration::from_secs(30));
    assert!(st.stdout.contains(&format!("{}node-2 {} link DOWN (partitioned)", lab.prefix, node_ip(2))), "status:\n{}", st.describe());
    lab.netlab(&["heal", "2"], Duration::from_secs(20)).expect_code(0);
    assert!(wait_until(Duration::from_secs(10), || lab.exporter_answers(2)), "node-2 does not answer 10 s after heal");

    // latency: netem where the kernel has it, else one clear line and a non-zero exit
    let lat = lab.netlab(&["latency", "node-1", "100ms"], Duration::from_secs(20));
    if lat.code() == Some(0) {
        let t = lab.curl(5, &["-f", "-o", "/dev/null", "-w", "%{time_total}", &metrics_url(1)]);
        let secs: f64 = t.stdout.trim().parse().unwrap_or(0.0);
        assert!(secs >= 0.1, "a scrape of node-1 with 100 ms latency took {secs} s:\n{}", t.describe());
        lab.netlab(&["latency", "node-1", "off"], Duration::from_secs(20)).expect_code(0);
    } else {
        assert_eq!(lat.code(), Some(1), "latency without netem:\n{}", lat.describe());
        assert!(lat.stderr.contains("netem") && lat.stderr.trim().lines().count() == 1, "one line naming netem:\n{}", lat.describe());
        eprintln!("latency part skipped: {}", lat.stderr.trim());
    }

    // add: a third node registers while the lab runs
    let add = lab.netlab(&["add"], Duration::from_secs(90));
    lab.remember();
    add.expect_code(0);
    assert!(add.stdout.contains(&format!("node-3 up at {}", node_ip(3))), "{}", add.describe());
    assert_eq!(lab.up_nodes(), want(3), "the hub lists the added node UP");
    assert!(lab.exporter_answers(3), "node-3's node_exporter answers");
    assert_eq!(lab.processes.len(), 7, "the added node's Grid node and exporter recorded");

    down_leaves_nothing(&lab);
}

/// `down`: no namespace, no process of the lab is left; a second `down` is a no-op.
fn down_leaves_nothing(lab: &Lab) {
    let down = lab.netlab(&["down"], Duration::from_secs(60));
    down.expect_code(0);
    assert!(lab.named_namespaces().is_empty(), "namespaces left: {:?}", lab.named_namespaces());
    let mut left = Vec::new();
    let gone = wait_until(ORPHAN_GRACE, || {
        left = lab.lab_processes();
        left.is_empty()
    });
    let list: Vec<String> = left.iter().map(|p| format!("  pid {}: {:.200}", p.pid, p.cmdline)).collect();
    assert!(gone, "processes of the lab (node_exporter, java, chromedriver, Chromium) left after down:\n{}", list.join("\n"));
    let again = lab.netlab(&["down"], Duration::from_secs(30));
    again.expect_code(0);
    assert!(again.stdout.contains("nothing to do"), "{}", again.describe());
}

/// `up --nodes 2` for a test, its state remembered (it goes at `down`); None, after saying why,
/// where this machine cannot make a lab (exit 3: no CAP_NET_ADMIN/CAP_SYS_ADMIN).
fn up_two(lab: &mut Lab) -> Option<Output> {
    let up = lab.netlab(&["up", "--nodes", "2"], Duration::from_secs(90));
    lab.remember();
    if up.code() == Some(3) {
        eprintln!("skipped: {}", up.stderr.trim());
        return None;
    }
    up.expect_code(0);
    Some(up)
}

/// Criteria a phase on 2 shared cores meets while a node is cut off or drained.
const LENIENT: &str = "stress_level = \"low\"\n[phases.criteria]\nmin_success_rate = 0.9\nmax_p95 = \"30s\"";

/// The start of a lab campaign's config: `header` (the sandbox's), the page server on the
/// orchestrator's lab address (the nodes load the page from there), and the timeouts a session
/// through the hub needs on a busy machine.
fn lab_config_head(header: &str) -> String {
    format!("{header}\n[server]\nlisten = \"{NET}.3:0\"\n\n[browser]\nop_timeout = \"60s\"\nsession_timeout = \"60s\"\n\n")
}

/// Whether this test can make a lab here (root and `ip`); says why not when it cannot.
fn lab_possible() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: scripts/netlab.sh needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) for network namespaces");
        return false;
    }
    if !have_ip() {
        eprintln!("skipped: scripts/netlab.sh needs iproute2's `ip`, which is not installed");
        return false;
    }
    true
}

/// The lab's campaign: stressctl in the orchestrator's namespace serves its page on the
/// orchestrator's lab address and drives every task through the hub on the nodes.
fn lab_campaign() -> String {
    let page = format!(
        "stress_level = \"low\"\n[phases.criteria]\nmax_p95 = \"30s\"\n[phases.task]\nkind = \"page\"\nurl = \"http://{}:9100/\"\n\
         script = \"const done = arguments[arguments.length - 1]; let s = 0; for (let i = 0; i < 100000; i++) s += i; \
         done(s === 4999950000 ? {{ok: true}} : {{ok: false, class: 'script_error', message: 'bad sum ' + s}});\"",
        node_ip(1)
    );
    // stressctl runs from the sandbox (`in_orchestrator`), so onnxruntime-web is named by path
    let ort = repo().join("vendor/onnxruntime-web");
    let model = format!("task = {{ kind = \"model\", model = \"builtin:text\", ort_dir = {:?} }}\n{LENIENT}", ort.display().to_string());
    let phases = [
        phase("gpu", "8s", 2, LENIENT),
        phase("model", "20s", 2, &model),
        phase("page", "5s", 2, &page),
        phase("cut", "40s", 2, LENIENT),
        phase("healed", "15s", 2, LENIENT),
    ]
    .concat();
    format!(
        "{}[[workers]]\nid = \"grid\"\nurl = \"{}\"\n\n[task]\nkind = \"webgpu\"\nmatrix_size = 64\n{phases}",
        lab_config_head(&header("lab", "")),
        hub()
    )
}

#[test]
fn a_campaign_on_two_lab_nodes_runs_every_task_there_and_work_leaves_a_partitioned_node_and_comes_back() {
    if !lab_possible() {
        return;
    }
    let _lock = BrowserLock::acquire();
    let sb = Sandbox::new("netlab-campaign");
    let mut lab = Lab::named(&sb.root.join("lab"), "c");
    if up_two(&mut lab).is_none() {
        return;
    }
    let cfg = sb.write("lab.toml", &lab_campaign());
    let cfg = cfg.to_string_lossy().to_string();

    // stressctl runs in the orchestrator's namespace
    let running = Running::spawn(in_orchestrator(&lab, &sb, &["launch", "--config", &cfg]), None);
    // partition node-2 a few seconds into the "cut" phase, heal it 20 s later
    let cut_started = || sb.campaign_dirs().first().is_some_and(|d| d.join("phase_03_page.json").exists());
    assert!(wait_until(Duration::from_secs(150), cut_started), "phase cut never started\n{}", running.stdout_so_far());
    std::thread::sleep(Duration::from_secs(6));
    lab.netlab(&["partition", "node-2"], Duration::from_secs(20)).expect_code(0);
    std::thread::sleep(Duration::from_secs(20));
    lab.netlab(&["heal", "node-2"], Duration::from_secs(20)).expect_code(0);
    let out = running.finish(Duration::from_secs(180));
    out.expect_code(0);

    let dir = sb.campaign_dir();
    let r = read_json(&dir.join("campaign_report.json"));
    let phases = r["phases"].as_array().expect("phases");
    for p in phases {
        assert_eq!(p["criteria"]["passed"], true, "phase {} did not pass: {}", p["name"], p["criteria"]);
    }
    // every op of the WebGPU phase verified against the CPU reference, in the nodes' browsers
    let gpu = &phases[0]["tasks"]["webgpu"];
    assert!(count(&gpu["ops_succeeded"], "ops") > 0 && gpu["verified"] == gpu["ops_succeeded"], "{gpu}");
    assert!(count(&phases[1]["tasks"]["model"]["ops_succeeded"], "inferences") > 0, "{}", phases[1]["tasks"]["model"]);
    // the page and its assets were fetched by the nodes, from their own addresses, never from
    // the orchestrator's loopback
    let nodes = [node_ip(1), node_ip(2)];
    for (i, kind) in [(0, "webgpu"), (1, "model")] {
        let clients = phases[i]["tasks"][kind]["served"]["clients"].as_object().cloned().unwrap_or_default();
        assert!(!clients.is_empty(), "phase {i}: nothing served: {}", phases[i]["tasks"][kind]);
        assert!(clients.keys().all(|c| nodes.contains(c)), "phase {i} served to {clients:?}, not only to the nodes {nodes:?}");
    }
    // node-2's breaker opened while it was cut off, work went to node-1, and node-2 got sessions again
    let events = read_events(&dir.join("events.jsonl"));
    let node2 = |e: &&Value| e["data"]["key"] == "worker:grid/node-2";
    let opened = events.iter().position(|e| e["kind"] == "breaker_transition" && node2(&e) && e["data"]["to"] != "closed");
    let opened = opened.unwrap_or_else(|| panic!("node-2's breaker never opened: {:?}", events_of_kind(&dir, "breaker_transition")));
    assert_eq!(events[opened]["phase"], 3, "node-2's breaker opened in phase cut: {}", events[opened]);
    let closed = events.iter().rposition(|e| e["kind"] == "breaker_transition" && node2(&e) && e["data"]["to"] == "closed");
    let closed = closed.unwrap_or_else(|| panic!("node-2's breaker never closed again"));
    assert!(
        events[closed..].iter().any(|e| e["kind"] == "grid_session_opened" && e["data"]["node"] == "node-2"),
        "no session on node-2 after it was healed"
    );
    // no session of stressctl is left on the hub
    assert!(lab.hub_sessions().is_empty(), "sessions left on the hub: {}", lab.hub_status());
    down_leaves_nothing(&lab);
}

/// `stressctl ARGS` (with the sandbox's directories and environment) in the lab orchestrator's
/// namespace, through `netlab.sh exec`: the process is stressctl itself (`ip netns exec` execs
/// it), so a signal to it reaches stressctl.
fn in_orchestrator(lab: &Lab, sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = Command::new(repo().join("scripts/netlab.sh"));
    c.arg("exec").arg("--").arg(BIN).args(args).args(sb.dir_args()).current_dir(&sb.root);
    c.env("STRESSCTL_LAB_DIR", &lab.dir).env("STRESSCTL_LAB_PREFIX", &lab.prefix).env("STRESSCTL_LAB_NET", format!("{NET}.0/24"));
    c.env("NO_COLOR", "1").env("XDG_CONFIG_HOME", sb.root.join("xdg")).env_remove("GITHUB_STEP_SUMMARY");
    c
}

impl Lab {
    /// SIGKILLs the process the state file recorded as `name` (pid and start time both checked,
    /// so a reused pid is never hit); false when it is not running.
    fn kill_recorded(&self, name: &str) -> bool {
        let state = std::fs::read_to_string(self.dir.join("state")).unwrap_or_default();
        let Some((pid, st)) = state.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&"proc") && f.get(1) == Some(&name))
                .then(|| Some((f.get(2)?.parse::<i32>().ok()?, f.get(3)?.parse::<u64>().ok()?)))?
        }) else {
            return false;
        };
        if read_proc(pid).is_none_or(|p| p.start != st) {
            return false;
        }
        // SAFETY: kill(2) on a pid whose start time matches the lab's record.
        unsafe { libc::kill(pid, libc::SIGKILL) == 0 }
    }

    /// Sessions the hub's nodes hold now (each busy slot's session id).
    fn hub_sessions(&self) -> Vec<String> {
        let st = self.hub_status();
        st["value"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|n| n["slots"].as_array().cloned().unwrap_or_default())
            .filter(|s| !s["session"].is_null())
            .map(|s| s["session"]["sessionId"].as_str().unwrap_or("reserved").to_string())
            .collect()
    }
}

/// Issue 23 in the lab, with every node watched through its own node_exporter
/// (`node_metrics = "http://{host}:9100/metrics"`): node-2's exporter is killed mid-phase, so
/// node-2 is reported unwatched and drained while node-1 carries the load; a node added with
/// `netlab.sh add` during that phase is watched and gets sessions in the next phase (which asks
/// for more sessions than node-1 has, waiting for it); stressctl is then killed with SIGKILL
/// mid-phase and `launch --resume` deletes the dead run's sessions through the hub, so no session
/// of stressctl is left on the hub at the end. (Every exporter in the lab reads the same kernel,
/// so their memory and CPU figures are the same machine's: a per-node drain here is the exporter
/// going silent, the way a crashed or cut-off node shows; the over-a-limit drain is tested on a
/// local Grid in `grid::grid_nodes_over_their_workers_memory_limit…`.)
#[test]
fn in_the_lab_a_node_whose_exporter_dies_is_drained_an_added_node_gets_work_and_kill_9_leaves_no_session() {
    if !lab_possible() {
        return;
    }
    let _lock = BrowserLock::acquire();
    let sb = Sandbox::new("netlab-nodes");
    let mut lab = Lab::named(&sb.root.join("lab"), "n");
    if up_two(&mut lab).is_none() {
        return;
    }
    let phases = [phase("watched", "12s", 2, LENIENT), phase("grown", "8s", 4, LENIENT), phase("killed", "12s", 2, LENIENT)].concat();
    let text = format!(
        "{}[breaker.worker]\nrecovery_timeout = \"240s\"\n\n[grid]\ncapacity_wait = \"90s\"\n\n\
         [[workers]]\nid = \"grid\"\nurl = \"{}\"\nnode_metrics = \"http://{{host}}:9100/metrics\"\n\n[task]\nkind = \"webgpu\"\nmatrix_size = 64\n{phases}",
        lab_config_head(&header("labnodes", "").replace("[safety]\n", "[safety]\nsample_interval = \"500ms\"\nconsecutive_violations = 2\n")),
        hub()
    );
    let cfg = sb.write("lab-nodes.toml", &text);
    let cfg = cfg.to_string_lossy().to_string();
    let running = Running::spawn(in_orchestrator(&lab, &sb, &["launch", "--config", &cfg, "--no-baseline"]), None);
    let events_have = |needle: &str| {
        sb.campaign_dirs().first().is_some_and(|d| std::fs::read_to_string(d.join("events.jsonl")).is_ok_and(|t| t.contains(needle)))
    };
    assert!(
        wait_until(Duration::from_secs(120), || events_have("\"grid_session_opened\"") && events_have("\"node_sample\"")),
        "phase watched never opened a session with its nodes watched\n{}{}",
        running.stdout_so_far(),
        running.stderr_so_far()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(lab.kill_recorded("exporter-2"), "node-2's node_exporter was not running");
    // a third node joins while phase watched runs
    let add = lab.netlab(&["add"], Duration::from_secs(90));
    lab.remember();
    add.expect_code(0);

    // phase killed runs with its sessions open: SIGKILL
    let killed_started = || sb.campaign_dirs().first().is_some_and(|d| d.join("phase_02_grown.json").exists());
    assert!(wait_until(Duration::from_secs(150), killed_started), "phase killed never started\n{}", running.stdout_so_far());
    assert!(
        wait_until(Duration::from_secs(30), || lab.hub_sessions().iter().filter(|s| *s != "reserved").count() == 2),
        "phase killed's sessions never opened: {}",
        lab.hub_status()
    );
    std::thread::sleep(Duration::from_secs(1));
    running.signal(libc::SIGKILL);
    assert_eq!(running.finish(Duration::from_secs(10)).code(), None, "killed by a signal");
    std::thread::sleep(Duration::from_secs(3));
    let dead: Vec<String> = lab.hub_sessions().into_iter().filter(|s| s != "reserved").collect();
    assert!(!dead.is_empty(), "the dead run's sessions stay on the hub until someone deletes them: {}", lab.hub_status());

    let resumed = Running::spawn(in_orchestrator(&lab, &sb, &["launch", "--resume"]), None);
    let out = resumed.finish(Duration::from_secs(180));
    out.expect_code(0);
    assert!(out.stdout.contains("Selenium Grid session(s) campaign") && out.stdout.contains("left on worker grid"), "{}", out.describe());
    assert!(lab.hub_sessions().is_empty(), "sessions left on the hub: {}", lab.hub_status());
    assert!(lab.hub_sessions().iter().all(|s| !dead.contains(s)));

    let dir = sb.campaign_dir();
    let r = read_json(&dir.join("campaign_report.json"));
    for p in r["phases"].as_array().expect("phases") {
        assert_eq!(p["criteria"]["passed"], true, "phase {} did not pass: {}", p["name"], p["criteria"]);
    }
    let events = read_events(&dir.join("events.jsonl"));
    let on = |kind: &str, node: &str| -> Vec<&Value> { events.iter().filter(|e| e["kind"] == kind && e["data"]["node"] == node).collect() };
    // node-2: unwatched, drained for it, and given no session after the drain
    assert!(on("node_unwatched", "node-2").iter().any(|e| e["data"]["action"] == "drain"), "{:?}", on("node_unwatched", "node-2"));
    let drain = events
        .iter()
        .position(|e| {
            e["kind"] == "node_drained"
                && e["data"]["node"] == "node-2"
                && e["data"]["reason"].as_str().is_some_and(|r| r.starts_with("node_unwatched: "))
        })
        .unwrap_or_else(|| panic!("node-2 was never drained: {:?}", events_of_kind(&dir, "node_drained")));
    assert_eq!(events[drain]["phase"], 0, "drained in phase watched: {}", events[drain]);
    let resumed_at = events.iter().rposition(|e| e["kind"] == "campaign_resumed" || e["kind"] == "campaign_started").unwrap_or(0);
    let late = events[drain..resumed_at.max(drain)].iter().filter(|e| e["kind"] == "grid_session_opened" && e["data"]["node"] == "node-2");
    assert_eq!(late.count(), 0, "a session was opened on node-2 after its drain (before the kill)");
    // node-1 carried phase watched; node-3, added during it, is watched and got sessions in grown
    assert!(on("grid_session_opened", "node-1").iter().any(|e| e["phase"] == 0), "node-1 carried phase watched");
    assert!(on("grid_session_opened", "node-3").iter().any(|e| e["phase"] == 1), "node-3 got no session in phase grown");
    assert!(!on("node_sample", "node-3").is_empty(), "node-3's exporter was never scraped");
    let nodes = r["nodes"].as_array().cloned().unwrap_or_default();
    let n2 = nodes.iter().find(|n| n["node"] == "node-2").unwrap_or_else(|| panic!("no node-2 in the report: {nodes:?}"));
    assert!(n2["drains"][0]["reason"].as_str().is_some_and(|r| r.starts_with("node_unwatched: ")), "{n2}");
    down_leaves_nothing(&lab);
}
