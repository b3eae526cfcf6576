//! The `model` task: one onnxruntime-web inference per op in the test page (`assets/model.mjs`),
//! checked element-wise against the wasm provider, and the files the page server serves for it.
//!
//! The page server serves only what the config names: the onnxruntime-web files of each
//! `ort_dir` (a fixed list of six names), the model module and each configured model, under
//! content-hashed paths ([`asset_paths`]: `a/<hash>/<name>`, relative to the run's page URL), so
//! a browser may cache them for good (`immutable`) and a changed file gets a new URL. The six
//! onnxruntime-web files share one hash over all their bytes: onnxruntime-web finds its wasm
//! files by name under one base (`env.wasm.wasmPaths`). Nothing else on disk can be reached: no
//! listing, no path taken from the request.
//!
//! Session set-up (loading onnxruntime-web, creating the inference session, the first inference,
//! the reference session) is one separate call, timed here and returned as [`OpOk::setup`] so the
//! slot keeps it out of the op's latency; its figures (`load_ms`, `first_inference_ms`) and the
//! page's running per-session statistics go to the store through the op's info sink.

use super::{parse_result, OpOk, PageFault};
use crate::config::{Config, ModelTask, TaskSpec};
use crate::onnx::builtin_model;
use crate::recovery::classify_cmd_error;
use crate::recovery::OpError;
use crate::store::Store;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The page's model module, embedded like the test page.
pub const MODEL_MJS: &str = include_str!("../../assets/model.mjs");

/// The onnxruntime-web files the page loads, and the only names served from an `ort_dir`.
pub const ORT_FILES: [&str; 6] = [
    "ort.webgpu.min.mjs",
    "ort-wasm-simd-threaded.asyncify.mjs",
    "ort-wasm-simd-threaded.asyncify.wasm",
    "ort.wasm.min.mjs",
    "ort-wasm-simd-threaded.mjs",
    "ort-wasm-simd-threaded.wasm",
];

/// Imports the model module once per page and calls one of its functions with the spec; answers
/// through the callback also when the import or the call fails.
const MODEL_SCRIPT: &str = r#"const answer = arguments[arguments.length - 1];
const fn = arguments[0], spec = arguments[1];
CONSOLE
// the console entries of a set-up call that succeeded stay for the inference that follows it
const done = (r) => ((r.ok === false || (!spec.prepare && !r.needs_prepare)) ? consoleTo(r, r.ok === false) : Promise.resolve())
  .then(() => answer(r), () => answer(r));
const fail = (m) => done({ok: false, class: 'script_error', message: String(m)});
try {
  if (!window.__stressctlModel) window.__stressctlModel = import(spec.module);
  window.__stressctlModel.then((m) => m[fn](spec)).then(
    (r) => (r && typeof r === 'object') ? done(r) : fail('bad result: ' + String(r)),
    (e) => { fail((e && e.stack) || e); });
} catch (e) { fail((e && e.stack) || e); }"#;

/// A served file: embedded bytes or a path read on each request (read-only).
#[derive(Clone, Debug)]
pub enum Source {
    /// Compiled into the binary (the page module, built-in models).
    Static(&'static [u8]),
    /// A file the config named.
    File(PathBuf),
}

/// The model task's routes: URL path → (source, content type).
#[derive(Clone, Debug, Default)]
pub struct ServedFiles {
    routes: HashMap<String, (Source, &'static str)>,
}

impl ServedFiles {
    /// The routes every `model` phase of `cfg` needs (none when no phase runs a model).
    pub fn for_config(cfg: &Config) -> ServedFiles {
        let mut s = ServedFiles::default();
        for p in &cfg.phases {
            if let TaskSpec::Model(m) = &p.task {
                s.add(m);
            }
        }
        s
    }

    /// Adds the routes of one model task (paths relative to the page URL, see [`asset_paths`]).
    pub fn add(&mut self, m: &ModelTask) {
        let paths = asset_paths(m);
        self.routes.insert(paths.module.clone(), (Source::Static(MODEL_MJS.as_bytes()), "text/javascript"));
        self.routes.insert(paths.model.clone(), (model_source(m), "application/octet-stream"));
        for f in ORT_FILES {
            let ctype = if f.ends_with(".wasm") { "application/wasm" } else { "text/javascript" };
            self.routes.insert(format!("{}{f}", paths.ort_base), (Source::File(m.ort_dir.join(f)), ctype));
        }
    }

