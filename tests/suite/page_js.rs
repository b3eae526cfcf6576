//! The test page's logic under node (scripts/setup.sh installs it): the WebNN task's graph,
//! reference and check (`assets/webnn.js`), which no browser here can run end to end (Debian's
//! Chromium has no WebNN backend, Firefox no `navigator.ml`); and the console listener of the op
//! scripts, on cases a browser test cannot stage on demand (a device lost by the GPU process).

use std::process::Command;

#[test]
fn webnn_page_logic_passes_its_node_test() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/webnn_test.js");
    let out = Command::new("node").arg(script).output().expect("node runs (scripts/setup.sh installs nodejs)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("webnn.js: ok"), "{text}");
}

/// The console listener every browser op script starts with (`tasks::console::prelude`), under
/// node with a stand-in `window` and WebGPU adapter: what is counted, against which op, and what
/// is not (a destroyed device, a second install).
#[test]
fn console_prelude_counts_each_entry_once_against_its_op() {
    let dir = tempfile::tempdir().unwrap();
    let prelude = stressctl::tasks::console::prelude();
    let harness = format!(
        r#"
const assert = require('assert');
globalThis.window = new EventTarget();
let lose;
class FakeDevice extends EventTarget {{ constructor() {{ super(); this.lost = new Promise((r) => {{ lose = r; }}); }} }}
window.GPUAdapter = class {{ requestDevice() {{ return Promise.resolve(new FakeDevice()); }} }};
console.error = () => {{}};
const fire = (target, type, props) => {{ const e = new Event(type); Object.assign(e, props); target.dispatchEvent(e); }};
const op = async (prelude, failed, body) => {{ await prelude(); await body(); const o = {{}}; await window.__consoleTo(o, failed); return o; }};
(async () => {{
  const install = () => {{ {prelude}
    window.__consoleTo = consoleTo; }};
  install();
  const none = async () => {{}};
  let o = await op(none, false, async () => console.error('boom', {{x: 1}}, new Error('e1')));
  assert.strictEqual(o.console_n, 1);
  assert.ok(o.console[0].startsWith('console.error: boom {{"x":1}} Error: e1'), o.console[0]);
  o = await op(none, false, none);
  assert.strictEqual(o.console_n, undefined, 'nothing new, nothing counted');
  // a second script on the same page does not install a second listener
  install();
  o = await op(none, false, async () => console.error('once'));
  assert.deepStrictEqual([o.console_n, o.console], [1, ['console.error: once']]);
  // WebGPU: an uncaptured error, then a destroy (not a loss), on a failed op
  const dev = await new window.GPUAdapter().requestDevice();
  o = await op(none, true, async () => {{
    fire(dev, 'uncapturederror', {{error: {{message: 'Buffer usages are invalid'}}}});
    lose({{reason: 'destroyed', message: 'destroyed'}});
  }});
  assert.deepStrictEqual([o.console_n, o.console], [1, ['webgpu error: Buffer usages are invalid']]);
  // an entry between two ops goes to the next op; a real loss and an uncaught error
  const dev2 = await new window.GPUAdapter().requestDevice();
  lose({{reason: 'unknown', message: 'GPU process gone'}});
  await new Promise((r) => setTimeout(r, 0));
  fire(window, 'error', {{error: new Error('late'), message: 'Uncaught Error: late'}});
  await new Promise((r) => setTimeout(r, 0));
  o = await op(none, false, none);
  assert.strictEqual(o.console_n, 2);
  assert.strictEqual(o.console[0], 'webgpu device lost: unknown: GPU process gone');
  assert.ok(o.console[1].startsWith('uncaught: Error: late'), o.console[1]);
  // a flood: every entry counted, 8 carried, each cut
  o = await op(none, false, async () => {{ for (let i = 0; i < 40; i++) console.error('x'.repeat(1000)); }});
  assert.strictEqual(o.console_n, 40);
  assert.strictEqual(o.console.length, 8);
  assert.strictEqual(o.console[0].length, 'console.error: '.length + 400);
  void dev2;
  console.log('console prelude: ok');
}})().catch((e) => {{ console.log(String(e && e.stack || e)); process.exit(1); }});
"#
    );
    let path = dir.path().join("console_test.js");
    std::fs::write(&path, harness).unwrap();
    let out = Command::new("node").arg(&path).output().expect("node runs (scripts/setup.sh installs nodejs)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("console prelude: ok"), "{text}");
}
