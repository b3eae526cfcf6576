//! Hardware-class circuits: `hardware:<class>` breakers from the adapters real sessions reported
//! (SwiftShader in Chromium, lavapipe in Firefox), SwiftShader's opened by a GPU device loss.

use crate::common::*;
use std::time::Duration;

#[test]
fn hardware_breakers_per_adapter_class_and_one_opens_when_its_adapter_fails() {
    let _lock = BrowserLock::acquire();
    let sb = Sandbox::new("hardware");
    // Only the hardware scope opens on a GPU error here (the task breaker, which a GPU error also
    // counts against, is out of reach), and it stays open for the rest of the phase.
    let breakers = "\n[breaker]\nrecovery_timeout = \"60s\"\nmax_recovery_timeout = \"60s\"\n\n\
                    [breaker.task]\nfailure_threshold = 1000\nfailure_rate_threshold = 100.0\n\n\
                    [breaker.hardware]\nfailure_threshold = 1\n";
    let workers = "\n[[workers]]\nid = \"c1\"\nmanaged = true\n\n[[workers]]\nid = \"ff\"\nmanaged = true\nbrowser = \"firefox\"\n\n\
                   [[faults]]\nkind = \"gpu_device_lost\"\nworker = \"c1\"\nevery = \"4s\"\n";
    let lenient =
        "browsers = [\"chromium\", \"firefox\"]\nstress_level = \"low\"\n[phases.criteria]\nmin_success_rate = 0.3\nmax_p95 = \"30s\"";
    let cfg = sb.write(
        "hw.toml",
        &format!("{}{}{}{}{}", header("hardware", ""), webgpu_task(32), breakers, workers, phase("both", "14s", 2, lenient)),
    );
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(150));
    assert!(matches!(out.code(), Some(0 | 1)), "{}", out.describe());
    let dir = sb.campaign_dir();
    let r = read_json(&dir.join("campaign_report.json"));
    let classes = &r["breakers"]["final"]["hardware_classes"];
    let swiftshader = &classes["swiftshader"];
    let lavapipe = &classes["lavapipe"];
    assert!(count(&lavapipe["calls"], "lavapipe calls") > 0, "{classes}\n{}", out.describe());
    assert_eq!(lavapipe["state"], "closed", "{classes}");
    let injected = events_of_kind(&dir, "fault_injected");
    let errors: Vec<_> = events_of_kind(&dir, "op_failed").iter().map(|e| e["message"].clone()).collect();
    assert!(count(&swiftshader["failures"], "swiftshader failures") >= 1, "{classes}\ninjected: {injected:?}\nerrors: {errors:?}");
    assert_eq!(swiftshader["state"], "open", "the device loss opened swiftshader's breaker: {classes}");
    let opened: Vec<_> = r["breakers"]["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter(|t| t["key"] == "hardware:swiftshader" && t["to"] == "open")
        .collect();
    assert!(!opened.is_empty(), "{}", r["breakers"]["transitions"]);
    // a GPU error is not the worker's or the browser's fault
    assert_eq!(r["breakers"]["final"]["workers"]["c1"]["failures"], 0, "{}", r["breakers"]["final"]["workers"]);
    assert_eq!(r["breakers"]["final"]["browsers"]["chromium"]["failures"], 0, "{}", r["breakers"]["final"]["browsers"]);
    // the Chromium session whose hardware breaker refused it moved to the worker whose breakers are closed
    let campaign_log: String = std::fs::read_dir(&sb.logs)
        .expect("log dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("campaign_"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(campaign_log.contains("breaker hardware:swiftshader is open: moving this session to worker ff"), "{campaign_log}");
    let summary = std::fs::read_to_string(dir.join("summary.txt")).expect("summary.txt");
    assert!(summary.contains("hardware:lavapipe") && summary.contains("hardware:swiftshader"), "{summary}");
}