    /// The body and content type for `path`, if it is one of the routes. `Err` carries a one-line
    /// reason when the configured file cannot be read (the page reports it).
    pub async fn get(&self, path: &str) -> Option<Result<(Bytes, &'static str), String>> {
        let (src, ctype) = self.routes.get(path)?;
        Some(match src {
            Source::Static(b) => Ok((Bytes::from_static(b), *ctype)),
            Source::File(p) => match tokio::fs::read(p).await {
                Ok(b) => Ok((Bytes::from(b), *ctype)),
                Err(e) => Err(format!("cannot read {}: {e} (onnxruntime-web is installed by scripts/setup-ort.sh)\n", p.display())),
            },
        })
    }
}

/// `check`'s verdict on each distinct onnxruntime-web directory the config's model phases use:
/// (passed, detail). A missing file names the set-up script that installs it.
pub fn check_assets(cfg: &Config) -> Vec<(bool, String)> {
    let mut dirs: Vec<&std::path::Path> = Vec::new();
    for p in &cfg.phases {
        if let TaskSpec::Model(m) = &p.task {
            if !dirs.contains(&m.ort_dir.as_path()) {
                dirs.push(&m.ort_dir);
            }
        }
    }
    dirs.into_iter()
        .map(|d| {
            let missing: Vec<&str> = ORT_FILES.iter().copied().filter(|f| !d.join(f).is_file()).collect();
            if missing.is_empty() {
                (true, format!("{}: the {} files the model task serves", d.display(), ORT_FILES.len()))
            } else {
                (
                    false,
                    format!(
                        "{}: missing {}: run scripts/setup-ort.sh (or point [task] ort_dir at its directory)",
                        d.display(),
                        missing.join(", ")
                    ),
                )
            }
        })
        .collect()
}

fn model_source(m: &ModelTask) -> Source {
    match m.model.strip_prefix("builtin:").and_then(builtin_model) {
        Some(bytes) => Source::Static(bytes),
        None => Source::File(PathBuf::from(&m.model)),
    }
}

/// A model task's URL paths, relative to the run's page URL (which ends with `/`): each names
/// the content it serves by a hash of its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetPaths {
    /// The page's model module (`a/<hash>/model.mjs`).
    pub module: String,
    /// The model (`a/<hash>/model.onnx`).
    pub model: String,
    /// The onnxruntime-web directory (`a/<hash>/`, ends with `/`): one hash over its six files.
    pub ort_base: String,
}

/// Content hash of an asset: CRC-32 of the bytes and their length, hex. It names a version of
/// the content so that a browser may keep it for good; it is not a secret and needs no collision
/// resistance against an attacker (the run's random prefix is the secret).
pub fn content_hash<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut h = crc32fast::Hasher::new();
    let mut len = 0u64;
    for p in parts {
        h.update(p);
        len += p.len() as u64;
    }
    format!("{:08x}{len:x}", h.finalize())
}

/// The content-hashed paths of `m`'s files. Hashing reads them (onnxruntime-web is ~40 MB), so
/// the answer is kept per (model, ort_dir) for the life of the process: the page server and every
/// op ask for it. A file that cannot be read hashes as empty; the server then answers its
/// request with the reason.
pub fn asset_paths(m: &ModelTask) -> AssetPaths {
    type Memo = std::sync::Mutex<HashMap<(String, PathBuf), AssetPaths>>;
    static MEMO: std::sync::LazyLock<Memo> = std::sync::LazyLock::new(Default::default);
    let key = (m.model.clone(), m.ort_dir.clone());
    if let Some(p) = MEMO.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return p.clone();
    }
    let model = match model_source(m) {
        Source::Static(b) => content_hash([b]),
        Source::File(p) => content_hash([std::fs::read(p).unwrap_or_default().as_slice()]),
    };
    let ort: Vec<Vec<u8>> = ORT_FILES.iter().map(|f| std::fs::read(m.ort_dir.join(f)).unwrap_or_default()).collect();
    let paths = AssetPaths {
        module: format!("a/{}/model.mjs", content_hash([MODEL_MJS.as_bytes()])),
        model: format!("a/{model}/model.onnx"),
        ort_base: format!("a/{}/", content_hash(ort.iter().map(Vec::as_slice))),
    };
    MEMO.lock().unwrap_or_else(|e| e.into_inner()).insert(key, paths.clone());
    paths
}

/// Where a model task's per-session figures go: `(key, value)` to record as the phase's task info.
pub type InfoSink<'a> = &'a (dyn Fn(&str, Value) + Sync);

/// The info sink of one session: `session` figures are keyed `session/<worker>/<session>` (and
/// carry both, so a report can group them per worker or browser); other keys are the phase's.
///
/// Each session record also carries the tree RSS of the session's browser at that moment
/// (`rss_mb`, the page reports its figures at set-up and every 100 inferences), and at set-up and
/// every 1,000th inference a checkpoint `rss/<worker>/<session>/<inferences>` is kept beside it:
/// the record is overwritten, the checkpoints make the session's memory over its inferences
/// visible (a leak of GPU or JS memory grows them).
pub fn store_sink<'a>(store: &'a Store, phase_idx: u32, worker: &'a str, session: &'a str) -> impl Fn(&str, Value) + Sync + 'a {
    move |key: &str, mut v: Value| {
        let key = if key == "session" {
            if let Some(o) = v.as_object_mut() {
                o.insert("worker".into(), json!(worker));
                o.insert("session".into(), json!(session));
                if let Some(rss) = browser_tree_rss(worker, session) {
                    let mb = mebibytes(rss);
                    o.insert("rss_mb".into(), json!(mb));
                    let n = o.get("inferences").and_then(Value::as_u64).unwrap_or(0);
                    if n % RSS_CHECKPOINT_EVERY == 0 {
                        store.task_info(phase_idx, "model", format!("rss/{worker}/{session}/{n}"), json!({"inferences": n, "rss_mb": mb}));
                    }
                }
            }
            format!("session/{worker}/{session}")
        } else {
            key.to_string()
        };
        store.task_info(phase_idx, "model", key, v);
    }
}

