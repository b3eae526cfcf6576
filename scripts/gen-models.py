#!/usr/bin/env python3
"""Generates stressctl's built-in reference models (models/builtin/*.onnx) and SHA256SUMS.

Why: the `model` task needs one small but real model per model type (text, vision, audio) whose
operators are the ones real models use on WebGPU (MatMul, Softmax, LayerNormalization, Erf,
Conv, BatchNormalization, pooling). They are built here from a fixed seed with the `onnx` package
(pip install onnx; numpy comes with it), so anyone can regenerate them and check the bytes:

    python3 scripts/gen-models.py            # writes models/builtin/ and models/test/
    python3 scripts/gen-models.py --check    # regenerates in memory, compares with the files

Opset 17: the first with LayerNormalization as a standard op, and supported by
onnxruntime-web 1.30 on the webgpu and wasm execution providers.
"""

import argparse
import hashlib
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
SEED = 20240613
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")


class Graph:
    """A small builder: named nodes, initializers drawn from one seeded generator."""

    def __init__(self, seed):
        self.rng = np.random.RandomState(seed)
        self.nodes = []
        self.inits = []
        self.n = 0

    def name(self, prefix):
        self.n += 1
        return f"{prefix}_{self.n}"

    def weight(self, prefix, shape, scale=None):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
        scale = scale if scale is not None else 1.0 / np.sqrt(max(fan_in, 1))
        arr = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        return self.const(prefix, arr)

    def const(self, prefix, arr):
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def op(self, op_type, inputs, prefix=None, outputs=1, **attrs):
        outs = [self.name(prefix or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name("n_" + op_type), **attrs))
        return outs[0] if outputs == 1 else outs

    def linear(self, x, d_in, d_out):
        w = self.weight("w", (d_in, d_out))
        b = self.weight("b", (d_out,), scale=0.02)
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x, d):
        g = self.const("ln_g", (1.0 + 0.05 * self.rng.standard_normal(d)).astype(np.float32))
        b = self.const("ln_b", (0.05 * self.rng.standard_normal(d)).astype(np.float32))
        return self.op("LayerNormalization", [x, g, b], axis=-1, epsilon=1e-5)

    def gelu(self, x):
        # 0.5 * x * (1 + erf(x / sqrt(2))): the exact GELU, as exporters write it at opset 17
        inv_sqrt2 = self.const("c", np.array(1.0 / np.sqrt(2.0), dtype=np.float32))
        one = self.const("c", np.array(1.0, dtype=np.float32))
        half = self.const("c", np.array(0.5, dtype=np.float32))
        e = self.op("Erf", [self.op("Mul", [x, inv_sqrt2])])
        return self.op("Mul", [self.op("Mul", [x, half]), self.op("Add", [e, one])])

    def attention(self, x, hidden, heads):
        """Multi-head self-attention on x [B, S, hidden] (S may be dynamic)."""
        dh = hidden // heads
        split = self.const("shape", np.array([0, 0, heads, dh], dtype=np.int64))
        merge = self.const("shape", np.array([0, 0, hidden], dtype=np.int64))

        def heads_of(t):
            return self.op("Transpose", [self.op("Reshape", [t, split])], perm=[0, 2, 1, 3])

        q = heads_of(self.linear(x, hidden, hidden))
        k = heads_of(self.linear(x, hidden, hidden))
        v = heads_of(self.linear(x, hidden, hidden))
        kt = self.op("Transpose", [k], perm=[0, 1, 3, 2])
        scale = self.const("c", np.array(1.0 / np.sqrt(dh), dtype=np.float32))
        scores = self.op("Mul", [self.op("MatMul", [q, kt]), scale])
        probs = self.op("Softmax", [scores], axis=-1)
        ctx = self.op("MatMul", [probs, v])
        ctx = self.op("Reshape", [self.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])
        return self.linear(ctx, hidden, hidden)

    def encoder_block(self, x, hidden, heads, ffn):
        a = self.attention(self.layer_norm(x, hidden), hidden, heads)
        x = self.op("Add", [x, a])
        h = self.gelu(self.linear(self.layer_norm(x, hidden), hidden, ffn))
        return self.op("Add", [x, self.linear(h, ffn, hidden)])

    def model(self, name, doc, inputs, outputs):
        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="stressctl gen-models.py",
                              producer_version="1", doc_string=doc)
        m.ir_version = 8
        onnx.checker.check_model(m, full_check=True)
        return m


def text_model(seq=64):
    """Transformer encoder (2 blocks, hidden 128, 4 heads, FFN 512) on x [1, seq, 128]."""
    g = Graph(SEED + 1)
    hidden, heads, ffn = 128, 4, 512
    x = "input_embeds"
    h = x
    for _ in range(2):
        h = g.encoder_block(h, hidden, heads, ffn)
    out = g.op("Identity", [g.layer_norm(h, hidden)], prefix="hidden_states")
    g.nodes[-1].output[0] = "last_hidden_state"
    dims = [1, seq, hidden]
    return g.model("builtin_text", "stressctl builtin:text: 2-block transformer encoder, hidden 128, 4 heads",
                   [helper.make_tensor_value_info(x, TensorProto.FLOAT, dims)],
                   [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, dims)]), out


