//! A reader of ONNX model files: just enough of the protobuf wire format to learn a model's
//! signature (input/output names, dtypes, shapes with their dynamic dimensions), opset, operator
//! counts and parameter count.
//!
//! Why here and not in the page: a `model` task is checked when the config is validated, before
//! any browser starts, so a missing, unreadable or non-ONNX file, or an input the model does not
//! have, is an exit 2 naming the key rather than a campaign of failing ops. Hand-written because it
//! needs about 200 lines: a few fields of six messages (`onnx.proto3`: ModelProto, GraphProto,
//! NodeProto, TensorProto, ValueInfoProto, TypeProto); unknown fields are skipped, as protobuf
//! readers do. The whole file is walked, so a truncated copy is refused; a bit flipped inside a
//! weight cannot be seen here (the inference check against the wasm provider sees what it does).

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One dimension of a tensor shape as the model declares it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A named dynamic dimension (`dim_param`, e.g. "sequence"): the config must give its size.
    Param(String),
    /// A dimension with neither a size nor a name: dynamic too.
    Unknown,
}

/// A graph input or output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TensorSig {
    /// Its name (the key of the inference's feeds / results).
    pub name: String,
    /// ONNX `TensorProto.DataType` as a name (`float32`, `int64`, …).
    pub dtype: String,
    /// Declared shape; `None` when the model declares none (then the config must give one).
    pub shape: Option<Vec<Dim>>,
}

/// What stressctl knows about a model after reading it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    /// `ModelProto.ir_version`.
    pub ir_version: i64,
    /// Version of the default (`ai.onnx`) operator set.
    pub opset: i64,
    /// `producer_name`, when set.
    pub producer: String,
    /// Inputs the caller feeds (graph inputs that are not initializers).
    pub inputs: Vec<TensorSig>,
    /// Outputs, in graph order.
    pub outputs: Vec<TensorSig>,
    /// Node count per operator type of the main graph (domain-qualified outside `ai.onnx`).
    pub operators: BTreeMap<String, u64>,
    /// Elements in all initializers (weights, biases, constants).
    pub parameters: u64,
}

/// Why a file is not a model this task can run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OnnxError {
    /// The bytes are not a well-formed protobuf message.
    #[error("not an ONNX model (malformed protobuf at byte {at}: {what})")]
    Malformed {
        /// Offset of the problem.
        at: usize,
        /// What was wrong there.
        what: &'static str,
    },
    /// Well-formed, but not a model (no IR version, no graph or no opset).
    #[error("not an ONNX model ({0})")]
    NotAModel(&'static str),
    /// Weights stored outside the file: the page server serves only the configured file.
    #[error("its weights are in external data files, which the model task does not serve; save the model with its weights inside the .onnx file")]
    ExternalData,
}

/// The built-in reference models (`scripts/gen-models.py`), compiled in so that `builtin:*` works
/// from any working directory: (name, bytes).
pub const BUILTINS: [(&str, &[u8]); 3] = [
    ("text", include_bytes!("../models/builtin/text.onnx")),
    ("vision", include_bytes!("../models/builtin/vision.onnx")),
    ("audio", include_bytes!("../models/builtin/audio.onnx")),
];

/// The bytes of built-in model `name` (`text`, `vision`, `audio`).
pub fn builtin_model(name: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// Reads and parses a model file; the error is one line naming the problem (the caller names the
/// file and key).
pub fn read_model(path: &Path) -> Result<ModelInfo, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it ({e})"))?;
    parse_model(&bytes).map_err(|e| e.to_string())
}

/// Parses a serialized `ModelProto`.
pub fn parse_model(buf: &[u8]) -> Result<ModelInfo, OnnxError> {
    let mut ir_version = 0;
    let mut opset = None;
    let mut producer = String::new();
    let mut graph = None;
    for f in fields(buf, 0) {
        let f = f?;
        match (f.num, f.val) {
            (1, Val::Int(v)) => ir_version = v as i64,
            (2, Val::Bytes(b)) => producer = text(b),
            (7, Val::Bytes(b)) => graph = Some(parse_graph(b, f.at)?),
            (8, Val::Bytes(b)) => {
                let (mut domain, mut version) = (String::new(), 0i64);
                for g in fields(b, f.at) {
                    let g = g?;
                    match (g.num, g.val) {
                        (1, Val::Bytes(d)) => domain = text(d),
                        (2, Val::Int(v)) => version = v as i64,
                        _ => {}
                    }
                }
                if domain.is_empty() || domain == "ai.onnx" {
                    opset = Some(version);
                }
            }
            _ => {}
        }
    }
    if ir_version <= 0 {
        return Err(OnnxError::NotAModel("no IR version"));
    }
    let g = graph.ok_or(OnnxError::NotAModel("no graph"))?;
    let opset = opset.ok_or(OnnxError::NotAModel("no ai.onnx opset import"))?;
    if g.external {
        return Err(OnnxError::ExternalData);
    }
    let inputs = g.inputs.into_iter().filter(|i| !g.init_names.contains(&i.name)).collect();
    Ok(ModelInfo { ir_version, opset, producer, inputs, outputs: g.outputs, operators: g.operators, parameters: g.parameters })
}

