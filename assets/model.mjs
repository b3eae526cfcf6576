// stressctl `model` task: one onnxruntime-web inference per op, checked against the wasm provider.
//
// Loaded by the test page on the first model op (import(spec.module)); everything it
// fetches comes from the same page server, under content-hashed paths: onnxruntime-web from
// a/<hash>/, the model from a/<hash>/model.onnx. Browser-neutral: only ES modules, fetch, performance and navigator.gpu/ml.
//
// One inference session per browser session (a page lives as long as its session). `prepare`
// loads onnxruntime-web, creates the session (load_ms) and runs the first inference (first_inference_ms,
// shader compilation on WebGPU); stressctl times that call apart from the ops. Each op then runs one
// inference on seeded random inputs and compares every output element with the wasm provider's
// output for the same inputs, computed once per seed and cached here.

const REF_CACHE = 8; // seeds whose inputs and reference outputs are kept

let state = null; // {key, ort, session, refOrt, refSession, bytes, stats, refs, adapter}

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashName(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

// Seeded inputs for `seed`, as tensors of `ort` (each build has its own Tensor class).
function makeFeeds(ort, inputs, seed) {
  const feeds = {};
  for (const [name, spec] of Object.entries(inputs)) {
    const rand = mulberry32(seed ^ hashName(name));
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const dtype = spec.dtype;
    const float = dtype === 'float32';
    const [lo, hi] = spec.range || (float ? [-1, 1] : dtype === 'bool' ? [0, 2] : [0, 100]);
    let data;
    if (float) {
      data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = lo + (hi - lo) * rand();
    } else if (dtype === 'int64') {
      data = new BigInt64Array(n);
      for (let i = 0; i < n; i++) data[i] = BigInt(Math.floor(lo + (hi - lo) * rand()));
    } else {
      const Ctor = {int32: Int32Array, uint8: Uint8Array, int8: Int8Array, bool: Uint8Array}[dtype];
      if (!Ctor) throw new Error('unsupported input dtype ' + dtype);
      data = new Ctor(n);
      for (let i = 0; i < n; i++) data[i] = Math.floor(lo + (hi - lo) * rand());
    }
    feeds[name] = new ort.Tensor(dtype, data, spec.shape);
  }
  return feeds;
}

async function loadOrt(base, build) {
  const ort = await import(base + build);
  ort.env.wasm.wasmPaths = base;
  // One thread: the page is not cross-origin isolated (no SharedArrayBuffer), several sessions
  // already share the cores, and the reference is computed once per seed, off the hot path.
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  return ort;
}

function unsupported(message) {
  return {ok: false, class: 'api_unsupported', message};
}

function classifyCreate(e, provider) {
  const m = String((e && e.message) || e);
  if (/backend|not supported|unsupported|no available/i.test(m)) return unsupported(`${provider} provider: ${m}`);
  return {ok: false, class: 'script_error', message: `creating the ${provider} inference session: ${m}`};
}

function adapterInfo(provider, adapter) {
  if (!adapter) return {provider};
  const i = adapter.info || {};
  return {provider, vendor: i.vendor || '', architecture: i.architecture || '', description: i.description || ''};
}

async function prepare(spec, key) {
  const provider = spec.provider;
  if (provider === 'webgpu' && !navigator.gpu) return unsupported('WebGPU: navigator.gpu is not available in this browser');
  let adapter = null;
  if (provider === 'webgpu') {
    // the test page's bounded retry: a fresh browser often answers the first requestAdapter()
    // with null (Chromium on a GPU), and one that never answers counts as null after 3 s
    const page = window.stressctl;
    if (!page || typeof page.requestAdapter !== 'function') return {ok: false, class: 'script_error', message: 'test page not loaded'};
    const r = await page.requestAdapter();
    if (!r.adapter) {
      const why = r.why === 'null' ? `null ${r.tries} times over about 2 s` : r.why;
      return unsupported(`WebGPU: requestAdapter() returned no adapter (${why})`);
    }
    adapter = r.adapter;
  }
  if (provider === 'webnn' && !navigator.ml) return unsupported('WebNN: navigator.ml is not available in this browser');
  const t0 = performance.now();
  let ort, refOrt, bytes;
  try {
    refOrt = await loadOrt(spec.ort_base, 'ort.wasm.min.mjs');
    ort = provider === 'wasm' ? refOrt : await loadOrt(spec.ort_base, 'ort.webgpu.min.mjs');
    // the adapter asked for above, so onnxruntime-web does not make a first (null) call itself
    // (set once per page: a second inference session in the page, e.g. under adjusted settings,
    // keeps the adapter the backend was started with)
    if (adapter && ort.env.webgpu) {
      if (ort.env.webgpu.adapter) adapter = ort.env.webgpu.adapter;
      else ort.env.webgpu.adapter = adapter;
    }
    const resp = await fetch(spec.model_url);
    if (!resp.ok) throw new Error(`${spec.model_url}: HTTP ${resp.status}`);
    bytes = new Uint8Array(await resp.arrayBuffer());
  } catch (e) {
    return {ok: false, class: 'script_error', message: `loading onnxruntime-web or the model from the page server (run scripts/setup-ort.sh?): ${(e && e.message) || e}`};
  }
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, {executionProviders: [provider], graphOptimizationLevel: 'all'});
  } catch (e) {
    return classifyCreate(e, provider);
  }
  const load_ms = performance.now() - t0;
  const t1 = performance.now();
  let refSession;
  try {
    refSession = await refOrt.InferenceSession.create(bytes, {executionProviders: ['wasm'], graphOptimizationLevel: 'all'});
  } catch (e) {
    await session.release();
    return classifyCreate(e, 'wasm');
  }
  const reference_load_ms = performance.now() - t1;
  state = {
    key, ort, session, refOrt, refSession, refs: new Map(), adapter: adapterInfo(provider, adapter),
    stats: {inferences: 0, succeeded: 0, wrong_result: 0, worst_abs: 0, worst_rel: 0, load_ms, reference_load_ms, first_inference_ms: null},
    reported: true,
  };
  // which browser and adapter these figures are from (a per-browser report groups by them)
  state.stats.adapter = state.adapter;
  state.stats.user_agent = navigator.userAgent;
  // run under the recovery ladder's adjusted settings: the report counts these apart, never as
  // successes of the configured settings
  if (spec.degraded) state.stats.degraded = spec.degraded;
  // the first inference (shader compilation on WebGPU) and its reference, timed apart from ops
  const t2 = performance.now();
  await session.run(makeFeeds(ort, spec.inputs, spec.seed >>> 0));
  state.stats.first_inference_ms = performance.now() - t2;
  await reference(spec, spec.seed >>> 0);
  return {ok: true, prepared: true, stats: resources(state.stats), adapter: state.adapter};
}