/// Inferences between two kept RSS checkpoints of a session (also the first one the soak bench
/// reads: the browser's RSS at 1,000 inferences).
pub const RSS_CHECKPOINT_EVERY: u64 = 1000;

fn mebibytes(bytes: u64) -> f64 {
    (bytes as f64 / (1 << 20) as f64 * 10.0).round() / 10.0
}

/// RSS of the whole process tree of the browser that runs session `session` of `worker`, when
/// it runs on this machine under stressctl (managed workers): found among this process's
/// descendants by its profile directory (`<worker>-<session>-<pid>`, unique per session), the
/// topmost process naming it. One scan of /proc; None for a remote browser or one already gone.
pub fn browser_tree_rss(worker: &str, session: &str) -> Option<u64> {
    use crate::guardian::sampler::tree_rss_from;
    use crate::procfs;
    let me = std::process::id();
    let marker = format!("/{worker}-{session}-{me}");
    let procs = procfs::all_processes();
    let named: Vec<&procfs::ProcStat> = procfs::descendant_indices(&procs, me)
        .into_iter()
        .map(|i| &procs[i])
        .filter(|p| std::fs::read(format!("/proc/{}/cmdline", p.pid)).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker)))
        .collect();
    let root = named.iter().find(|p| !named.iter().any(|q| q.pid == p.ppid))?;
    Some(tree_rss_from(&procs, root.pid))
}

/// Runs one inference op: set-up first when the page has no session for this task yet.
pub async fn run_model_op(
    client: &fantoccini::Client,
    m: &ModelTask,
    page_url: &str,
    seed: u32,
    fault: Option<PageFault>,
    info: InfoSink<'_>,
) -> Result<OpOk, OpError> {
    let paths = asset_paths(m);
    let base = if page_url.ends_with('/') { page_url.to_string() } else { format!("{page_url}/") };
    let mut spec = json!({
        "module": format!("{base}{}", paths.module),
        "model_url": format!("{base}{}", paths.model),
        "ort_base": format!("{base}{}", paths.ort_base),
        "provider": m.execution_provider.as_str(),
        "inputs": m.inputs,
        "tolerance": m.tolerance,
        "seed": seed,
    });
    if let Some(f) = fault {
        spec["fault"] = json!(f.as_str());
    }
    if let Some(d) = &m.degraded {
        // the page keeps it in the session's figures: the report counts these apart
        spec["degraded"] = json!(d);
    }
    let t0 = Instant::now();
    let mut v = call(client, "run", &spec).await?;
    let mut setup = Duration::ZERO;
    if v.get("needs_prepare").and_then(Value::as_bool) == Some(true) {
        spec["prepare"] = json!(true);
        let prepared = call(client, "run", &spec).await?;
        if let Some(stats) = prepared.get("stats") {
            info("model", model_summary(m));
            info("session", stats.clone());
        }
        if prepared.get("ok").and_then(Value::as_bool) != Some(true) {
            return parse_result(prepared);
        }
        spec["prepare"] = json!(false);
        setup = t0.elapsed();
        v = call(client, "run", &spec).await?;
    }
    if let Some(stats) = v.get("stats") {
        info("session", stats.clone());
    }
    let mut r = parse_result(v);
    if let Ok(ok) = r.as_mut() {
        ok.setup = setup;
    }
    r
}

async fn call(client: &fantoccini::Client, func: &str, spec: &Value) -> Result<Value, OpError> {
    static SCRIPT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| MODEL_SCRIPT.replacen("CONSOLE\n", &super::console::prelude(), 1));
    client.execute_async(&SCRIPT, vec![json!(func), spec.clone()]).await.map_err(classify_cmd_error)
}

/// What the report says about the model: type, opset, operator counts, parameters, signature.
pub fn model_summary(m: &ModelTask) -> Value {
    let kind = m.model.strip_prefix("builtin:").unwrap_or("user");
    json!({
        "model": m.model,
        "type": kind,
        "execution_provider": m.execution_provider.as_str(),
        "opset": m.info.opset,
        "ir_version": m.info.ir_version,
        "operators": m.info.operators,
        "nodes": m.info.operators.values().sum::<u64>(),
        "parameters": m.info.parameters,
        "inputs": m.inputs,
        "outputs": m.info.outputs,
        "tolerance": m.tolerance,
    })
}