struct Graph {
    inputs: Vec<TensorSig>,
    outputs: Vec<TensorSig>,
    operators: BTreeMap<String, u64>,
    parameters: u64,
    init_names: std::collections::HashSet<String>,
    external: bool,
}

fn parse_graph(buf: &[u8], base: usize) -> Result<Graph, OnnxError> {
    let mut g = Graph {
        inputs: Vec::new(),
        outputs: Vec::new(),
        operators: BTreeMap::new(),
        parameters: 0,
        init_names: Default::default(),
        external: false,
    };
    for f in fields(buf, base) {
        let f = f?;
        let Val::Bytes(b) = f.val else { continue };
        match f.num {
            1 => {
                let (mut op, mut domain) = (String::new(), String::new());
                for n in fields(b, f.at) {
                    let n = n?;
                    match (n.num, n.val) {
                        (4, Val::Bytes(s)) => op = text(s),
                        (7, Val::Bytes(s)) => domain = text(s),
                        _ => {}
                    }
                }
                let key = if domain.is_empty() || domain == "ai.onnx" { op } else { format!("{domain}.{op}") };
                *g.operators.entry(key).or_insert(0) += 1;
            }
            5 => {
                let (name, elements, external) = parse_tensor(b, f.at)?;
                g.parameters = g.parameters.saturating_add(elements);
                g.external |= external;
                g.init_names.insert(name);
            }
            11 => g.inputs.push(parse_value_info(b, f.at)?),
            12 => g.outputs.push(parse_value_info(b, f.at)?),
            _ => {}
        }
    }
    Ok(g)
}

/// (name, element count, stored externally) of a `TensorProto`.
fn parse_tensor(buf: &[u8], base: usize) -> Result<(String, u64, bool), OnnxError> {
    let (mut name, mut elements, mut external) = (String::new(), 1u64, false);
    for f in fields(buf, base) {
        let f = f?;
        match (f.num, f.val) {
            (1, Val::Int(d)) => elements = elements.saturating_mul(d),
            (1, Val::Bytes(packed)) => {
                for d in varints(packed, f.at) {
                    elements = elements.saturating_mul(d?);
                }
            }
            (8, Val::Bytes(s)) => name = text(s),
            (14, Val::Int(1)) => external = true,
            _ => {}
        }
    }
    Ok((name, elements, external))
}

fn parse_value_info(buf: &[u8], base: usize) -> Result<TensorSig, OnnxError> {
    let mut sig = TensorSig { name: String::new(), dtype: "unknown".into(), shape: None };
    for f in fields(buf, base) {
        let f = f?;
        match (f.num, f.val) {
            (1, Val::Bytes(s)) => sig.name = text(s),
            (2, Val::Bytes(ty)) => {
                for t in fields(ty, f.at) {
                    let t = t?;
                    // TypeProto.tensor_type; other kinds (sequence, map) keep dtype "unknown"
                    let (1, Val::Bytes(tensor)) = (t.num, t.val) else { continue };
                    for x in fields(tensor, t.at) {
                        let x = x?;
                        match (x.num, x.val) {
                            (1, Val::Int(code)) => sig.dtype = dtype_name(code).to_string(),
                            (2, Val::Bytes(shape)) => sig.shape = Some(parse_shape(shape, x.at)?),
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(sig)
}

fn parse_shape(buf: &[u8], base: usize) -> Result<Vec<Dim>, OnnxError> {
    let mut dims = Vec::new();
    for f in fields(buf, base) {
        let f = f?;
        let (1, Val::Bytes(d)) = (f.num, f.val) else { continue };
        let mut dim = Dim::Unknown;
        for x in fields(d, f.at) {
            let x = x?;
            match (x.num, x.val) {
                (1, Val::Int(v)) => dim = Dim::Fixed(v as i64),
                (2, Val::Bytes(p)) => dim = Dim::Param(text(p)),
                _ => {}
            }
        }
        dims.push(dim);
    }
    Ok(dims)
}

/// ONNX `TensorProto.DataType` codes as the names the config and the page use.
pub fn dtype_name(code: u64) -> &'static str {
    match code {
        1 => "float32",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "string",
        9 => "bool",
        10 => "float16",
        11 => "float64",
        12 => "uint32",
        13 => "uint64",
        16 => "bfloat16",
        _ => "unknown",
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A field's value by wire type (fixed-width values are skipped by the callers).
enum Val<'a> {
    Int(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Field<'a> {
    num: u64,
    val: Val<'a>,
    /// Absolute offset of the value in the file (for error messages and nested offsets).
    at: usize,
}

/// Iterates the fields of one message; `base` is its offset in the file.
fn fields(buf: &[u8], base: usize) -> impl Iterator<Item = Result<Field<'_>, OnnxError>> {
    let mut pos = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= buf.len() {
            return None;
        }
        let r = next_field(buf, &mut pos, base);
        failed = r.is_err();
        Some(r)
    })
}

fn next_field<'a>(buf: &'a [u8], pos: &mut usize, base: usize) -> Result<Field<'a>, OnnxError> {
    let key = varint(buf, pos, base)?;
    let num = key >> 3;
    if num == 0 {
        return Err(OnnxError::Malformed { at: base + *pos, what: "field number 0" });
    }
    let at = base + *pos;
    let val = match key & 7 {
        0 => Val::Int(varint(buf, pos, base)?),
        1 | 5 => {
            let n = if key & 7 == 1 { 8 } else { 4 };
            if buf.len() - *pos < n {
                return Err(OnnxError::Malformed { at, what: "fixed-width value past the end" });
            }
            *pos += n;
            Val::Fixed
        }
        2 => {
            let len = varint(buf, pos, base)?;
            let start = *pos;
            if len > (buf.len() - start) as u64 {
                return Err(OnnxError::Malformed { at, what: "length past the end (truncated file?)" });
            }
            *pos = start + len as usize;
            return Ok(Field { num, val: Val::Bytes(&buf[start..*pos]), at: base + start });
        }
        _ => return Err(OnnxError::Malformed { at, what: "unknown wire type" }),
    };
    Ok(Field { num, val, at })
}

fn varint(buf: &[u8], pos: &mut usize, base: usize) -> Result<u64, OnnxError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&b) = buf.get(*pos) else {
            return Err(OnnxError::Malformed { at: base + *pos, what: "varint past the end" });
        };
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(OnnxError::Malformed { at: base + *pos, what: "varint longer than 10 bytes" })
}