async function reference(spec, seed) {
  let r = state.refs.get(seed);
  if (!r) {
    const out = await state.refSession.run(makeFeeds(state.refOrt, spec.inputs, seed));
    const outputs = {};
    for (const [k, t] of Object.entries(out)) outputs[k] = t.data;
    r = {feeds: makeFeeds(state.ort, spec.inputs, seed), outputs};
    state.refs.set(seed, r);
    if (state.refs.size > REF_CACHE) state.refs.delete(state.refs.keys().next().value);
  }
  return r;
}

// Element-wise check: |x - ref| <= abs + rel * |ref| (NaN against a number fails).
function compare(out, ref, tol) {
  let maxAbs = 0, maxRel = 0, bad = 0, first = null;
  for (const [name, want] of Object.entries(ref)) {
    const t = out[name];
    if (!t) return {error: `output ${name} missing`};
    const got = t.data;
    if (got.length !== want.length) return {error: `output ${name} has ${got.length} elements, the reference ${want.length}`};
    for (let i = 0; i < got.length; i++) {
      const g = Number(got[i]), w = Number(want[i]);
      const d = Math.abs(g - w);
      if (Number.isNaN(d) && !(Number.isNaN(g) && Number.isNaN(w))) {
        bad++;
        if (!first) first = {name, i, g, w};
        maxAbs = Infinity;
        continue;
      }
      if (!(d > 0)) continue;
      if (d > maxAbs) maxAbs = d;
      const aw = Math.abs(w);
      if (aw > 0 && d / aw > maxRel) maxRel = d / aw;
      if (d > tol.abs + tol.rel * aw) {
        bad++;
        if (!first) first = {name, i, g, w};
      }
    }
  }
  return {maxAbs, maxRel, bad, first};
}

