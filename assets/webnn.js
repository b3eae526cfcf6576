"use strict";
// stressctl's WebNN task: a small real graph (relu(A x B + C) on 64x64 float32, constants from a
// seeded generator), run on an MLContext and checked against a float64 CPU reference.
// Served at /webnn.js and loaded by the test page; also loaded by node in the unit test
// (tests/js/webnn_test.js), which runs the reference, the check and the graph's wiring on CPU.
(function (root) {
  const N = 64;

  function mulberry32(seed) {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6D2B79F5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  // Inputs A (the graph input), and constants B and C, uniform in [-1, 1).
  function makeInputs(seed, n) {
    n = n || N;
    const rnd = mulberry32(seed);
    const gen = () => { const m = new Float32Array(n * n); for (let i = 0; i < m.length; i++) m[i] = rnd() * 2 - 1; return m; };
    return { n, a: gen(), b: gen(), c: gen() };
  }

  // relu(A x B + C) in float64, and a per-element tolerance: float32 accumulation over n terms
  // of magnitude <= 1 errs by about n * 2^-24 * sum|a*b|; 1e-3 relative to the row's scale is
  // far above that and far below any real error.
  function reference(inp) {
    const { n, a, b, c } = inp;
    const out = new Float64Array(n * n);
    let scale = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0, mag = 0;
        for (let k = 0; k < n; k++) { const p = a[i * n + k] * b[k * n + j]; s += p; mag += Math.abs(p); }
        s += c[i * n + j];
        out[i * n + j] = s > 0 ? s : 0;
        if (mag > scale) scale = mag;
      }
    }
    return { out, tol: 1e-3 * Math.max(scale, 1) };
  }

  // null when `got` matches the reference, else the first mismatch, for people.
  function check(got, ref) {
    if (!got || got.length !== ref.out.length) return "output has " + (got ? got.length : 0) + " elements, expected " + ref.out.length;
    for (let i = 0; i < got.length; i++) {
      if (!(Math.abs(got[i] - ref.out[i]) <= ref.tol)) {
        return "webnn result mismatch at index " + i + ": expected " + ref.out[i] + ", got " + got[i] + " (tolerance " + ref.tol + ")";
      }
    }
    return null;
  }

  // The graph: input "a" [n, n]; constants B and C; output "out" = relu(matmul(a, B) + C).
  function build(builder, inp) {
    const desc = { dataType: "float32", shape: [inp.n, inp.n], dimensions: [inp.n, inp.n] };
    const a = builder.input("a", desc);
    const b = builder.constant(desc, inp.b);
    const c = builder.constant(desc, inp.c);
    const out = builder.relu(builder.add(builder.matmul(a, b), c));
    return { desc, outputs: { out } };
  }

  root.stressctlWebnn = { N, mulberry32, makeInputs, reference, check, build };
})(typeof window !== "undefined" ? window : globalThis);
