"use strict";
// Unit test of the WebNN task's page logic (assets/webnn.js) under node: the seeded inputs, the
// float64 reference and the result check, and the graph's wiring evaluated by a CPU builder that
// implements the four MLGraphBuilder calls the graph uses (a test double for pure logic: no
// browser here runs WebNN). Run by tests/page_js.rs; exits non-zero on the first failure.
const assert = require("assert");
const path = require("path");
require(path.join(__dirname, "..", "..", "assets", "webnn.js"));
const NN = globalThis.stressctlWebnn;

// deterministic inputs in [-1, 1)
const a = NN.makeInputs(7), b = NN.makeInputs(7), c = NN.makeInputs(8);
assert.deepStrictEqual(a.a, b.a, "same seed, same inputs");
assert.notDeepStrictEqual(a.a, c.a, "another seed, other inputs");
assert.strictEqual(a.a.length, NN.N * NN.N);
assert.ok(a.a.every((x) => x >= -1 && x < 1));

// reference on a hand-checked 2x2 case: relu([[1,2],[3,4]] x [[5,6],[7,8]] + [[-20,0],[-50,-60]])
const small = { n: 2, a: Float32Array.from([1, 2, 3, 4]), b: Float32Array.from([5, 6, 7, 8]), c: Float32Array.from([-20, 0, -50, -60]) };
const ref = NN.reference(small);
assert.deepStrictEqual(Array.from(ref.out), [0, 22, 0, 0]);

// the check: equal passes; one element off by more than the tolerance fails, naming it
const full = NN.reference(a);
assert.strictEqual(NN.check(Float32Array.from(full.out), full), null);
const bad = Float32Array.from(full.out);
bad[123] += 10 * full.tol + 1;
assert.match(NN.check(bad, full), /mismatch at index 123/);
assert.match(NN.check(new Float32Array(3), full), /3 elements, expected 4096/);

// the graph's wiring, evaluated on CPU in float32 like a WebNN backend: passes the check
class CpuBuilder {
  input(name, desc) { return { op: "input", name, shape: desc.shape }; }
  constant(desc, data) { return { op: "const", data, shape: desc.shape }; }
  matmul(x, y) { return { op: "matmul", x, y }; }
  add(x, y) { return { op: "add", x, y }; }
  relu(x) { return { op: "relu", x }; }
}
function evaluate(node, feeds, n) {
  switch (node.op) {
    case "input": return feeds[node.name];
    case "const": return node.data;
    case "matmul": {
      const x = evaluate(node.x, feeds, n), y = evaluate(node.y, feeds, n), o = new Float32Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) { let s = 0; for (let k = 0; k < n; k++) s = Math.fround(s + Math.fround(x[i * n + k] * y[k * n + j])); o[i * n + j] = s; }
      return o;
    }
    case "add": { const x = evaluate(node.x, feeds, n), y = evaluate(node.y, feeds, n); return x.map((v, i) => Math.fround(v + y[i])); }
    case "relu": return evaluate(node.x, feeds, n).map((v) => (v > 0 ? v : 0));
    default: throw new Error("unknown op " + node.op);
  }
}
const g = NN.build(new CpuBuilder(), a);
assert.deepStrictEqual(g.desc.shape, [NN.N, NN.N]);
const got = evaluate(g.outputs.out, { a: a.a }, a.n);
assert.strictEqual(NN.check(got, full), null, "the graph computes relu(A x B + C) within tolerance");
// a graph wired wrongly (B and C swapped) is caught
const wrong = { ...a, b: a.c, c: a.b };
assert.notStrictEqual(NN.check(evaluate(NN.build(new CpuBuilder(), wrong).outputs.out, { a: a.a }, a.n), full), null);
console.log("webnn.js: ok");