fn varints(buf: &[u8], base: usize) -> impl Iterator<Item = Result<u64, OnnxError>> + '_ {
    let mut pos = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= buf.len() {
            return None;
        }
        let r = varint(buf, &mut pos, base);
        failed = r.is_err();
        Some(r)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin(name: &str) -> Vec<u8> {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(name)).expect("committed model")
    }

    #[test]
    fn reads_the_builtin_text_model() {
        let m = parse_model(&builtin("builtin/text.onnx")).unwrap();
        assert_eq!(m.opset, 17);
        assert_eq!(m.ir_version, 8);
        assert_eq!(m.inputs.len(), 1);
        assert_eq!(m.inputs[0].name, "input_embeds");
        assert_eq!(m.inputs[0].dtype, "float32");
        assert_eq!(m.inputs[0].shape, Some(vec![Dim::Fixed(1), Dim::Fixed(64), Dim::Fixed(128)]));
        assert_eq!(m.outputs[0].name, "last_hidden_state");
        assert_eq!(m.operators["LayerNormalization"], 5);
        assert_eq!(m.operators["Softmax"], 2);
        assert_eq!(m.operators["Erf"], 2);
        // 2 blocks × (4 × (128×128 + 128) + 128×512 + 512 + 512×128 + 128 + 2 × 2 × 128) + final LN + scalars
        assert!(m.parameters > 390_000 && m.parameters < 400_000, "{}", m.parameters);
    }

    #[test]
    fn reads_vision_audio_and_dynamic_dims() {
        let v = parse_model(&builtin("builtin/vision.onnx")).unwrap();
        assert_eq!(v.inputs[0].shape, Some(vec![Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(64), Dim::Fixed(64)]));
        assert_eq!(v.operators["Conv"], 3);
        assert_eq!(v.operators["BatchNormalization"], 3);
        let a = parse_model(&builtin("builtin/audio.onnx")).unwrap();
        assert_eq!(a.inputs[0].shape, Some(vec![Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(16000)]));
        let d = parse_model(&builtin("test/dynamic.onnx")).unwrap();
        assert_eq!(d.inputs[0].shape, Some(vec![Dim::Param("batch".into()), Dim::Param("sequence".into()), Dim::Fixed(64)]));
    }

    #[test]
    fn a_truncated_or_foreign_file_is_refused() {
        let full = builtin("builtin/vision.onnx");
        let e = parse_model(&full[..full.len() / 2]).unwrap_err();
        assert!(matches!(e, OnnxError::Malformed { .. }), "{e}");
        assert!(e.to_string().starts_with("not an ONNX model"), "{e}");
        // text is a protobuf-looking mess or not; either way not a model
        let e = parse_model(b"#!/bin/sh\necho hello\n").unwrap_err();
        assert!(e.to_string().starts_with("not an ONNX model"), "{e}");
        assert_eq!(parse_model(&[]).unwrap_err(), OnnxError::NotAModel("no IR version"));
        // a well-formed message with only an IR version
        assert_eq!(parse_model(&[0x08, 0x08]).unwrap_err(), OnnxError::NotAModel("no graph"));
    }

    #[test]
    fn a_missing_file_names_the_cause() {
        let e = read_model(Path::new("/nonexistent/model.onnx")).unwrap_err();
        assert!(e.contains("cannot read it") && e.contains("No such file"), "{e}");
    }
}
