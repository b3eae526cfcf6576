//! An API the browser lacks ends fast: Debian's Chromium answers WebNN's `createContext` with
//! "not supported on this platform"; after 3 such answers in a row the run stops asking it, the
//! phases left with nowhere to run are UNSUPPORTED at once, and the campaign moves on.

use crate::common::*;
use std::time::Duration;

/// Raised p95 limit: this test is about what runs where, not speed.
const LENIENT: &str = "stress_level = \"low\"\n[phases.criteria]\nmax_p95 = \"30s\"";

#[test]
fn a_browser_that_refuses_a_task_three_times_is_not_asked_again_and_the_campaign_moves_on() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("unsupported-fast");
    let webnn = "task = { kind = \"webnn\" }";
    // 90 s of WebNN planned: without the memo every phase would run its whole duration
    let phases =
        [phase("nn-1", "30s", 2, webnn), phase("nn-2", "30s", 2, webnn), phase("nn-3", "30s", 1, webnn), phase("gpu", "3s", 1, LENIENT)]
            .concat();
    let cfg = sb.write("nn.toml", &format!("{}{}{}", header("nn-fast", ""), webgpu_task(32), phases));
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(120));
    // the unsupported phases are left out of the verdict: the campaign passes on its WebGPU phase
    out.expect_code(0);
    // said once, on the terminal, in the browser's words
    let said: Vec<&str> = out.stdout.lines().filter(|l| l.contains("answered unsupported to the webnn task")).collect();
    assert_eq!(said.len(), 1, "{}", out.describe());
    assert!(said[0].contains("chromium") && said[0].contains("not supported on this platform"), "{}", said[0]);

    let dir = sb.campaign_dir();
    let r = read_json(&dir.join("campaign_report.json"));
    let phases = r["phases"].as_array().expect("phases");
    // the first phase stopped asking after 3 refusals in a row (one more may have been in flight
    // on the other session): far from its 30 s
    let first = &phases[0];
    assert_eq!(first["criteria"]["unsupported"], true, "{}", first["criteria"]);
    let ops = count(&first["ops_attempted"], "ops");
    assert!((3..=4).contains(&ops), "{ops} ops in the first phase\n{first}");
    assert!(num(&first["duration_s"], "duration") < 10.0, "{first}");
    // the others had nowhere to run: no session, no op, UNSUPPORTED with the browser's words
    for p in &phases[1..3] {
        assert_eq!((count(&p["sessions"], "sessions"), count(&p["ops_attempted"], "ops")), (0, 0), "{p}");
        assert_eq!(p["criteria"]["unsupported"], true, "{p}");
        let why = p["criteria"]["failures"][0].as_str().unwrap_or_default();
        assert!(
            why.starts_with("not run: chromium answered unsupported to the webnn task") && why.contains("not supported on this platform"),
            "{why}"
        );
    }
    // another task on the same browser is still asked
    let gpu = &phases[3];
    assert_eq!(gpu["criteria"]["passed"], true, "{gpu}");
    assert!(count(&gpu["ops_succeeded"], "ops") > 0, "{gpu}");

    let events = events_of_kind(&dir, "task_unsupported");
    let (given_up, remembered): (Vec<_>, Vec<_>) = events.iter().partition(|e| e["data"]["remembered"] == false);
    assert_eq!(given_up.len(), 1, "{events:?}");
    assert_eq!((given_up[0]["data"]["answers"].as_u64(), given_up[0]["phase"].as_u64()), (Some(3), Some(0)), "{}", given_up[0]);
    assert_eq!(remembered.iter().filter_map(|e| e["phase"].as_u64()).collect::<Vec<_>>(), [1, 2], "{events:?}");

    let summary = std::fs::read_to_string(dir.join("summary.txt")).expect("summary");
    assert!(summary.contains("no phase failed its criteria; 3 unsupported"), "{summary}");
}
