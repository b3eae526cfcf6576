//! The test page's logic under node (scripts/setup.sh installs it): the WebNN task's graph,
//! reference and check (`assets/webnn.js`), which no browser here can run end to end (Debian's
//! Chromium has no WebNN backend, Firefox no `navigator.ml`).

use std::process::Command;

#[test]
fn webnn_page_logic_passes_its_node_test() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/webnn_test.js");
    let out = Command::new("node").arg(script).output().expect("node runs (scripts/setup.sh installs nodejs)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("webnn.js: ok"), "{text}");
}
