/* stressctl dashboard: the live pages (`/`, `/circuit-breakers`) and report.html share this file.
 *
 * Live (body data-mode="live"): polls /api/overview (and /api/circuit-breakers) every second and
 * follows /api/events (Server-Sent Events). Report (data-mode="report"): reads the JSON embedded
 * in the page and draws it once. Charts are uPlot (vendored, served by stressctl or inlined);
 * the breaker timeline is SVG. Nothing is loaded from anywhere else.
 */
(function () {
  "use strict";

  const STATE_COLORS = { closed: "#2e9d4c", open: "#d32f2f", half_open: "#f0a400", forced_open: "#7b1fa2", disabled: "#9e9e9e" };
  const MAX_EVENTS = 300;
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const num = (v, d) => (v == null || !isFinite(v) ? "–" : Number(v).toFixed(d == null ? 1 : d));
  const pad = (n) => String(n).padStart(2, "0");
  const clock = (s) => { const d = new Date(s * 1000); return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()); };
  const dur = (s) => {
    if (s == null || !isFinite(s)) return "–";
    if (s < 10) return (Math.max(0, s)).toFixed(s < 1 ? 2 : 1).replace(/\.?0+$/, "") + "s";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + "h" : "") + (h || m ? m + "m" : "") + r + "s";
  };

  const page = document.body.dataset.page;
  const mode = document.body.dataset.mode;
  let latest = null;      // the last overview drawn
  let offline = false;    // the last poll failed
  const charts = {};      // element id -> uPlot

  /* ---------- charts ---------- */

  // Vertical lines where phases start, named.
  function phaseMarks() {
    return {
      hooks: {
        draw: [(u) => {
          if (!latest) return;
          const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height, dpr = window.devicePixelRatio || 1;
          ctx.save();
          ctx.strokeStyle = "rgba(60,60,70,0.45)";
          ctx.fillStyle = "rgba(60,60,70,0.8)";
          ctx.setLineDash([4 * dpr, 3 * dpr]);
          ctx.lineWidth = dpr;
          ctx.font = (10 * dpr) + "px system-ui, sans-serif";
          for (const p of latest.phases) {
            const x = Math.round(u.valToPos(p.started_s, "x", true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
            ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
            ctx.fillText(p.name, x + 3 * dpr, top + 10 * dpr);
          }
          ctx.restore();
        }],
      },
    };
  }

  function hasData(data) {
    return data[0].length > 0 && data.slice(1).some((s) => s.some((v) => v != null));
  }

  function plot(id, series, axes, scales, data) {
    const box = $(id);
    if (!box) return;
    const target = box.querySelector(".plot");
    if (!hasData(data)) {
      if (charts[id]) { charts[id].destroy(); delete charts[id]; }
      target.innerHTML = '<div class="empty">no data yet</div>';
      return;
    }
    if (charts[id]) { charts[id].setData(data); return; }
    target.innerHTML = "";
    const width = Math.max(300, box.clientWidth - 16);
    charts[id] = new uPlot({
      width: width, height: 230,
      // every chart spans the campaign so far: the same x axis, and a sane one with one point
      scales: Object.assign({ x: { time: true, range: (u, min, max) => {
        const a = latest.campaign.started_s;
        return [a, Math.max(latest.campaign.ended_s || latest.now_s, max == null ? a : max, a + 5)];
      } } }, scales),
      series: [{}].concat(series),
      axes: [{}].concat(axes),
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      plugins: [phaseMarks()],
    }, data, target);
  }

  function line(label, color, scale, extra) {
    return Object.assign({ label: label, stroke: color, width: 1.5, scale: scale, spanGaps: false, points: { show: false } }, extra || {});
  }
  const limit = (label, color) => line(label, color, "pct", { dash: [6, 4], width: 1 });

  function drawCharts(o) {
    const ops = o.ops, r = o.resources;
    plot("c-throughput",
      [line("ops/s", "#1f5fbf", "ops"), line("success %", "#2e9d4c", "pct")],
      [{ scale: "ops", label: "ops/s" }, { scale: "pct", side: 1, label: "%", grid: { show: false } }],
      { pct: { range: [0, 100] } },
      [ops.t, ops.ops_per_s, ops.success_pct]);
    plot("c-latency",
      [line("p50 ms", "#2e9d4c", "ms"), line("p95 ms", "#f0a400", "ms"), line("p99 ms", "#d32f2f", "ms")],
      [{ scale: "ms", label: "ms" }],
      {},
      [ops.t, ops.p50_ms, ops.p95_ms, ops.p99_ms]);
    drawBrowserCharts(ops);
    plot("c-resources",
      [line("cpu %", "#1f5fbf", "pct"), line("memory %", "#7b1fa2", "pct"), line("disk %", "#6d4c41", "pct"),
       limit("cpu limit", "#1f5fbf"), limit("memory limit", "#7b1fa2"), limit("disk limit", "#6d4c41")],
      [{ scale: "pct", label: "%" }],
      { pct: { range: [0, 100] } },
      [r.t, r.cpu, r.memory, r.disk, r.cpu_limit, r.memory_limit, r.disk_limit]);
    plot("c-browsers",
      [line("browsers+drivers RSS MiB", "#00838f", "mb"), line("health", "#2e9d4c", "pct")],
      [{ scale: "mb", label: "MiB" }, { scale: "pct", side: 1, label: "health", grid: { show: false } }],
      { pct: { range: [0, 100] } },
      [r.t, r.tree_rss_mb, r.health]);
    plot("c-host",
      [line("host cpu demand %", "#d32f2f", "pct"), line("campaign cpu %", "#1f5fbf", "pct"), line("host stall %", "#6d4c41", "pct"),
       limit("host cpu limit", "#d32f2f"), limit("campaign cap", "#1f5fbf"), limit("stall limit", "#6d4c41")],
      [{ scale: "pct", label: "% of all cores / of time" }],
      { pct: { range: [0, 100] } },
      [r.t, r.host_demand, r.campaign_cpu, r.stall, r.cpu_limit.map((v, i) => r.host_demand[i] == null ? null : v), r.cpu_cap, r.stall_limit]);
  }

  // Ops/s and p95 per browser, one line each, where the campaign ran two browsers or more (a
  // Chromium and a Firefox side by side); hidden otherwise.
  const BROWSER_COLORS = { chromium: "#1f5fbf", firefox: "#e66000" };
  const OTHER_COLORS = ["#2e9d4c", "#7b1fa2", "#6d4c41", "#00838f"];
  function drawBrowserCharts(ops) {
    const box = $("by-browser");
    if (!box) return;
    const bs = ops.by_browser || [];
    if (bs.length < 2) { box.classList.add("hidden"); return; }
    box.classList.remove("hidden");
    const color = (b, i) => BROWSER_COLORS[b.browser] || OTHER_COLORS[i % OTHER_COLORS.length];
    // the set of browsers only grows: a new one needs a chart with one more line
    const key = bs.map((b) => b.browser).join(",");
    if (box.dataset.browsers !== key) {
      for (const id of ["c-browser-ops", "c-browser-p95"]) if (charts[id]) { charts[id].destroy(); delete charts[id]; }
      box.dataset.browsers = key;
    }
    plot("c-browser-ops", bs.map((b, i) => line(b.browser + " ops/s", color(b, i), "ops")), [{ scale: "ops", label: "ops/s" }], {},
      [ops.t].concat(bs.map((b) => b.ops_per_s)));
    plot("c-browser-p95", bs.map((b, i) => line(b.browser + " p95 ms", color(b, i), "ms")), [{ scale: "ms", label: "ms" }], {},
      [ops.t].concat(bs.map((b) => b.p95_ms)));
  }

  window.addEventListener("resize", () => {
    for (const id in charts) {
      const box = $(id);
      if (box) charts[id].setSize({ width: Math.max(300, box.clientWidth - 16), height: 230 });
    }
    if (latest) drawTimeline(latest);
  });

  /* ---------- header, banner, cards ---------- */

  function stateOf(o) {
    if (o.campaign.ended) return o.campaign.outcome || "ended";
    if (o.status) return o.status.state;
    return "not_ended";
  }

  function drawHeader(o) {
    const c = o.campaign;
    const t = $("title");
    if (t) t.textContent = "stressctl · " + c.id + " (" + c.profile + ")";
    document.title = "stressctl " + c.id;
    const st = stateOf(o);
    const s = $("state");
    if (s) s.innerHTML = '<span class="badge ' + esc(st) + '" id="state-badge">' + esc(st.replace("_", " ").toUpperCase()) + "</span>";
    const b = $("banner");
    if (!b) return;
    let cls = "banner", text = "";
    if (c.ended) {
      cls += " ended " + (c.outcome || "");
      text = "Campaign ended: " + (c.outcome || "").toUpperCase() + (c.stop_reason ? " (" + c.stop_reason + ")" : "") +
        (c.ended_s ? " at " + clock(c.ended_s) : "") + ". This page shows its final data.";
      if (mode === "live" && c.source === "live") text += " Once this stressctl exits, `stressctl dashboard " + c.id + "` serves it again from its store.";
    } else if (offline && mode === "live") {
      cls += " offline";
      text = "Lost contact with stressctl; retrying. The charts show the last data received.";
    } else if (c.source === "store") {
      cls += " offline";
      text = "Read from the campaign's store: the campaign has not ended (it is still running elsewhere, or its process died).";
    } else {
      cls += " hidden";
    }
    b.className = cls;
    b.id = "banner";
    b.textContent = text;
  }

  function card(k, v, extra) {
    return '<div class="card"><div class="k">' + esc(k) + '</div><div class="v">' + v + "</div>" + (extra || "") + "</div>";
  }

  function drawCards(o) {
    const el = $("cards");
    if (!el) return;
    const s = o.status;
    const phases = o.phases;
    let phaseText = "–", bar = "";
    if (s && s.phase) {
      phaseText = esc(s.phase.index + "/" + s.phase.total + " " + s.phase.name);
      bar = '<div class="progress"><div style="width:' + Math.min(100, s.phase.progress_pct) + '%"></div></div><div class="k">' +
        num(s.phase.elapsed_s, 0) + " s of " + num(s.phase.duration_s, 0) + " s</div>";
    } else if (phases.length) {
      const last = phases[phases.length - 1];
      phaseText = esc((last.index + 1) + "/" + Math.max(o.campaign.phases_planned, phases.length) + " " + last.name) + (last.ended_s ? " (ended)" : "");
    }
    let attempted = 0, succeeded = 0;
    if (s) { attempted = s.ops.attempted; succeeded = s.ops.succeeded; } else {
      for (const p of phases) { attempted += p.attempted; succeeded += p.succeeded; }
    }
    const r = o.resources, n = r.t.length - 1;
    const lastOf = (col) => { for (let i = col.length - 1; i >= 0; i--) if (col[i] != null) return col[i]; return null; };
    el.innerHTML =
      card("phase", phaseText, bar) +
      card("elapsed", dur((o.campaign.ended_s || o.now_s) - o.campaign.started_s), o.campaign.planned_s ? '<div class="k">planned ' + dur(o.campaign.planned_s) + "</div>" : "") +
      card("ops", String(attempted)) +
      card("success", attempted ? num(succeeded / attempted * 100, 2) + " %" : "–") +
      card("p95 (latest)", num(lastOf(o.ops.p95_ms), 1) + " ms") +
      card("health", n >= 0 ? num(lastOf(r.health), 0) : "–") +
      card("cpu / memory", n >= 0 ? num(lastOf(r.cpu), 0) + " / " + num(lastOf(r.memory), 0) + " %" : "–") +
      card("browsers RSS", n >= 0 ? num(lastOf(r.tree_rss_mb), 0) + " MiB" : "–");
  }

  function drawPhases(o) {
    const el = $("phases");
    if (!el || el.dataset.static) return;
    let h = '<table><tr><th class="l">#</th><th class="l">phase</th><th class="l">task</th><th>sessions</th><th>started</th><th>time</th>' +
      "<th>ops</th><th>success %</th><th>ops/s</th><th>p95 ms</th><th class=\"l\">result</th></tr>";
    for (const p of o.phases) {
      const res = p.passed == null ? p.status : (p.passed ? "PASS" : "FAIL") + (p.status !== "completed" ? " (" + p.status + ")" : "");
      const time = (p.ended_s || o.now_s) - p.started_s;
      h += "<tr><td class=\"l\">" + (p.index + 1) + '</td><td class="l">' + esc(p.name) + '</td><td class="l">' + esc(p.task) + "</td><td>" + p.sessions +
        "</td><td>" + clock(p.started_s) + "</td><td>" + dur(time) + "</td><td>" + (p.passed == null ? "–" : p.attempted) + "</td><td>" +
        (p.passed == null || !p.attempted ? "–" : num(p.succeeded / p.attempted * 100, 2)) + "</td><td>" + (p.passed == null ? "–" : num(p.throughput_ops_per_s, 1)) +
        "</td><td>" + (p.passed == null ? "–" : num(p.p95_ms, 1)) + '</td><td class="l ' + (p.passed == null ? "" : p.passed ? "pass" : "fail") + '">' + esc(res) + "</td></tr>";
      if (p.capacity && p.capacity.length) h += '<tr class="capacity"><td></td><td class="l wrap" colspan="10">' + capacityText(p.capacity) + "</td></tr>";
    }
    el.innerHTML = h + "</table>";
  }

  // A capacity phase's steps so far, per browser: the most sessions that held below every
  // failing count (the answer once the search ends), then each step in the order measured.
  function capacityText(steps) {
    const groups = {};
    for (const s of steps) (groups[s.browser || ""] = groups[s.browser || ""] || []).push(s);
    return Object.keys(groups).map((b) => {
      const g = groups[b];
      const fails = g.filter((s) => !s.passed).map((s) => s.sessions);
      const low = fails.length ? Math.min.apply(null, fails) : Infinity;
      const held = g.filter((s) => s.passed && s.sessions < low).map((s) => s.sessions);
      const best = held.length ? Math.max.apply(null, held) : null;
      const head = "capacity" + (b ? " on " + esc(b) : "") + ": " + (best == null ? "no count has held yet" : "max sustainable so far " + best + " sessions");
      const list = g.map((s) => s.sessions + (s.passed ? " ✓ " : " ✗ ") + num(s.ops_per_s, 1) + " ops/s, p95 " + num(s.p95_ms, 1) + " ms" + (s.passed ? "" : " (" + esc(s.why) + ")"));
      return head + " — " + list.join(" · ");
    }).join("<br>");
  }

  /* ---------- watched nodes ---------- */

  // The nodes watched through their node_exporters ([[workers]] node_metrics): where each stands
  // (watched, drained and why, unwatched), its latest and peak figures, its drains, and a
  // sparkline of memory (solid) and CPU (dashed) over the campaign with its drains shaded.
  // Hidden when no node is watched.
  function drawNodes(o) {
    const box = $("nodes-box");
    if (!box) return;
    const nodes = o.nodes || [];
    if (!nodes.length) { box.classList.add("hidden"); return; }
    box.classList.remove("hidden");
    const t0 = o.campaign.started_s, t1 = Math.max(o.campaign.ended_s || o.now_s, t0 + 1);
    const W = 200, H = 36;
    const x = (t) => (Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0) * W;
    const y = (v) => H - 1 - Math.min(100, Math.max(0, v)) / 100 * (H - 2);
    const path = (s, col) => {
      let d = "", pen = false;
      for (let i = 0; i < s.t.length; i++) {
        const v = col[i];
        if (v == null) { pen = false; continue; }
        d += (pen ? "L" : "M") + x(s.t[i]).toFixed(1) + " " + y(v).toFixed(1);
        pen = true;
      }
      return d;
    };
    let h = '<table id="nodes"><tr><th class="l">node</th><th class="l">state</th><th>cpu %</th><th>memory %</th><th>disk %</th><th>stall %</th>' +
      '<th>cpu max</th><th>mem max</th><th>scrapes</th><th>drains</th><th class="l">memory ─ cpu ┄ drained ▒ (0–100 %)</th>' +
      '<th class="l">last drain</th></tr>';
    for (const n of nodes) {
      let svg = '<svg class="spark" width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + " " + H + '">';
      for (const d of n.drains) {
        const a = x(d.at_s), b = x(d.reopened_s == null ? t1 : d.reopened_s);
        svg += '<rect x="' + a.toFixed(1) + '" y="0" width="' + Math.max(1, b - a).toFixed(1) + '" height="' + H + '" fill="rgba(123,31,162,0.18)"><title>' +
          esc(clock(d.at_s) + " drained: " + d.reason + (d.reopened_s == null ? "" : "; reopened " + clock(d.reopened_s))) + "</title></rect>";
      }
      svg += '<path d="' + path(n.series, n.series.memory) + '" stroke="#7b1fa2" fill="none" stroke-width="1.2"/>';
      svg += '<path d="' + path(n.series, n.series.cpu) + '" stroke="#1f5fbf" fill="none" stroke-width="1" stroke-dasharray="3 2"/></svg>';
      const last = n.drains.length ? n.drains[n.drains.length - 1] : null;
      const lastText = last ? clock(last.at_s) + " " + last.reason + (last.reopened_s == null ? " (still drained)" : ", reopened " + clock(last.reopened_s)) : "–";
      h += '<tr data-node="' + esc(n.worker + "/" + n.node) + '" data-state="' + esc(n.state) + '"><td class="l">' + esc(n.worker + "/" + n.node) +
        '</td><td class="l wrap node-' + esc(n.state) + '">' + esc(n.state + (n.why ? ": " + n.why : "")) + "</td><td>" + num(n.cpu) + "</td><td>" + num(n.memory) +
        "</td><td>" + num(n.disk) + "</td><td>" + num(n.pressure) + "</td><td>" + num(n.cpu_max) + "</td><td>" + num(n.memory_max) + "</td><td>" + n.samples +
        "</td><td>" + n.drains_total + '</td><td class="l">' + svg + '</td><td class="l wrap">' + esc(lastText) + "</td></tr>";
    }
    const el = $("nodes-list");
    if (el) el.innerHTML = h + "</table>";
  }

  /* ---------- breakers ---------- */

  function drawTimeline(o) {
    const el = $("timeline");
    if (!el) return;
    const lanes = o.breakers;
    if (!lanes.length) { el.innerHTML = '<div class="chart"><div class="empty">no breaker changed state' + (o.campaign.ended ? "" : " yet") + "</div></div>"; return; }
    const W = Math.max(400, el.clientWidth || 900), label = Math.min(220, W * 0.25), rowH = 20, H = lanes.length * rowH + 26;
    const t0 = o.campaign.started_s, t1 = Math.max(o.campaign.ended_s || o.now_s, t0 + 1);
    const x = (t) => label + (Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0) * (W - label - 6);
    let s = '<svg id="timeline-svg" width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + " " + H + '" role="img" aria-label="breaker state timeline">';
    lanes.forEach((l, i) => {
      const y = 4 + i * rowH;
      s += '<text x="4" y="' + (y + 13) + '" font-size="11" fill="#333">' + esc(l.key) + "</text>";
      for (const sp of l.spans) {
        const a = x(sp.from_s), b = x(sp.to_s == null ? t1 : sp.to_s);
        s += '<rect x="' + a.toFixed(1) + '" y="' + y + '" width="' + Math.max(1, b - a).toFixed(1) + '" height="' + (rowH - 5) +
          '" fill="' + (STATE_COLORS[sp.state] || "#999") + '"><title>' + esc(l.key + ": " + sp.state + " " + clock(sp.from_s) + "–" + (sp.to_s == null ? "now" : clock(sp.to_s))) + "</title></rect>";
      }
      // operators' commands (stressctl breaker ...): a black tick with who asked and why
      for (const m of (l.marks || [])) {
        const a = x(m.at_s);
        s += '<path class="breaker-command" d="M' + a.toFixed(1) + " " + y + "l-4 -4h8z v" + (rowH - 5) + '" stroke="#000" fill="#000"><title>' +
          esc(clock(m.at_s) + " " + m.text) + "</title></path>";
      }
    });
    const yA = H - 8;
    s += '<text x="' + label + '" y="' + yA + '" font-size="10" fill="#666">' + clock(t0) + "</text>";
    s += '<text x="' + (W - 6) + '" y="' + yA + '" font-size="10" fill="#666" text-anchor="end">' + clock(t1) + "</text>";
    el.innerHTML = s + "</svg>";
  }

  function drawBreakerTable(snap) {
    const el = $("breaker-table");
    if (!el || !snap) return;
    const a = snap.aggregate;
    const agg = $("breaker-cards");
    if (agg) {
      agg.innerHTML = card("breakers", a.total) + card("closed", '<span class="state-closed">' + a.closed + "</span>") +
        card("open", '<span class="state-open">' + a.open + "</span>") + card("half-open", '<span class="state-half_open">' + a.half_open + "</span>") +
        card("forced open", a.forced_open) + card("disabled", a.disabled) + card("average health", num(a.average_health, 1) + " %");
    }
    let h = '<table id="breakers"><tr><th class="l">breaker</th><th class="l">state</th><th>health %</th><th>calls</th><th>failed</th><th>rejected</th>' +
      "<th>opens</th><th>recoveries</th><th>time open</th><th>mean open</th><th>next open</th></tr>";
    let rows = 0;
    for (const [scope, group] of [["worker", snap.workers], ["browser", snap.browsers], ["task", snap.tasks], ["hardware", snap.hardware_classes || {}]]) {
      for (const name of Object.keys(group || {}).sort()) {
        const b = group[name];
        rows++;
        h += '<tr data-key="' + esc(scope + ":" + name) + '" data-state="' + esc(b.state) + '"><td class="l">' + esc(scope + ":" + name) +
          '</td><td class="l state-' + esc(b.state) + '">' + esc(b.state.replace("_", " ")) + "</td><td>" + num(b.health_percent, 1) + "</td><td>" + b.calls +
          "</td><td>" + b.failures + "</td><td>" + b.rejected + "</td><td>" + b.opens + "</td><td>" + b.recoveries + "</td><td>" + dur(b.total_open_time_ms / 1000) +
          "</td><td>" + dur(b.mean_open_time_ms / 1000) + "</td><td>" + dur(b.open_timeout_ms / 1000) + "</td></tr>";
      }
    }
    el.innerHTML = rows ? h + "</table>" : '<div class="chart"><div class="empty">no breaker was used yet</div></div>';
  }

  function drawRecoveries(o) {
    const el = $("recoveries");
    if (!el) return;
    if (!o.recoveries.length) { el.innerHTML = '<div class="chart"><div class="empty">no recovery attempted' + (o.campaign.ended ? "" : " yet") + "</div></div>"; return; }
    let h = '<table><tr><th class="l">failure class</th><th class="l">strategy</th><th>attempts</th><th>recovered</th><th>rate %</th><th class="l"></th></tr>';
    for (const r of o.recoveries) {
      const rate = r.attempts ? r.succeeded / r.attempts * 100 : 0;
      h += '<tr><td class="l">' + esc(r.class) + '</td><td class="l">' + esc(r.strategy) + "</td><td>" + r.attempts + "</td><td>" + r.succeeded + "</td><td>" +
        num(rate, 1) + '</td><td class="l"><span class="bar" style="width:' + (rate * 1.2).toFixed(0) + 'px"></span><span class="bar bad" style="width:' +
        ((100 - rate) * 1.2).toFixed(0) + 'px"></span></td></tr>';
    }
    el.innerHTML = h + "</table>";
  }

  /* ---------- events ---------- */

  function addEvent(e, box) {
    box = box || $("events");
    if (!box) return;
    const at = Date.parse(e.at) / 1000;
    const div = document.createElement("div");
    div.className = "k-" + e.kind;
    div.textContent = clock(at) + "  " + e.kind.padEnd(20) + " " + e.message;
    box.appendChild(div);
    while (box.childElementCount > MAX_EVENTS) box.removeChild(box.firstChild);
    box.scrollTop = box.scrollHeight;
  }

  /* ---------- drawing one overview ---------- */

  function draw(o) {
    latest = o;
    drawHeader(o);
    drawCards(o);
    drawCharts(o);
    drawPhases(o);
    drawNodes(o);
    drawTimeline(o);
    drawRecoveries(o);
    document.body.dataset.ended = o.campaign.ended ? "yes" : "no";
  }

  /* ---------- live ---------- */

  async function getJson(path) {
    const r = await fetch(path, { cache: "no-store", credentials: "same-origin" });
    if (!r.ok) throw new Error(path + ": " + r.status);
    return r.json();
  }

  async function poll() {
    try {
      const o = await getJson("/api/overview");
      offline = false;
      draw(o);
      if (page === "breakers") drawBreakerTable(await getJson("/api/circuit-breakers"));
    } catch (err) {
      offline = true;
      if (latest) drawHeader(latest);
      else { const b = $("banner"); if (b) { b.className = "banner offline"; b.textContent = "Cannot reach stressctl: " + err.message; } }
    }
    // an ended campaign's data is final: one last poll after the end, then stop (the process
    // that serves a live campaign exits right after it)
    if (latest && latest.campaign.ended && !offline) return;
    window.setTimeout(poll, 1000);
  }

  function follow() {
    if (!$("events") || !window.EventSource) return;
    const es = new EventSource("/api/events");
    es.onmessage = (m) => {
      let e;
      try { e = JSON.parse(m.data); } catch (_) { return; }
      addEvent(e);
      if (e.kind === "campaign_ended") es.close();
      if (e.kind === "campaign_ended" && latest) {
        // the process may exit before the next poll: the page knows the end from the event alone
        Object.assign(latest.campaign, { ended: true, outcome: e.data.outcome, stop_reason: e.data.stop_reason, ended_s: Date.parse(e.at) / 1000 });
        draw(latest);
      }
      if (e.kind === "campaign_ended" || e.kind === "phase_ended" || e.kind === "phase_started") window.setTimeout(refreshSoon, 50);
    };
  }
  async function refreshSoon() {
    try { draw(await getJson("/api/overview")); } catch (_) { /* the next poll retries */ }
  }

  /* ---------- report ---------- */

  function report() {
    const holder = $("stressctl-data");
    if (!holder) return;
    const d = JSON.parse(holder.textContent);
    draw(d.overview);
    drawBreakerTable(d.breakers);
    const box = $("events");
    if (box) { for (const e of d.events) addEvent(e, box); box.scrollTop = 0; }
  }

  function start() {
    if (mode === "report") report();
    else { poll(); follow(); }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
