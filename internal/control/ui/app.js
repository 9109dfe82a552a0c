// weir web UI: draws the pipeline graph with live numbers, charts a
// selected node's history, tails events and lists errors. It reads only
// the control plane's JSON API (docs/api.md), relative to this page, so it
// works behind any prefix and offline. No framework, no build step.
"use strict";

const API = "../api/v1";
const HEALTH = "../healthz";
// The SVG namespace, read from the page's own <svg> once it is parsed.
let SVGNS = "";

// Thresholds that make a node stand out.
const HOT_BUSY = 0.8; // busy share: the stage is the bottleneck
const PRESSURED = 0.2; // backpressure share: the stage waits on downstream
const QUEUED = 0.5; // queue fill

const state = {
  topo: null, // GET /api/v1/topology
  stats: null, // last GET /api/v1/stats
  byName: {}, // node name -> stats node
  selected: null, // selected node name
  lag: {}, // input name -> [[t ms, lag]] kept here: /series has no lag
  layout: null,
  tail: null, // {es, id, paused, node, count, rows}
  errSamples: null, // last GET /api/v1/errors
  fates: null, // last GET /api/v1/fate
};

// ---- helpers ----

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const c of children) e.append(c);
  return e;
}

function sv(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  setAttrs(e, attrs);
  for (const c of children) e.append(c);
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) {
    const msg = body && body.error ? body.error + (body.hint ? " (" + body.hint + ")" : "") : "HTTP " + r.status;
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return body;
}

function fmtRate(v) {
  if (v === undefined || v === null) return "–";
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e4) return (v / 1e3).toFixed(0) + "k";
  if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
  if (v >= 10 || v === 0) return v.toFixed(0);
  return v.toFixed(1);
}

function fmtCount(v) {
  if (v === undefined || v === null) return "–";
  if (v >= 1e9) return (v / 1e9).toFixed(1) + "G";
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e4) return (v / 1e3).toFixed(1) + "k";
  return String(v);
}

function pct(v) {
  if (v === undefined || v === null) return "–";
  const p = v * 100;
  if (p > 0 && p < 0.1) return "<0.1%";
  return (p > 0 && p < 1 ? p.toFixed(1) : p.toFixed(0)) + "%";
}

function fmtSecs(s) {
  if (s === undefined || s === null) return "–";
  if (s < 1e-3) return (s * 1e6).toFixed(0) + "µs";
  if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 0) + "ms";
  return s.toFixed(2) + "s";
}

function fmtBytes(b) {
  if (b === undefined || b === null) return "–";
  if (b >= 1 << 20) return (b / (1 << 20)).toFixed(1) + " MiB";
  if (b >= 1 << 10) return (b / (1 << 10)).toFixed(1) + " KiB";
  return b + " B";
}

