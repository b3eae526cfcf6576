//! The recovery ladder's "adjusted settings" step (level 4) for the `model` task.
//!
//! A model that keeps failing on its configured settings is given a lighter workload, one rung
//! per application of the step: first smaller inputs (every dimension the model leaves dynamic,
//! and the user therefore gave, halved), then the `wasm` execution provider as the last resort.
//! A rung that would change nothing is skipped (a model with only fixed dimensions, as the
//! built-in ones, goes straight to `wasm`; a task already on `wasm` has no last resort).
//!
//! Each adjusted task carries a [`Degraded`] marker: the page copies it into the session's
//! figures, and the report counts those inferences apart (`degraded`) and never as successes of
//! the configured settings (a wasm inference is not a pass on WebGPU).

use crate::config::{Degraded, ModelTask, Provider, Setting, TaskSpec};
use crate::onnx::Dim;
use std::collections::BTreeMap;

/// The configured inputs with every dynamic dimension of the model halved (at least 1); None
/// when nothing would shrink.
fn halved_inputs(m: &ModelTask) -> Option<BTreeMap<String, crate::config::InputSpec>> {
    let mut inputs = m.inputs.clone();
    let mut shrunk = false;
    for sig in &m.info.inputs {
        let (Some(dims), Some(spec)) = (&sig.shape, inputs.get_mut(&sig.name)) else { continue };
        for (n, d) in spec.shape.iter_mut().zip(dims) {
            if !matches!(d, Dim::Fixed(_)) && *n > 1 {
                *n /= 2;
                shrunk = true;
            }
        }
    }
    shrunk.then_some(inputs)
}

/// The task one more application of the step runs: `base` is the configured task, `current`
/// the adjusted one it runs now (None: the configured settings). None when there is no lighter
/// rung left.
pub fn next_model(base: &ModelTask, current: Option<&ModelTask>) -> Option<ModelTask> {
    let rung = current.and_then(|c| c.degraded.as_ref()).map(|d| d.setting);
    let mut next = base.clone();
    let setting = match (rung, halved_inputs(base)) {
        (None, Some(inputs)) => {
            next.inputs = inputs;
            Setting::SmallerInputs
        }
        (None | Some(Setting::SmallerInputs), _) if base.execution_provider != Provider::Wasm => {
            next.execution_provider = Provider::Wasm;
            Setting::WasmProvider
        }
        _ => return None,
    };
    next.degraded = Some(Degraded {
        setting,
        provider: next.execution_provider,
        configured_provider: base.execution_provider,
        inputs: next.inputs.iter().map(|(k, v)| (k.clone(), v.shape.clone())).collect(),
        counts_as_pass: false,
    });
    Some(next)
}

/// [`next_model`] for a phase's task: the adjusted task and a line saying what changed, or None
/// for tasks other than `model` and when no rung is left. `counts_as_pass`: `[recovery]
/// degraded_counts_as_pass`, carried by the marker to the report.
pub fn next_adjusted(base: &TaskSpec, current: Option<&TaskSpec>, counts_as_pass: bool) -> Option<(TaskSpec, String)> {
    let TaskSpec::Model(base) = base else { return None };
    let current = match current {
        Some(TaskSpec::Model(m)) => Some(m),
        _ => None,
    };
    let mut next = next_model(base, current)?;
    if let Some(d) = next.degraded.as_mut() {
        d.counts_as_pass = counts_as_pass;
    }
    let d = next.degraded.as_ref()?;
    let what = match d.setting {
        Setting::SmallerInputs => format!("inputs {:?} (dynamic dimensions halved)", d.inputs),
        Setting::WasmProvider => "the wasm execution provider (last resort)".to_string(),
    };
    let line = format!(
        "adjusted settings: the model now runs on {what} instead of its configuration on {}; \
         these inferences are reported as degraded, {}",
        d.configured_provider.as_str(),
        if counts_as_pass { "and count as successes (degraded_counts_as_pass)" } else { "not as successes" }
    );
    Some((TaskSpec::Model(next), line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{InputSpec, Tolerance};
    use crate::onnx::{builtin_model, parse_model, read_model};
    use std::sync::Arc;

    fn task(info: crate::onnx::ModelInfo, shape: Vec<u64>, provider: Provider) -> ModelTask {
        let name = info.inputs[0].name.clone();
        ModelTask {
            model: "m".into(),
            execution_provider: provider,
            inputs: [(name, InputSpec { shape, dtype: Some("float32".into()), range: None })].into(),
            tolerance: Tolerance::default(),
            ort_dir: "/ort".into(),
            info: Arc::new(info),
            degraded: None,
        }
    }

    fn fixture() -> crate::onnx::ModelInfo {
        read_model(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/test/dynamic.onnx")).unwrap()
    }

    #[test]
    fn dynamic_dimensions_are_halved_first_then_wasm_is_the_last_resort() {
        // input_embeds: [batch, sequence, 64]
        let base = task(fixture(), vec![2, 32, 64], Provider::Webgpu);
        let smaller = next_model(&base, None).unwrap();
        assert_eq!(smaller.inputs["input_embeds"].shape, vec![1, 16, 64], "the fixed dimension is kept");
        assert_eq!(smaller.execution_provider, Provider::Webgpu);
        let d = smaller.degraded.clone().unwrap();
        assert_eq!((d.setting, d.provider, d.configured_provider), (Setting::SmallerInputs, Provider::Webgpu, Provider::Webgpu));
        let wasm = next_model(&base, Some(&smaller)).unwrap();
        assert_eq!(wasm.execution_provider, Provider::Wasm);
        assert_eq!(wasm.inputs["input_embeds"].shape, vec![2, 32, 64], "the last resort runs the configured inputs");
        assert_eq!(wasm.degraded.as_ref().unwrap().setting, Setting::WasmProvider);
        assert!(next_model(&base, Some(&wasm)).is_none(), "nothing lighter than the last resort");
    }

    #[test]
    fn fixed_shapes_go_straight_to_wasm_and_wasm_has_no_last_resort() {
        let text = parse_model(builtin_model("text").unwrap()).unwrap();
        let base = task(text.clone(), vec![1, 64, 128], Provider::Webgpu);
        let next = next_model(&base, None).unwrap();
        assert_eq!(next.degraded.unwrap().setting, Setting::WasmProvider);
        assert!(next_model(&task(text, vec![1, 64, 128], Provider::Wasm), None).is_none());
        // a dynamic model on wasm: only the smaller inputs
        let base = task(fixture(), vec![1, 1, 64], Provider::Wasm);
        assert!(next_model(&base, None).is_none(), "nothing to halve, already on wasm");
    }

    #[test]
    fn other_tasks_have_no_model_adjustment() {
        assert!(next_adjusted(&TaskSpec::Webgpu { matrix_size: 64 }, None, false).is_none());
        let base = TaskSpec::Model(task(fixture(), vec![1, 32, 64], Provider::Webgpu));
        let (t, line) = next_adjusted(&base, None, false).unwrap();
        assert!(line.contains("dynamic dimensions halved") && line.contains("degraded"), "{line}");
        let (_, line) = next_adjusted(&base, Some(&t), false).unwrap();
        assert!(line.contains("wasm execution provider"), "{line}");
    }
}
