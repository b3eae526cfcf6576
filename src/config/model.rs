//! The `model` task's settings (`[task] kind = "model"`) and their validation: the model file is
//! read here, when the config is validated, so that a missing or non-ONNX file, an input the model
//! lacks, a dynamic dimension left open or an unknown provider is an exit 2 naming the key before
//! any browser starts.

use super::validator::Validator;
use super::ConfigError;
use crate::onnx::{builtin_model, parse_model, read_model, Dim, ModelInfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Where onnxruntime-web is installed unless `ort_dir` says otherwise (`scripts/setup-ort.sh`),
/// relative to the working directory.
pub const DEFAULT_ORT_DIR: &str = "vendor/onnxruntime-web";

/// Input dtypes the page can generate random values for.
const DTYPES: [&str; 6] = ["float32", "int32", "int64", "uint8", "int8", "bool"];

/// The largest input the page is asked to generate (elements per input): a typo in a shape should
/// not make every browser allocate gigabytes.
const MAX_ELEMENTS: u64 = 16 << 20;

/// A `model` task, validated: every input resolved to a concrete shape and dtype.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelTask {
    /// `builtin:text|vision|audio`, or the model file's absolute path (so a resumed campaign
    /// finds it from any working directory).
    pub model: String,
    /// The provider each inference runs on.
    pub execution_provider: Provider,
    /// Every input the model takes, with the shape and dtype the page generates.
    pub inputs: BTreeMap<String, InputSpec>,
    /// How far an output may be from the wasm provider's.
    pub tolerance: Tolerance,
    /// The onnxruntime-web asset directory the page server serves (absolute).
    pub ort_dir: PathBuf,
    /// What the model file says about itself (read at validation; not written back).
    #[serde(skip)]
    pub info: Arc<ModelInfo>,
    /// Set only on a task the recovery ladder adjusted ([`crate::tasks::adjust`]): what it runs
    /// on instead of the configuration, so its inferences are reported as degraded. Never set by
    /// the config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<Degraded>,
}

/// onnxruntime-web execution providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// WebGPU (the `ort.webgpu` build).
    Webgpu,
    /// WebAssembly on the CPU: the reference provider itself.
    Wasm,
    /// WebNN, where the browser has `navigator.ml`.
    Webnn,
}

impl Provider {
    /// The name onnxruntime-web and the config use.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Webgpu => "webgpu",
            Provider::Wasm => "wasm",
            Provider::Webnn => "webnn",
        }
    }
}

/// One input as the page generates it: seeded uniform random values in `range`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Concrete shape (every dynamic dimension given).
    pub shape: Vec<u64>,
    /// `float32`, `int32`, `int64`, `uint8`, `int8` or `bool`; defaults to the model's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// `[low, high)` of the values (defaults: floats [-1, 1), integers [0, 100)); token ids
    /// need the vocabulary's range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
}

/// Element-wise check against the reference: `|x - ref| <= abs + rel * |ref|` (numpy's allclose).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    /// Absolute part.
    #[serde(default = "default_abs")]
    pub abs: f64,
    /// Relative part.
    #[serde(default = "default_rel")]
    pub rel: f64,
}

fn default_abs() -> f64 {
    1e-3
}
fn default_rel() -> f64 {
    1e-2
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { abs: default_abs(), rel: default_rel() }
    }
}

/// The `model` keys of a raw `[task]` table.
pub(super) struct RawModel<'a> {
    pub model: Option<&'a str>,
    pub execution_provider: Option<&'a str>,
    pub inputs: Option<&'a BTreeMap<String, InputSpec>>,
    pub tolerance: Option<Tolerance>,
    pub ort_dir: Option<&'a std::path::Path>,
}