function fmtUptime(s) {
  s = Math.floor(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return (h ? h + "h" : "") + (h || m ? m + "m" : "") + sec + "s";
}

function clockTime(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return "";
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

// ---- header and health ----

async function pollHealth() {
  try {
    const h = await getJSON(HEALTH);
    const b = $("status");
    b.textContent = h.status;
    b.className = "badge " + h.status;
    state.health = h;
  } catch (e) {
    const b = $("status");
    b.textContent = "unreachable";
    b.className = "badge down";
    state.health = null;
  }
  renderErrors();
}

// ---- graph layout and drawing ----

const NODE_W = 200, NODE_H = 112, COL_GAP = 110, ROW_GAP = 28, PAD = 16;

// layout puts each node in the column of its depth (longest path from an
// input) and stacks the nodes of a column in topological order.
function layout(topo) {
  const depth = {};
  const order = {};
  topo.nodes.forEach((n, i) => { depth[n.name] = 0; order[n.name] = i; });
  // Nodes come in topological order; relax edges in that order, twice to
  // be safe with dead-letter edges that point back in the list.
  for (let pass = 0; pass < 2; pass++) {
    for (const n of topo.nodes) {
      for (const e of topo.edges) {
        if (e.from === n.name && depth[e.to] < depth[n.name] + 1) depth[e.to] = depth[n.name] + 1;
      }
    }
  }
  const cols = [];
  for (const n of topo.nodes) {
    (cols[depth[n.name]] = cols[depth[n.name]] || []).push(n.name);
  }
  const pos = {};
  const rows = Math.max(1, ...cols.map((c) => (c ? c.length : 0)));
  const height = PAD * 2 + rows * NODE_H + (rows - 1) * ROW_GAP;
  cols.forEach((col, ci) => {
    if (!col) return;
    col.sort((a, b) => order[a] - order[b]);
    const colH = col.length * NODE_H + (col.length - 1) * ROW_GAP;
    const y0 = (height - colH) / 2;
    col.forEach((name, ri) => {
      pos[name] = { x: PAD + ci * (NODE_W + COL_GAP), y: y0 + ri * (NODE_H + ROW_GAP) };
    });
  });
  const width = PAD * 2 + cols.length * NODE_W + (cols.length - 1) * COL_GAP;
  return { pos, width, height };
}

function drawGraph() {
  const topo = state.topo;
  const svg = $("graph");
  svg.replaceChildren();
  const L = layout(topo);
  state.layout = L;
  svg.setAttribute("width", L.width);
  svg.setAttribute("height", L.height);
  svg.setAttribute("viewBox", `0 0 ${L.width} ${L.height}`);
  svg.append(sv("defs", {}, sv("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    sv("path", { d: "M0,0 L10,5 L0,10 z" }))));
  const stageOf = {};
  for (const s of topo.stages) for (const n of s.nodes) stageOf[n] = s;

  const edges = sv("g", { class: "edges" });
  topo.edges.forEach((e, i) => {
    const a = L.pos[e.from], b = L.pos[e.to];
    if (!a || !b) return;
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
    let d;
    if (x2 > x1) {
      const mx = (x1 + x2) / 2;
      d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
    } else { // same or earlier column: loop below
      const yb = Math.max(a.y, b.y) + NODE_H + ROW_GAP / 2;
      d = `M${a.x + NODE_W / 2},${a.y + NODE_H} C${a.x + NODE_W / 2},${yb} ${b.x + NODE_W / 2},${yb} ${b.x + NODE_W / 2},${b.y + NODE_H}`;
    }
    const lx = (x1 + x2) / 2, ly = (y1 + y2) / 2;
    const kind = e.kind + (e.key ? " " + e.key : "");
    edges.append(sv("g", { class: "edge " + e.kind, "data-edge": e.from + ">" + e.to, "data-kind": e.kind },
      sv("path", { d, "marker-end": "url(#arrow)" }),
      sv("rect", { class: "label-bg", x: lx - 44, y: ly - 19, width: 88, height: 26, rx: 3 }),
      sv("text", { x: lx, y: ly - 8, "text-anchor": "middle" }, kind.length > 22 ? kind.slice(0, 21) + "…" : kind),
      sv("text", { class: "rate", x: lx, y: ly + 4, "text-anchor": "middle", "data-field": "edge_rate", "data-edge-index": i }, "–")));
  });
  svg.append(edges);

  for (const n of topo.nodes) {
    const p = L.pos[n.name];
    const st = stageOf[n.name];
    const sub = n.kind + " · " + n.type + (n.parallelism > 1 ? " ×" + n.parallelism : "") + (st && st.fused ? " · fused" : "");
    const t = (x, y, attrs, ...kids) => sv("text", Object.assign({ x, y }, attrs), ...kids);
    const f = (name) => sv("tspan", { "data-field": name }, name === "latency" ? "" : "–");
    const g = sv("g", { class: "node " + n.kind, "data-node": n.name, transform: `translate(${p.x},${p.y})`, tabindex: 0 },
      sv("title", {}, `${n.name} (${n.kind} ${n.type}), stage ${st ? st.name : n.stage}, on_error ${n.on_error}` + (n.dead_letter ? " → " + n.dead_letter : "")),
      sv("rect", { class: "box", width: NODE_W, height: NODE_H, rx: 6 }),
      t(10, 18, { class: "name" }, n.name.length > 24 ? n.name.slice(0, 23) + "…" : n.name),
      t(10, 32, { class: "sub" }, sub),
      // The live numbers, each in its own tspan with data-field.
      t(10, 50, {}, "in ", f("in_rate"), "/s  out ", f("out_rate"), "/s"),
      t(10, 66, { class: "lat" }, f("latency")),
      t(10, 82, {}, "busy ", f("busy"), "  bp ", f("backpressure")),
      t(10, 104, {}, "err ", f("errors"), "  dl ", f("dead_letters"), "  q ", f("queue")),
      sv("rect", { class: "qbg", x: 150, y: 95, width: 40, height: 8, rx: 2 }),
      sv("rect", { class: "qfill", x: 150, y: 95, width: 0, height: 8, rx: 2 }));
    g.addEventListener("click", () => select(n.name));
    g.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") select(n.name); });
    svg.append(g);
  }
  markSelected();
}

function updateGraph() {
  const st = state.stats, topo = state.topo;
  if (!st || !topo) return;
  for (const n of st.nodes) {
    const g = $("graph").querySelector(`g.node[data-node="${CSS.escape(n.name)}"]`);
    if (!g) continue;
    const set = (field, text) => { const e = g.querySelector(`[data-field="${field}"]`); if (e) e.textContent = text; };
    set("in_rate", fmtRate(n.in_rate));
    set("out_rate", fmtRate(n.out_rate));
    let lat = "";
    if (n.latency_p50_s !== undefined) lat = `latency p50 ${fmtSecs(n.latency_p50_s)} p99 ${fmtSecs(n.latency_p99_s)}`;
    else if (n.batch_p50_s !== undefined) lat = `batch p50 ${fmtSecs(n.batch_p50_s)} p99 ${fmtSecs(n.batch_p99_s)}`;
    else if (n.lag !== undefined) lat = `lag ${fmtCount(n.lag)}`;
    if (n.kind === "processor" && (n.watermark_lag_s !== undefined || n.watermark_end)) {
      // Event-time operators: how far their watermark trails the clock.
      lat = n.watermark_end ? "watermark: end of input" : `watermark ${fmtSecs(n.watermark_lag_s)} behind`;
    }
    set("latency", lat);
    set("busy", n.kind === "input" ? "–" : pct(n.busy));
    set("backpressure", pct(n.backpressure));
    set("queue", n.queue ? pct(n.queue.fill) : "–");
    set("errors", fmtCount(n.errors));
    set("dead_letters", fmtCount(n.dead_letters));
    const errEl = g.querySelector('[data-field="errors"]');
    errEl.classList.toggle("bad", n.errors > 0);
    const fill = n.queue ? Math.min(1, n.queue.fill) : 0;
    g.querySelector("rect.qfill").setAttribute("width", (40 * fill).toFixed(1));
    g.classList.toggle("noqueue", !n.queue);
    g.classList.toggle("hot", n.busy >= HOT_BUSY);
    g.classList.toggle("pressured", n.backpressure >= PRESSURED);
    g.classList.toggle("queued", !!n.queue && n.queue.fill >= QUEUED);
    g.classList.toggle("erroring", n.error_rate > 0);
  }
  // Edge rates: what the target takes in when this is its only input,
  // else what the source sends (the split of a fan-out is not measured).
  const incoming = {};
  for (const e of topo.edges) incoming[e.to] = (incoming[e.to] || 0) + 1;
  $("graph").querySelectorAll('[data-field="edge_rate"]').forEach((t) => {
    const e = topo.edges[+t.getAttribute("data-edge-index")];
    const from = state.byName[e.from], to = state.byName[e.to];
    let r, approx = false;
    if (e.kind === "dead_letter") r = from && from.error_rate;
    else if (incoming[e.to] === 1 && to) r = to.in_rate;
    else if (from) { r = from.out_rate; approx = true; }
    t.textContent = r === undefined ? "–" : (approx ? "≤" : "") + fmtRate(r) + "/s";
  });
}

function markSelected() {
  $("graph").querySelectorAll("g.node").forEach((g) => g.classList.toggle("selected", g.getAttribute("data-node") === state.selected));
}

// ---- stats polling ----

async function pollStats() {
  try {
    const st = await getJSON(API + "/stats");
    state.stats = st;
    state.byName = {};
    for (const n of st.nodes) state.byName[n.name] = n;
    const now = Date.parse(st.time) || Date.now();
    for (const n of st.nodes) {
      if (n.lag === undefined) continue;
      const h = (state.lag[n.name] = state.lag[n.name] || []);
      h.push([now, n.lag]);
      while (h.length && h[0][0] < now - 15 * 60 * 1000) h.shift();
    }
    $("conn").textContent = "";
    $("running").textContent = st.running ? "running" : "stopped";
    $("uptime").textContent = "up " + fmtUptime(st.uptime_s);
    const c = st.checkpoints;
    $("checkpoint").textContent = c && c.last_id ? `checkpoint ${c.last_id}` + (c.age_s !== undefined ? `, ${c.age_s.toFixed(1)}s ago` : "") : "";
    updateGraph();
    renderSideNumbers();
    renderErrors();
  } catch (e) {
    $("conn").textContent = "stats: " + e.message;
  }
}

// ---- selected node: numbers, charts ----

function select(name) {
  state.selected = name;
  markSelected();
  $("side-node").textContent = name;
  $("tail-node").value = name;
  const body = $("side-body");
  body.replaceChildren(el("dl", { class: "kv", id: "side-kv" }), el("div", { id: "side-charts" }));
  renderSideNumbers();
  pollSeries();
}

function renderSideNumbers() {
  const n = state.byName[state.selected];
  const kv = $("side-kv");
  if (!n || !kv) return;
  const rows = [
    ["kind", n.kind + " · " + n.type],
    ["in / out", `${fmtCount(n.in)} / ${fmtCount(n.out)}`],
    ["rate in / out", `${fmtRate(n.in_rate)}/s / ${fmtRate(n.out_rate)}/s`],
    ["filtered", fmtCount(n.filtered)],
    ["errors", `${fmtCount(n.errors)} (dropped ${fmtCount(n.dropped)}, dead letters ${fmtCount(n.dead_letters)})`],
    ["busy / backpressure", `${pct(n.busy)} / ${pct(n.backpressure)}`],
  ];
  if (n.queue) rows.push(["queue", `${n.queue.events} / ${n.queue.capacity_events} events, ${fmtBytes(n.queue.bytes)} (${pct(n.queue.fill)}), high water ${n.queue.high_water}`]);
  if (n.batch_p50_s !== undefined) rows.push(["batch p50 / p99", `${fmtSecs(n.batch_p50_s)} / ${fmtSecs(n.batch_p99_s)}`]);
  if (n.latency_p50_s !== undefined) rows.push(["latency p50 / p99", `${fmtSecs(n.latency_p50_s)} / ${fmtSecs(n.latency_p99_s)}`]);
  if (n.lag !== undefined) rows.push(["lag", fmtCount(n.lag) + " records"]);
  if (n.watermark_end) rows.push(["watermark", "end of input"]);
  else if (n.watermark) rows.push(["watermark", `${clockTime(n.watermark)} (${fmtSecs(n.watermark_lag_s)} behind the clock)`]);
  kv.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

async function pollSeries() {
  const name = state.selected;
  if (!name) return;
  let s;
  try {
    s = await getJSON(API + "/series?node=" + encodeURIComponent(name));
  } catch (e) {
    const c = $("side-charts");
    if (c) c.replaceChildren(el("p", { class: "bad" }, "history: " + e.message));
    return;
  }
  if (name !== state.selected) return;
  const c = $("side-charts");
  if (!c) return;
  const charts = [
    chart("events/s", s.t, [["in", s.in_rate], ["out", s.out_rate], ["errors", s.error_rate]], fmtRate),
    chart("busy / backpressure", s.t, [["busy", s.busy], ["backpressure", s.backpressure]], pct, 1),
    chart("queue fill", s.t, [["fill", s.queue_fill]], pct, 1),
  ];
  const lag = state.lag[name];
  if (lag && lag.length) {
    charts.push(chart("lag (records, since this page opened)", lag.map((p) => p[0]), [["lag", lag.map((p) => p[1])]], fmtCount));
  }
  c.replaceChildren(...charts);
}

// chart draws series as polylines over a shared time axis. fixedMax pins
// the y range (1 for fractions).
function chart(title, t, series, fmt, fixedMax) {
  const W = 340, H = 70;
  const n = t.length;
  let max = fixedMax || 0;
  if (!fixedMax) for (const [, ys] of series) for (const y of ys) if (y > max) max = y;
  if (max <= 0) max = 1;
  const t0 = n ? t[0] : 0, t1 = n ? t[n - 1] : 1;
  const span = Math.max(1, t1 - t0);
  const svg = sv("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
  series.forEach(([, ys], i) => {
    const pts = ys.map((y, j) => `${((t[j] - t0) / span * W).toFixed(1)},${(H - 2 - (y / max) * (H - 4)).toFixed(1)}`).join(" ");
    svg.append(sv("polyline", { class: "s" + i, points: pts }));
  });
  const last = series.map(([label, ys]) => [label, ys.length ? ys[ys.length - 1] : undefined]);
  const legend = el("span", { class: "legend" });
  last.forEach(([label, v], i) => legend.append(el("i", { class: "s" + i }), `${label} ${fmt(v)}`));
  const secs = n ? Math.round(span / 1000) : 0;
  return el("div", { class: "chart" },
    el("div", { class: "title" }, el("b", {}, title), el("span", {}, `max ${fmt(max)} · ${!n ? "no data yet" : secs < 90 ? "last " + secs + " s" : "last " + Math.round(secs / 60) + " min"}`)),
    svg, legend);
}

// ---- checkpoints ----

async function pollCheckpoints() {
  const body = $("ckpt-body");
  let list;
  try {
    list = await getJSON(API + "/checkpoints");
  } catch (e) {
    body.replaceChildren(el("p", { class: "bad" }, "checkpoints: " + e.message));
    return;
  }
  if (!list.enabled) {
    body.replaceChildren(el("p", { class: "muted" }, "Checkpoints are off: the pipeline has no state.dir."));
    return;
  }
  const cps = list.checkpoints;
  if (!cps.length) {
    body.replaceChildren(el("p", { class: "muted" }, "No checkpoint taken yet."));
    return;
  }
  const t = cps.map((c) => Date.parse(c.time));
  const parts = [
    chart("duration", t, [["duration", cps.map((c) => c.duration_ns / 1e9)]], fmtSecs),
    chart("size", t, [["bytes", cps.map((c) => c.bytes)]], fmtBytes),
  ];
  const tbl = el("table", {}, el("tr", {}, el("th", {}, "id"), el("th", {}, "time"), el("th", { class: "num" }, "duration"), el("th", { class: "num" }, "size"), el("th", {}, "nodes")));
  for (const c of cps.slice(-10).reverse()) {
    tbl.append(el("tr", {}, el("td", {}, String(c.id)), el("td", {}, clockTime(c.time)), el("td", { class: "num" }, fmtSecs(c.duration_ns / 1e9)),
      el("td", { class: "num" }, fmtBytes(c.bytes)), el("td", {}, (c.nodes || []).map((x) => x.node).join(", "))));
  }
  parts.push(tbl);
  parts.push(ckptFailures());
  body.replaceChildren(...parts);
}

// ckptFailures says how many checkpoints failed since the start, and why
// the last one did.
function ckptFailures() {
  const c = state.stats && state.stats.checkpoints;
  if (!c || !c.failed) return el("p", { class: "muted", id: "ckpt-failures" }, "No checkpoint failed since the start.");
  const f = c.last_failure;
  return el("p", { class: "bad", id: "ckpt-failures" }, `${fmtCount(c.failed)} failed since the start` +
    (f ? `; the last, checkpoint ${f.id} at ${clockTime(f.time)}: ${f.error}` : "") + ".");
}

// ---- errors ----

// pollErrors fetches samples of failed events while some node has errors.
async function pollErrors() {
  const any = state.stats && state.stats.nodes.some((n) => n.errors > 0);
  if (!any) return;
  try {
    state.errSamples = (await getJSON(API + "/errors?limit=10")).errors;
  } catch (e) {
    state.errSamples = null;
  }
  renderErrors();
}

function renderErrors() {
  const body = $("errors-body");
  const parts = [];
  const comps = state.health && state.health.components ? Object.entries(state.health.components) : [];
  const bad = comps.filter(([, c]) => c.status !== "ok");
  if (bad.length) {
    const tbl = el("table", {}, el("tr", {}, el("th", {}, "component"), el("th", {}, "status"), el("th", {}, "since"), el("th", {}, "last error")));
    for (const [name, c] of bad) {
      tbl.append(el("tr", {}, el("td", {}, name), el("td", { class: "bad" }, c.status), el("td", {}, c.time ? clockTime(c.time) : ""), el("td", { class: "detail mono" }, c.detail || "")));
    }
    parts.push(tbl);
  }
  const nodes = state.stats ? state.stats.nodes.filter((n) => n.errors > 0) : [];
  if (nodes.length) {
    const tbl = el("table", {}, el("tr", {}, el("th", {}, "node"), el("th", { class: "num" }, "errors"), el("th", { class: "num" }, "errors/s"),
      el("th", { class: "num" }, "dropped"), el("th", { class: "num" }, "dead letters")));
    for (const n of nodes) {
      tbl.append(el("tr", {}, el("td", {}, n.name), el("td", { class: "num bad" }, fmtCount(n.errors)), el("td", { class: "num" }, fmtRate(n.error_rate)),
        el("td", { class: "num" }, fmtCount(n.dropped)), el("td", { class: "num" }, fmtCount(n.dead_letters))));
    }
    parts.push(tbl);
  }
  const samples = nodes.length && state.errSamples ? state.errSamples : [];
  if (samples.length) {
    const tbl = el("table", { id: "error-samples" }, el("tr", {}, el("th", {}, "time"), el("th", {}, "node"), el("th", {}, "then"),
      el("th", {}, "error"), el("th", {}, "event")));
    for (const e of samples) {
      const v = typeof e.value === "string" ? e.value : JSON.stringify(e.value);
      const where = (e.source ? e.source + " " : "") + (e.offset !== undefined ? "@" + e.offset : "");
      tbl.append(el("tr", { class: "error-sample" }, el("td", {}, clockTime(e.time)), el("td", {}, e.node), el("td", {}, e.action.replace("_", " ")),
        el("td", { class: "detail mono bad" }, e.error),
        el("td", { class: "detail mono", title: v }, (where ? where + " " : "") + (v.length > 160 ? v.slice(0, 160) + "…" : v) + (e.truncated ? " …(truncated)" : ""))));
    }
    parts.push(el("p", { class: "muted" }, "Recent failed events (a few per node, newest first):"), tbl);
  }
  if (!parts.length) parts.push(el("p", { class: "muted" }, "No errors."));
  body.replaceChildren(...parts);
}

// ---- live tail ----

const TAIL_MAX_ROWS = 200;

function tailStatus(text, bad) {
  const s = $("tail-status");
  s.textContent = text;
  s.classList.toggle("bad", !!bad);
}

function tailButtons() {
  const t = state.tail;
  $("tail-start").disabled = !!t;
  $("tail-pause").disabled = !t || !t.id;
  $("tail-pause").textContent = t && t.paused ? "Resume" : "Pause";
  $("tail-stop").disabled = !t;
}

function tailStart() {
  if (state.tail) return;
  const node = $("tail-node").value;
  if (!node) return;
  const q = new URLSearchParams({ node });
  const filter = $("tail-filter").value.trim();
  if (filter) q.set("filter", filter);
  const rate = $("tail-rate").value.trim();
  if (rate) q.set("rate", rate);
  const url = API + "/tail?" + q.toString();
  const es = new EventSource(url);
  const t = { es, id: null, paused: false, node, count: 0, dropped: 0, sampled: 0 };
  state.tail = t;
  $("tail-rows").replaceChildren();
  tailStatus(`Connecting to ${node}…`);
  es.addEventListener("open", (ev) => {
    if (!ev.data) return; // the EventSource's own open (no data), not the stream's
    const o = JSON.parse(ev.data);
    t.id = o.id;
    t.paused = false;
    tailStatus(`Streaming ${o.node} (${o.rate}/s${o.filter ? ", filter " + o.filter : ""}).`);
    tailButtons();
  });
  es.onmessage = (ev) => {
    let e;
    try { e = JSON.parse(ev.data); } catch (_) { return; }
    t.count++;
    tailRow(e);
    tailCounts(t);
  };
  es.addEventListener("dropped", (ev) => {
    const d = JSON.parse(ev.data);
    t.dropped = d.dropped;
    t.sampled = d.sampled;
    tailCounts(t);
  });
  es.addEventListener("end", (ev) => {
    let reason = "";
    try { reason = JSON.parse(ev.data).reason; } catch (_) { /* none */ }
    tailClose(`Stream ended: ${reason || "closed by the server"}.`);
  });
  es.onerror = async () => {
    if (state.tail !== t) return;
    if (!t.id) {
      // Refused before it started (bad filter, unknown node, too many
      // tails): ask again with fetch to read the error and its hint.
      es.close();
      let msg = "the tail could not start";
      const ctl = new AbortController();
      try {
        const r = await fetch(url, { signal: ctl.signal });
        if (!r.ok) {
          const b = await r.json();
          msg = b.error + (b.hint ? " — " + b.hint : "");
        }
      } catch (_) { /* keep the generic message */ }
      ctl.abort();
      if (state.tail === t) tailClose(msg, true);
      return;
    }
    // The EventSource reconnects by itself; a new stream has a new id.
    t.id = null;
    tailStatus("Connection lost; reconnecting…", true);
    tailButtons();
  };
  tailButtons();
}

function tailCounts(t) {
  tailStatus(`${t.paused ? "Paused" : "Streaming"} ${t.node}: ${t.count} events shown` +
    (t.dropped ? `, ${t.dropped} of ${t.sampled} sampled dropped (this page was too slow)` : "") + ".", t.dropped > 0);
}

function tailRow(e) {
  const rows = $("tail-rows");
  const v = typeof e.value === "string" ? e.value : JSON.stringify(e.value);
  const row = el("div", { class: "tail-row" },
    el("span", { class: "t", title: "seen " + e.seen + (e.time ? ", event time " + e.time : "") + (e.offset !== undefined ? ", offset " + e.offset : "") }, clockTime(e.seen)),
    el("span", { class: "k", title: e.key || "" }, e.key || ""),
    el("span", { class: "v" }, v + (e.truncated ? " …(truncated)" : "")));
  rows.prepend(row);
  while (rows.childElementCount > TAIL_MAX_ROWS) rows.lastElementChild.remove();
}

async function tailPause() {
  const t = state.tail;
  if (!t || !t.id) return;
  const want = !t.paused;
  try {
    const r = await fetch(`${API}/tail/${encodeURIComponent(t.id)}/${want ? "pause" : "resume"}`, { method: "POST" });
    const b = await r.json();
    if (!r.ok) throw new Error(b.error || "HTTP " + r.status);
    t.paused = b.paused;
    tailCounts(t);
  } catch (e) {
    tailStatus("pause/resume: " + e.message, true);
  }
  tailButtons();
}

function tailClose(msg, bad) {
  const t = state.tail;
  if (t) t.es.close();
  state.tail = null;
  tailStatus(msg || "Stopped.", bad);
  tailButtons();
}

// ---- event fate ----

function fateStatus(text, bad) {
  const s = $("fate-status");
  s.textContent = text;
  s.classList.toggle("bad", !!bad);
}

async function fateStart() {
  const node = $("fate-node").value;
  if (!node) return;
  const q = new URLSearchParams({ node });
  const filter = $("fate-filter").value.trim();
  if (filter) q.set("filter", filter);
  try {
    const r = await fetch(API + "/fate?" + q.toString(), { method: "POST" });
    const b = await r.json();
    if (!r.ok) throw new Error(b.error + (b.hint ? " — " + b.hint : ""));
    fateStatus(`Waiting for the next event of ${node}${filter ? " matching " + filter : ""} (trace ${b.id}).`);
  } catch (e) {
    fateStatus(e.message, true);
    return;
  }
  pollFates();
}

async function pollFates() {
  let list;
  try {
    list = (await getJSON(API + "/fate")).fates;
  } catch (e) {
    fateStatus("fates: " + e.message, true);
    return;
  }
  state.fates = list;
  if (list.length && list[0].state !== "waiting" && $("fate-status").textContent.startsWith("Waiting")) {
    fateStatus(`Trace ${list[0].id}: ${list[0].state.replace("_", " ")}. Trace another event, or change the filter.`);
  }
  renderFates();
}

const FATE_WHAT = {
  read: "read", passed: "passed on", changed: "changed", filtered: "filtered out", keyed: "keyed", failed: "failed",
  taken_in: "taken in", written: "written", acknowledged: "acknowledged",
};

function renderFates() {
  const box = $("fate-list");
  const list = state.fates || [];
  box.replaceChildren(...list.map((f) => {
    const head = el("div", { class: "head" },
      el("b", {}, `#${f.id} ${f.input}`),
      el("span", { class: "state " + f.state }, f.state.replace("_", " ")),
      el("span", { class: "muted" }, f.read ? `read ${clockTime(f.read)}` + (f.offset !== undefined ? `, offset ${f.offset}` : "") + (f.source ? `, ${f.source}` : "") +
        (f.acknowledged ? `, acknowledged after ${fmtSecs((Date.parse(f.acknowledged) - Date.parse(f.read)) / 1000)}` : "") :
        `requested ${clockTime(f.requested)}` + (f.filter ? `, filter ${f.filter}` : "")));
    const parts = [head];
    if (f.value !== undefined) {
      const v = typeof f.value === "string" ? f.value : JSON.stringify(f.value);
      parts.push(el("div", { class: "value" }, (f.key ? "key " + f.key + " · " : "") + v + (f.truncated ? " …(truncated)" : "")));
    }
    if (f.steps.length) {
      const tbl = el("table", { class: "fate-steps" });
      for (const s of f.steps) {
        const detail = el("td", { class: "detail" }, s.detail || "");
        if (s.value !== undefined) {
          const v = typeof s.value === "string" ? s.value : JSON.stringify(s.value);
          detail.append(el("span", { class: "v" }, v + (s.truncated ? " …(truncated)" : "")));
        }
        tbl.append(el("tr", { class: "fate-step", "data-what": s.what },
          el("td", { class: "num muted" }, "+" + fmtSecs(s.since_read_s)),
          el("td", {}, s.node || ""),
          el("td", { class: "what " + s.what }, FATE_WHAT[s.what] || s.what),
          detail));
      }
      parts.push(tbl);
      if (f.more_steps) parts.push(el("p", { class: "muted" }, `…and ${f.more_steps} more steps.`));
    }
    return el("div", { class: "fate", "data-fate": String(f.id) }, ...parts);
  }));
}

// ---- start ----

async function init() {
  SVGNS = $("graph").namespaceURI;
  $("tail-start").addEventListener("click", tailStart);
  $("tail-pause").addEventListener("click", tailPause);
  $("tail-stop").addEventListener("click", () => tailClose(state.tail ? `Stopped after ${state.tail.count} events.` : "Stopped."));
  $("tail-filter").addEventListener("keydown", (ev) => { if (ev.key === "Enter") tailStart(); });
  $("fate-start").addEventListener("click", fateStart);
  $("fate-filter").addEventListener("keydown", (ev) => { if (ev.key === "Enter") fateStart(); });
  pollHealth();
  setInterval(pollHealth, 2000);
  let topo;
  for (;;) {
    try {
      topo = await getJSON(API + "/topology");
      break;
    } catch (e) {
      if (e.status === 404) {
        $("graph-msg").textContent = "This process serves no pipeline: there is no graph to show.";
        $("pipeline-name").textContent = "(no pipeline)";
        return;
      }
      $("graph-msg").textContent = "topology: " + e.message + "; retrying…";
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  $("graph-msg").textContent = "";
  state.topo = topo;
  document.title = "weir · " + topo.pipeline;
  $("pipeline-name").textContent = topo.pipeline;
  $("tail-node").replaceChildren(...topo.nodes.map((n) => el("option", { value: n.name }, `${n.name} (${n.kind})`)));
  $("fate-node").replaceChildren(...topo.nodes.filter((n) => n.kind === "input").map((n) => el("option", { value: n.name }, n.name)));
  drawGraph();
  await pollStats();
  setInterval(pollStats, 1000);
  setInterval(pollSeries, 2000);
  pollCheckpoints();
  setInterval(pollCheckpoints, 5000);
  setInterval(pollErrors, 2000);
  pollFates();
  setInterval(() => { if ((state.fates || []).some((f) => f.state === "waiting" || f.state === "in_flight")) pollFates(); }, 1000);
}

document.addEventListener("DOMContentLoaded", init);
