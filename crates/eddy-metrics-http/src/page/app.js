"use strict";
// eddy's web view: draws the job graph from /jobs/{id}/plan once, then polls /jobs/{id} and
// /jobs/{id}/checkpoints every second and updates the numbers in place (the server works out
// the rates). Every text from the job goes in through textContent, never as markup.

const POLL_MS = 1000;
const LAG_POINTS = 120; // two minutes of one-second polls
const SVG_NS = "http://www.w3.org/2000/svg";
const BOX = { width: 270, gap: 90, line: 16, pad: 8 };
const COLOURS = ["#3b6fd8", "#d8663b", "#2e9d5b", "#9b4bd0", "#c9a227", "#1aa3a3", "#c2417a", "#6b7a8f"];

const view = { id: null, plan: null, lag: new Map(), polls: 0, timer: null };

const $ = (id) => document.getElementById(id);

function svg(name, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function html(name, attrs = {}, text) {
  const node = document.createElement(name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

// ---------------------------------------------------------------------------------------------
// Formatting.

function count(n) {
  if (n === null || n === undefined) return "–";
  if (n >= 1e9) return (n / 1e9).toFixed(2) + "G";
  if (n >= 1e6) return (n / 1e6).toFixed(2) + "M";
  if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return String(Math.round(n));
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(2) + " GiB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(2) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
  return n + " B";
}

function millis(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms >= 3600000) return (ms / 3600000).toFixed(1) + " h";
  if (ms >= 60000) return (ms / 60000).toFixed(1) + " min";
  if (ms >= 1000) return (ms / 1000).toFixed(1) + " s";
  return ms + " ms";
}

const END_OF_TIME = 9223372036854775807; // i64::MAX, as JSON numbers read it

/// A watermark as a UTC time, with its date only when that is not today's.
function watermark(w) {
  if (w === null || w === undefined) return "none yet";
  if (w >= END_OF_TIME) return "end of input";
  const [date, time] = new Date(w).toISOString().replace("Z", "").split("T");
  const today = new Date().toISOString().slice(0, 10);
  return date === today ? `${time.slice(0, 8)} UTC` : `${date} ${time.slice(0, 8)}`;
}

function clock(ms) {
  return new Date(ms).toISOString().slice(11, 19);
}

function shorten(text, max) {
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

/// Flink's backpressure levels: OK under 10% of the time blocked on output, high over 50%.
function backpressureLevel(msPerSecond) {
  if (msPerSecond === null || msPerSecond === undefined) return "NONE";
  if (msPerSecond > 500) return "HIGH";
  if (msPerSecond > 100) return "LOW";
  return "OK";
}

// ---------------------------------------------------------------------------------------------
// The job graph.

/// The chains of a plan (operators grouped by the first operator of their chain), and the
/// edges between chains with their ship strategies.
function chainsOf(plan) {
  const chains = [];
  const byHead = new Map();
  for (const op of plan.operators) {
    let chain = byHead.get(op.chain);
    if (!chain) {
      chain = { id: op.chain, operators: [], parallelism: op.parallelism, inputs: [] };
      byHead.set(op.chain, chain);
      chains.push(chain);
    }
    chain.operators.push(op);
  }
  const chainOf = new Map(plan.operators.map((op) => [op.id, op.chain]));
  const edges = [];
  for (const edge of plan.edges.filter((e) => !e.chained)) {
    const from = chainOf.get(edge.from);
    const to = chainOf.get(edge.to);
    const label = edge.side_output ? `${edge.ship_strategy} (${edge.side_output})` : edge.ship_strategy;
    if (!edges.some((e) => e.from === from && e.to === to && e.label === label)) edges.push({ from, to, label });
    byHead.get(to).inputs.push(from);
  }
  return { chains, edges };
}

/// Places chains in columns by their longest path from a source, in plan order within a column.
function layout(chains) {
  const depth = new Map();
  for (const chain of chains) {
    depth.set(chain.id, Math.max(0, ...chain.inputs.map((i) => (depth.get(i) ?? 0) + 1)));
  }
  const columns = [];
  const place = new Map();
  for (const chain of chains) {
    const column = depth.get(chain.id);
    columns[column] = columns[column] || { y: 20 };
    const height = BOX.pad * 2 + BOX.line * (chain.operators.length + 4) + 6;
    place.set(chain.id, { x: 20 + column * (BOX.width + BOX.gap), y: columns[column].y, height });
    columns[column].y += height + 30;
  }
  const width = 40 + columns.length * (BOX.width + BOX.gap) - BOX.gap;
  const height = Math.max(...columns.map((c) => c.y)) - 10;
  return { place, width, height };
}

function drawGraph(plan) {
  const { chains, edges } = chainsOf(plan);
  const { place, width, height } = layout(chains);
  const graph = $("graph");
  graph.replaceChildren();
  graph.setAttribute("width", width);
  graph.setAttribute("height", height);
  graph.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#7a8294" }));
  defs.append(marker);
  graph.append(defs);
  for (const edge of edges) {
    const from = place.get(edge.from);
    const to = place.get(edge.to);
    const [x1, y1] = [from.x + BOX.width, from.y + from.height / 2];
    const [x2, y2] = [to.x, to.y + to.height / 2];
    const bend = (x2 - x1) / 2;
    const g = svg("g", { class: "edge", "data-from": edge.from, "data-to": edge.to });
    g.append(svg("path", { d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" }));
    g.append(svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 6, "text-anchor": "middle" }, edge.label));
    graph.append(g);
  }
  for (const chain of chains) {
    const at = place.get(chain.id);
    const name = chain.operators.map((op) => op.name).join(" -> ");
    const g = svg("g", { class: "vertex bp-NONE", "data-chain": chain.id, "data-name": name, transform: `translate(${at.x},${at.y})` });
    g.append(svg("rect", { class: "box", width: BOX.width, height: at.height, rx: 6 }));
    let y = BOX.pad + 12;
    for (const op of chain.operators) {
      const text = svg("text", { class: "operator", x: BOX.pad, y }, shorten(op.name, 38));
      text.append(svg("title", {}, op.uid ? `${op.name} (uid ${op.uid})` : op.name));
      g.append(text);
      y += BOX.line;
    }
    g.append(svg("line", { x1: 0, x2: BOX.width, y1: y - 10, y2: y - 10, stroke: "#b9bfca" }));
    y += 4;
    for (const metric of ["parallelism", "records", "watermark", "time"]) {
      g.append(svg("text", { class: `metric ${metric}`, x: BOX.pad, y }, metric === "parallelism" ? `parallelism ${chain.parallelism}` : "…"));
      y += BOX.line;
    }
    graph.append(g);
  }
}

/// The most of a number over a vertex's first operator's subtasks (`null` when none has it).
function most(vertex, field) {
  const values = vertex.operators[0].subtasks.map((s) => s[field]).filter((v) => v !== null && v !== undefined);
  return values.length ? Math.max(...values) : null;
}

function updateVertices(vertices, uptime) {
  for (const vertex of vertices) {
    const g = document.querySelector(`#graph .vertex[data-chain="${vertex.id}"]`);
    if (!g) continue;
    const [rateIn, rateOut] = [vertex.records_in_per_s, vertex.records_out_per_s];
    const level = backpressureLevel(vertex.backpressured_ms_per_s);
    g.setAttribute("class", `vertex bp-${level}`);
    g.dataset.backpressure = level;
    const records = g.querySelector(".records");
    records.textContent = `in ${count(rateIn)}/s  out ${count(rateOut)}/s  (${count(vertex.records_in)} in total)`;
    records.dataset.recordsIn = vertex.records_in;
    records.dataset.recordsOut = vertex.records_out;
    records.dataset.rateIn = rateIn === null ? "" : rateIn;
    const lag = most(vertex, "watermark_lag_ms");
    const sourceLag = most(vertex, "lag_ms");
    const behind = sourceLag === null ? "" : `, source ${millis(sourceLag)} behind`;
    const watermarkText = g.querySelector(".watermark");
    if (lag === null) delete watermarkText.dataset.lagMs;
    else watermarkText.dataset.lagMs = lag;
    watermarkText.textContent =
      `watermark ${watermark(vertex.watermark)}` + (lag === null ? "" : ` (lag ${millis(lag)})`) + behind;
    const time = vertex.backpressured_ms_per_s === null
      ? "busy / idle / backpressured: not measured yet"
      : `busy ${vertex.busy_ms_per_s}, idle ${vertex.idle_ms_per_s}, backpressured ${vertex.backpressured_ms_per_s} ms/s`;
    g.querySelector(".time").textContent = time;
    if (lag !== null) {
      const series = view.lag.get(vertex.id) || { name: vertex.name, points: [] };
      series.points.push([uptime, lag]);
      if (series.points.length > LAG_POINTS) series.points.shift();
      view.lag.set(vertex.id, series);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The watermark lag chart.

function drawLag() {
  const chart = $("lag");
  const [width, height] = [Math.max(900, $("graph").clientWidth || 0), 240];
  const margin = { left: 70, right: 20, top: 14, bottom: 34 };
  chart.replaceChildren();
  chart.setAttribute("width", width);
  chart.setAttribute("height", height);
  const series = [...view.lag.entries()].filter(([, s]) => s.points.length);
  if (!series.length) {
    chart.append(svg("text", { x: 20, y: 30 }, "No watermarks yet: the job has not assigned event time, or has just started."));
    return;
  }
  const all = series.flatMap(([, s]) => s.points);
  const [t0, t1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const top = Math.max(1, ...all.map((p) => p[1])) * 1.25; // room for the legend above the lines
  const x = (t) => margin.left + ((t - t0) / Math.max(1, t1 - t0)) * (width - margin.left - margin.right);
  const y = (v) => height - margin.bottom - (Math.max(0, v) / top) * (height - margin.top - margin.bottom);
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    chart.append(svg("line", { class: "grid", x1: margin.left, x2: width - margin.right, y1: y(v), y2: y(v) }));
    chart.append(svg("text", { x: margin.left - 6, y: y(v) + 4, "text-anchor": "end" }, millis(Math.round(v))));
  }
  chart.append(svg("line", { class: "axis", x1: margin.left, x2: margin.left, y1: margin.top, y2: height - margin.bottom }));
  chart.append(svg("line", { class: "axis", x1: margin.left, x2: width - margin.right, y1: height - margin.bottom, y2: height - margin.bottom }));
  chart.append(svg("text", { x: margin.left, y: height - 8 }, `uptime ${millis(t0)}`));
  chart.append(svg("text", { x: width - margin.right, y: height - 8, "text-anchor": "end" }, `uptime ${millis(t1)}`));
  series.forEach(([id, s], i) => {
    const colour = COLOURS[i % COLOURS.length];
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    const line = svg("path", { class: "lag-line", "data-chain": id, d, stroke: colour });
    line.append(svg("title", {}, s.name));
    chart.append(line);
    const label = svg("text", { x: margin.left + 10, y: margin.top + 14 * (i + 1), fill: colour }, shorten(s.name, 60));
    chart.append(label);
  });
}

// ---------------------------------------------------------------------------------------------
// Checkpoints.

function updateCheckpoints(checkpoints) {
  const counts = $("checkpoint-counts");
  counts.replaceChildren();
  const latest = checkpoints.latest;
  const facts = [
    ["completed", checkpoints.counts.completed],
    ["failed", checkpoints.counts.failed],
    ["latest duration", latest ? millis(latest.duration_ms) : "–"],
    ["latest size", latest ? bytes(latest.size_bytes) : "–"],
    ["latest alignment", latest ? millis(latest.alignment_ms) : "–"],
  ];
  for (const [name, value] of facts) counts.append(html("dt", {}, name), html("dd", {}, String(value)));
  $("last-checkpoint").textContent = latest ? `${millis(latest.duration_ms)}, ${bytes(latest.size_bytes)}` : "none yet";
  const body = document.querySelector("#checkpoints tbody");
  body.replaceChildren();
  if (!checkpoints.history.length) {
    const row = html("tr");
    row.append(html("td", { colspan: 8 }, "No checkpoints yet (is checkpointing enabled?)."));
    body.append(row);
  }
  for (const c of checkpoints.history) {
    const row = html("tr", { class: `checkpoint status-${c.status}`, "data-id": c.id, "data-status": c.status });
    const state = c.operators.map((o) => `${o.operator}: ${bytes(o.size_bytes)}`).join(", ");
    row.append(
      html("td", { class: "num" }, String(c.id)),
      html("td", {}, c.kind),
      html("td", {}, c.status),
      html("td", {}, clock(c.trigger_ms)),
      html("td", { class: "num" }, millis(c.duration_ms)),
      html("td", { class: "num" }, millis(c.alignment_ms)),
      html("td", { class: "num" }, bytes(c.size_bytes)),
      html("td", {}, c.failure ? c.failure : state),
    );
    body.append(row);
  }
}

// ---------------------------------------------------------------------------------------------
// Polling, the job picker and the tabs.

function showError(error) {
  const box = $("error");
  box.hidden = !error;
  box.textContent = error ? `Cannot read the job: ${error.message || error}` : "";
}

async function poll() {
  try {
    const [detail, checkpoints] = await Promise.all([getJson(`jobs/${view.id}`), getJson(`jobs/${view.id}/checkpoints`)]);
    $("status").textContent = detail.failure ? `${detail.status}: ${detail.failure}` : detail.status;
    $("uptime").textContent = millis(detail.uptime_ms);
    $("restarts").textContent = String(detail.restarts);
    updateVertices(detail.vertices, detail.uptime_ms);
    drawLag();
    updateCheckpoints(checkpoints);
    showError(null);
    view.polls += 1;
    document.body.dataset.polls = view.polls;
    document.title = `eddy: ${detail.name} (${detail.status})`;
  } catch (error) {
    showError(error);
  }
}

function hashParams() {
  return new URLSearchParams(location.hash.slice(1));
}

function showTab(tab) {
  for (const name of ["graph", "checkpoints"]) {
    $(`${name}-tab`).hidden = name !== tab;
    $(`tab-${name}`).classList.toggle("active", name === tab);
  }
}

async function open(id) {
  clearInterval(view.timer);
  Object.assign(view, { id, plan: null, lag: new Map() });
  view.plan = await getJson(`jobs/${id}/plan`);
  drawGraph(view.plan);
  await poll();
  view.timer = setInterval(poll, POLL_MS);
}

async function start() {
  try {
    const { jobs } = await getJson("jobs");
    if (!jobs.length) throw new Error("no job has started yet; reload once one has");
    const picker = $("job");
    for (const job of jobs) picker.append(html("option", { value: job.id }, `${job.id}: ${job.name} (${job.status})`));
    const asked = hashParams().get("job");
    const running = jobs.filter((j) => j.status === "RUNNING" || j.status === "RESTARTING");
    const id = jobs.some((j) => String(j.id) === asked) ? Number(asked) : (running.length ? running : jobs).at(-1).id;
    picker.value = id;
    picker.addEventListener("change", () => open(Number(picker.value)).catch(showError));
    showTab(hashParams().get("tab") === "checkpoints" ? "checkpoints" : "graph");
    for (const button of document.querySelectorAll("nav button")) {
      button.addEventListener("click", () => showTab(button.dataset.tab));
    }
    await open(id);
  } catch (error) {
    showError(error);
  }
}

start();