impl Validator<'_> {
    /// Validates a `model` task at `key` (`task` or `phases[i].task`).
    pub(super) fn model_task(&self, key: &str, t: RawModel) -> Result<ModelTask, ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        let model = t.model.ok_or_else(|| {
            self.err(
                k("model"),
                "missing",
                "kind = \"model\" needs model = \"builtin:text\" (or builtin:vision, builtin:audio, or a path to an .onnx file)",
            )
        })?;
        let (model, info) = if let Some(name) = model.strip_prefix("builtin:") {
            let bytes = builtin_model(name).ok_or_else(|| {
                self.err(k("model"), format!("{model:?}"), "the built-in models are builtin:text, builtin:vision and builtin:audio")
            })?;
            let info = parse_model(bytes)
                .map_err(|e| self.err(k("model"), format!("{model:?}"), format!("built-in model unreadable: {e} (please report this)")))?;
            (model.to_string(), info)
        } else {
            let path = std::path::absolute(model)
                .map_err(|e| self.err(k("model"), format!("{model:?}"), format!("cannot resolve the path ({e})")))?;
            let info = read_model(&path).map_err(|e| self.err(k("model"), format!("{:?}", path.display().to_string()), e))?;
            (path.display().to_string(), info)
        };
        let execution_provider = match t.execution_provider.unwrap_or("webgpu") {
            "webgpu" => Provider::Webgpu,
            "wasm" => Provider::Wasm,
            "webnn" => Provider::Webnn,
            other => return Err(self.err(k("execution_provider"), format!("{other:?}"), "must be one of \"webgpu\", \"wasm\", \"webnn\"")),
        };
        let tolerance = t.tolerance.unwrap_or_default();
        for (name, v) in [("abs", tolerance.abs), ("rel", tolerance.rel)] {
            if !v.is_finite() || v < 0.0 {
                return Err(self.err(k(&format!("tolerance.{name}")), v, "must be a finite number ≥ 0"));
            }
        }
        let inputs = self.model_inputs(&k("inputs"), &info, t.inputs)?;
        let ort_dir = t.ort_dir.unwrap_or(std::path::Path::new(DEFAULT_ORT_DIR));
        let ort_dir = std::path::absolute(ort_dir).map_err(|e| {
            self.err(k("ort_dir"), format!("{:?}", ort_dir.display().to_string()), format!("cannot resolve the path ({e})"))
        })?;
        Ok(ModelTask { model, execution_provider, inputs, tolerance, ort_dir, info: Arc::new(info), degraded: None })
    }

    /// Resolves every model input to a concrete shape and dtype; configured inputs must exist and
    /// agree with the model's fixed dimensions.
    fn model_inputs(
        &self,
        key: &str,
        info: &ModelInfo,
        given: Option<&BTreeMap<String, InputSpec>>,
    ) -> Result<BTreeMap<String, InputSpec>, ConfigError> {
        let names: Vec<&str> = info.inputs.iter().map(|i| i.name.as_str()).collect();
        for name in given.into_iter().flat_map(|g| g.keys()) {
            if !names.contains(&name.as_str()) {
                return Err(self.err(format!("{key}.{name}"), "set", format!("the model has no input {name:?}; its inputs are {names:?}")));
            }
        }
        let mut out = BTreeMap::new();
        for sig in &info.inputs {
            let k = format!("{key}.{}", sig.name);
            let given = given.and_then(|g| g.get(&sig.name));
            let dtype = match given.and_then(|g| g.dtype.as_deref()) {
                Some(d) if d != sig.dtype && sig.dtype != "unknown" => {
                    return Err(self.err(format!("{k}.dtype"), format!("{d:?}"), format!("the model's input is {}", sig.dtype)))
                }
                Some(d) => d.to_string(),
                None => sig.dtype.clone(),
            };
            if !DTYPES.contains(&dtype.as_str()) {
                return Err(self.err(
                    format!("{k}.dtype"),
                    format!("{dtype:?}"),
                    format!("the model task generates inputs of {DTYPES:?} only"),
                ));
            }
            let shape = match (given, &sig.shape) {
                (Some(g), Some(dims)) => {
                    if g.shape.len() != dims.len() {
                        return Err(self.err(
                            format!("{k}.shape"),
                            format!("{:?}", g.shape),
                            format!("the model's input has {} dimensions: {}", dims.len(), fmt_dims(dims)),
                        ));
                    }
                    for (i, (&n, d)) in g.shape.iter().zip(dims).enumerate() {
                        if let Dim::Fixed(f) = d {
                            if i64::try_from(n).ok() != Some(*f) {
                                return Err(self.err(
                                    format!("{k}.shape"),
                                    format!("{:?}", g.shape),
                                    format!("dimension {i} is fixed at {f} in the model: {}", fmt_dims(dims)),
                                ));
                            }
                        }
                    }
                    g.shape.clone()
                }
                (Some(g), None) => g.shape.clone(),
                (None, Some(dims)) => {
                    let mut shape = Vec::with_capacity(dims.len());
                    for d in dims {
                        match d {
                            Dim::Fixed(f) if *f > 0 => shape.push(*f as u64),
                            _ => {
                                return Err(self.err(
                                    format!("{k}.shape"),
                                    "missing",
                                    format!(
                                        "the model's input has dynamic dimensions ({}): give them, e.g. inputs.{} = {{ shape = [...] }}",
                                        fmt_dims(dims),
                                        sig.name
                                    ),
                                ))
                            }
                        }
                    }
                    shape
                }
                (None, None) => {
                    return Err(self.err(format!("{k}.shape"), "missing", "the model declares no shape for this input: give one"))
                }
            };
            let elements = shape.iter().try_fold(1u64, |a, &n| a.checked_mul(n)).unwrap_or(u64::MAX);
            if shape.contains(&0) || elements > MAX_ELEMENTS {
                return Err(self.err(
                    format!("{k}.shape"),
                    format!("{shape:?}"),
                    format!("every dimension ≥ 1 and at most {MAX_ELEMENTS} elements"),
                ));
            }
            let range = given.and_then(|g| g.range);
            if let Some([lo, hi]) = range {
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    return Err(self.err(format!("{k}.range"), format!("[{lo}, {hi}]"), "must be [low, high) with low < high"));
                }
            }
            out.insert(sig.name.clone(), InputSpec { shape, dtype: Some(dtype), range });
        }
        Ok(out)
    }
}

fn fmt_dims(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => n.to_string(),
            Dim::Param(p) => p.clone(),
            Dim::Unknown => "?".into(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Which rung of the adjusted settings a task runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting {
    /// The model's dynamic dimensions halved (same provider).
    SmallerInputs,
    /// The `wasm` provider with the configured inputs: the last resort.
    WasmProvider,
}

/// What a degraded task runs on instead of its configuration; sent to the page with every op and
/// kept in the session's figures, so the report can count and describe these inferences.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Degraded {
    /// The rung.
    pub setting: Setting,
    /// The provider the inferences run on now.
    pub provider: Provider,
    /// The provider the config asked for (what these inferences are *not* a pass on).
    pub configured_provider: Provider,
    /// The input shapes the inferences run on now.
    pub inputs: BTreeMap<String, Vec<u64>>,
    /// `[recovery] degraded_counts_as_pass`: whether these inferences count towards a pass
    /// anyway (they are reported as degraded either way).
    pub counts_as_pass: bool,
}