def vision_model():
    """Conv/BatchNorm/Relu/MaxPool x3, global average pool and a 10-class classifier on 1x3x64x64."""
    g = Graph(SEED + 2)
    x = "pixel_values"
    h, c_in = x, 3
    for c_out in (16, 32, 64):
        w = g.weight("conv_w", (c_out, c_in, 3, 3))
        b = g.weight("conv_b", (c_out,), scale=0.02)
        h = g.op("Conv", [h, w, b], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        scale = g.const("bn_s", (1.0 + 0.1 * g.rng.standard_normal(c_out)).astype(np.float32))
        bias = g.const("bn_b", (0.1 * g.rng.standard_normal(c_out)).astype(np.float32))
        mean = g.const("bn_m", (0.1 * g.rng.standard_normal(c_out)).astype(np.float32))
        var = g.const("bn_v", (0.5 + g.rng.random_sample(c_out)).astype(np.float32))
        h = g.op("BatchNormalization", [h, scale, bias, mean, var], epsilon=1e-5)
        h = g.op("MaxPool", [g.op("Relu", [h])], kernel_shape=[2, 2], strides=[2, 2])
        c_in = c_out
    h = g.op("Flatten", [g.op("GlobalAveragePool", [h])], axis=1)
    w = g.weight("fc_w", (10, 64))
    b = g.weight("fc_b", (10,), scale=0.02)
    logits = g.op("Gemm", [h, w, b], transB=1)
    g.op("Softmax", [logits], axis=-1)
    g.nodes[-1].output[0] = "probabilities"
    return g.model("builtin_vision", "stressctl builtin:vision: 3 Conv/BatchNorm/Relu/MaxPool stages + classifier, 1x3x64x64",
                   [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 3, 64, 64])],
                   [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 10])])


def audio_model():
    """1-D conv front end (25 ms window, 10 ms hop at 16 kHz) on one second, one attention block, classifier."""
    g = Graph(SEED + 3)
    x = "waveform"
    w1 = g.weight("conv1_w", (64, 1, 400))
    b1 = g.weight("conv1_b", (64,), scale=0.02)
    h = g.op("Relu", [g.op("Conv", [x, w1, b1], kernel_shape=[400], strides=[160])])  # [1, 64, 98]
    w2 = g.weight("conv2_w", (64, 64, 3))
    b2 = g.weight("conv2_b", (64,), scale=0.02)
    h = g.op("Relu", [g.op("Conv", [h, w2, b2], kernel_shape=[3], pads=[1, 1])])  # [1, 64, 98]
    h = g.op("Transpose", [h], perm=[0, 2, 1])  # [1, 98, 64]
    h = g.encoder_block(h, 64, 4, 256)
    pooled = g.op("ReduceMean", [g.layer_norm(h, 64)], axes=[1], keepdims=0)  # [1, 64]
    w = g.weight("fc_w", (64, 12))
    b = g.weight("fc_b", (12,), scale=0.02)
    g.op("Add", [g.op("MatMul", [pooled, w]), b])
    g.nodes[-1].output[0] = "logits"
    return g.model("builtin_audio", "stressctl builtin:audio: strided Conv1d front end on 16000 samples + attention block",
                   [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 1, 16000])],
                   [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 12])])


def dynamic_text_model():
    """Test fixture: one encoder block (hidden 64) whose batch and sequence are dynamic ("batch", "sequence")."""
    g = Graph(SEED + 4)
    h = g.encoder_block("input_embeds", 64, 2, 128)
    g.op("Identity", [h])
    g.nodes[-1].output[0] = "last_hidden_state"
    dims = ["batch", "sequence", 64]
    return g.model("test_dynamic", "stressctl test fixture: dynamic batch and sequence",
                   [helper.make_tensor_value_info("input_embeds", TensorProto.FLOAT, dims)],
                   [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, dims)])


def outputs():
    text, _ = text_model()
    return {
        "builtin/text.onnx": text,
        "builtin/vision.onnx": vision_model(),
        "builtin/audio.onnx": audio_model(),
        "test/dynamic.onnx": dynamic_text_model(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="regenerate in memory and compare with the committed files")
    args = ap.parse_args()
    sums = {}
    bad = []
    for rel, m in outputs().items():
        data = m.SerializeToString(deterministic=True)
        path = os.path.join(ROOT, rel)
        sums.setdefault(os.path.dirname(rel), []).append(f"{hashlib.sha256(data).hexdigest()}  {os.path.basename(rel)}\n")
        if args.check:
            try:
                with open(path, "rb") as f:
                    if f.read() != data:
                        bad.append(rel)
            except OSError as e:
                bad.append(f"{rel} ({e.strerror})")
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        print(f"{rel}: {len(data)} bytes, {len(m.graph.node)} nodes")
    for d, lines in sums.items():
        path = os.path.join(ROOT, d, "SHA256SUMS")
        text = "".join(sorted(lines, key=lambda l: l.split()[1]))
        if args.check:
            try:
                with open(path) as f:
                    if f.read() != text:
                        bad.append(f"{d}/SHA256SUMS")
            except OSError as e:
                bad.append(f"{d}/SHA256SUMS ({e.strerror})")
        else:
            with open(path, "w") as f:
                f.write(text)
    if bad:
        print("gen-models: these differ from what the script generates: " + ", ".join(bad), file=sys.stderr)
        sys.exit(1)
    if args.check:
        print("gen-models: every model regenerates byte for byte")


if __name__ == "__main__":
    main()