// Every resource the page has loaded: all must come from stressctl's page server (the page's own
// origin, on loopback or at `[server] advertise`), none from anywhere else.
function resources(s) {
  const names = performance.getEntriesByType('resource').map((e) => e.name);
  s.resources_loaded = names.length;
  s.other_origin_resources = names.filter((n) => {
    try { return new URL(n).origin !== location.origin; } catch (e) { return true; }
  }).slice(0, 10);
  return s;
}

function statsDirty(s, changed) {
  // a degraded session reports every op: its inferences are subtracted from the successes exactly
  return changed || !!s.degraded || s.inferences % 100 === 0 || (s.wrong_result > 0 && (s.wrong_result <= 3 || s.wrong_result % 100 === 0));
}

/** One op: `spec` = {model_url, ort_base, provider, inputs, tolerance, seed, prepare, fault}. */
export async function run(spec) {
  const key = JSON.stringify([spec.model_url, spec.ort_base, spec.provider, spec.inputs, spec.degraded || null]);
  if (!state || state.key !== key) {
    if (state) {
      await state.session.release();
      await state.refSession.release();
      state = null;
    }
    if (!spec.prepare) return {ok: false, class: 'script_error', message: 'model not loaded', needs_prepare: true};
    return prepare(spec, key);
  }
  if (spec.fault === 'hang') return new Promise(() => {});
  if (spec.fault === 'throw') throw new Error('injected fault: throw');
  if (spec.fault === 'gpu_device_lost' && state.ort.env.webgpu && state.ort.env.webgpu.device) {
    (await state.ort.env.webgpu.device).destroy();
  }
  const seed = spec.seed >>> 0;
  const ref = await reference(spec, seed);
  let out;
  try {
    out = await state.session.run(ref.feeds);
  } catch (e) {
    const m = String((e && e.message) || e);
    return {ok: false, class: /device|gpu/i.test(m) ? 'gpu_error' : 'script_error', message: `inference on ${spec.provider}: ${m}`};
  }
  const c = compare(out, ref.outputs, spec.tolerance);
  const s = state.stats;
  s.inferences++;
  if (c.error) return {ok: false, class: 'wrong_result', message: c.error};
  let changed = false;
  if (c.maxAbs > s.worst_abs) { s.worst_abs = c.maxAbs; changed = true; }
  if (c.maxRel > s.worst_rel) { s.worst_rel = c.maxRel; changed = true; }
  const err = {max_abs: c.maxAbs, max_rel: c.maxRel};
  if (c.bad > 0) {
    s.wrong_result++;
    const f = c.first;
    const r = {
      ok: false, class: 'wrong_result', ...err,
      message: `${c.bad} output element(s) outside |x - ref| <= ${spec.tolerance.abs} + ${spec.tolerance.rel}·|ref| against the wasm provider: ` +
        `max abs error ${c.maxAbs.toExponential(3)}, max rel error ${c.maxRel.toExponential(3)} (first: ${f.name}[${f.i}] = ${f.g}, reference ${f.w}; seed ${seed})`,
    };
    if (statsDirty(s, changed)) r.stats = resources(s);
    return r;
  }
  s.succeeded++;
  const r = {ok: true, verified: true, ...err};
  if (state.reported) {
    r.adapter = state.adapter;
    state.reported = false;
  }
  if (statsDirty(s, changed)) r.stats = resources(s);
  return r;
}

/**
 * A minimal loop of the same inference in the same page (scripts/bench-model.sh's baseline): `n`
 * runs of this page's inference session on the inputs of `spec.seed`, or, without a seed, on the
 * inputs the last op used; nothing checked. Counted in the session's stats (`loop_inferences`), so
 * a report shows the loop ran in the session stressctl prepared.
 */
export async function loop(spec) {
  if (!state) return {ok: false, class: 'script_error', message: 'no model session in this page (run the model task in it first)'};
  const ref = spec.seed === undefined ? [...state.refs.values()].pop() : await reference(spec, spec.seed >>> 0);
  const t0 = performance.now();
  for (let i = 0; i < spec.n; i++) await state.session.run(ref.feeds);
  const ms = performance.now() - t0;
  state.stats.loop_inferences = (state.stats.loop_inferences || 0) + spec.n;
  return {ok: true, ms, n: spec.n};
}
