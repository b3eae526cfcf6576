//! Watched nodes without a browser (issue 23): the node watcher runs beside any campaign, so a
//! synthetic one shows the rule that stops a campaign for nodes — when every worker is watched
//! and every node is drained, no node is left to carry the load.

use crate::common::exporter::Exporter;
use crate::common::*;
use std::path::Path;
use std::time::Duration;

#[test]
fn a_campaign_whose_every_node_is_drained_stops_with_the_reason() {
    if !Path::new(Exporter::BIN).exists() {
        eprintln!("skipped: {} is not installed (apt-get install prometheus-node-exporter)", Exporter::BIN);
        return;
    }
    let sb = Sandbox::new("nodes-none-left");
    let exporter = Exporter::start();
    let text = format!(
        "{}{}\n[[workers]]\nid = \"only\"\nurl = \"http://127.0.0.1:9\"\nnode_metrics = \"{}\"\n[workers.safety]\nmemory_percent = 1\n{}",
        header("nodes", "").replace("[safety]\n", "[safety]\nsample_interval = \"250ms\"\nconsecutive_violations = 2\n"),
        synthetic_task("5ms", 0.0),
        exporter.url("127.0.0.1"),
        phase("one", "30s", 1, ""),
    );
    let cfg = sb.write("nodes.toml", &text);
    let started = std::time::Instant::now();
    let out = run(sb.launch(&cfg), Duration::from_secs(60));
    assert_ne!(out.code(), Some(0), "{}", out.describe());
    assert!(started.elapsed() < Duration::from_secs(25), "stopped long before the phase's 30 s: {:?}", started.elapsed());
    let report = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let reason = report["stop_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("node_distress: no node is left"), "{}", report["stop_reason"]);
    let drained = events_of_kind(&sb.campaign_dir(), "node_drained");
    assert_eq!(drained.len(), 1, "{drained:?}");
    assert!(drained[0]["data"]["reason"].as_str().is_some_and(|r| r.starts_with("node_distress: memory")), "{drained:?}");
    drop(exporter);
}
