// The status page of `inspector serve`: fetches /api/all every 5 s and
// redraws every panel from it. Plain DOM and hand-written SVG, no
// framework and nothing from the internet. Text from the lake (error
// messages, raw payloads) only ever goes in through textContent, never as
// HTML. Every number a test reads carries a stable data-testid.
"use strict";

const REFRESH_MS = 5000;
// The dead-letter chart's buckets: "per_minute" or "per_hour" of /api/all.
let bucket = "per_minute";
let last = null;
// Successful refreshes since the page loaded (shown, and read by the test
// to see that the page refreshes itself).
let refreshes = 0;

// --- DOM and formatting helpers ---------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "testid") node.setAttribute("data-testid", value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// 12345 → "12,345"; null → "–".
function num(n) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString("en-US", { maximumFractionDigits: 2 });
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return n.toFixed(i === 0 ? 0 : 1) + " " + units[i];
}

// Seconds → "8 s", "3 min 12 s", "2 h 5 min", "3 d 4 h".
function age(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
}

function freshnessClass(seconds) {
  if (seconds === null || seconds === undefined) return "muted";
  if (seconds < 120) return "ok";
  if (seconds < 900) return "warn";
  return "bad";
}

// "2026-12-01T17:05:27.085123Z" → "2026-12-01 17:05:27.085" (UTC, like DuckDB).
function when(text) {
  if (!text) return "–";
  return String(text).replace("T", " ").replace(/(\.\d{1,3})\d*Z$/, "$1").replace(/Z$/, "");
}

function pad(n) { return String(n).padStart(2, "0"); }
function clock(ms, withDate) {
  const d = new Date(ms);
  const time = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  return withDate ? pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " + time : time;
}

// A test id from names that may hold anything: keep [A-Za-z0-9_.-].
function tid(...parts) {
  return parts.map((p) => String(p).replace(/[^A-Za-z0-9_.-]/g, "_")).join("-");
}

function table(head, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, head.map(([label, cls]) => el("th", { class: cls }, label)))),
    el("tbody", {}, rows));
}

function panel(id, ...content) {
  const body = document.querySelector("#" + id + " .body");
  body.replaceChildren(...content.flat().filter((c) => c !== null && c !== undefined));
}

function failed(value) {
  return value && !Array.isArray(value) && typeof value === "object" && typeof value.error === "string";
}

function errorLine(value) {
  return el("p", { class: "bad" }, "cannot read: " + value.error);
}

// Fixed colours, handed out in the sorted order of the keys so a series
// keeps its colour from one refresh to the next.
const PALETTE = ["#2f5fb3", "#d9822b", "#3a9a5b", "#c23b4b", "#7b5cc4", "#2a9bb0",
  "#b5a22d", "#8a5a44", "#d45fa0", "#5f6b7a", "#8fb339", "#e0a3a3"];
function colours(keys) {
  const map = {};
  [...keys].sort().forEach((k, i) => { map[k] = PALETTE[i % PALETTE.length]; });
  return map;
}

// A round upper bound for an axis: 1, 2 or 5 times a power of ten.
function niceMax(value) {
  if (!(value > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 5, 10]) if (m * p >= value) return m * p;
  return 10 * p;
}

// --- charts ------------------------------------------------------------

// Stacked bars: one bar per bucket of `bucketMs` over `buckets` buckets
// ending at the newest bucket in `rows` ({bucket, key, count}).
function stackedBars(rows, { bucketMs, buckets, colour, width = 1300, height = 170, withDate = false, unit = "" }) {
  const left = 44, right = 8, top = 8, bottom = 20;
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img" });
  if (rows.length === 0) {
    chart.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "no data"));
    return chart;
  }
  const end = Math.max(...rows.map((r) => r.bucket));
  const start = end - (buckets - 1) * bucketMs;
  const stacks = new Map();
  for (const r of rows) {
    if (r.bucket < start) continue;
    if (!stacks.has(r.bucket)) stacks.set(r.bucket, []);
    stacks.get(r.bucket).push(r);
  }
  const totals = [...stacks.values()].map((s) => s.reduce((a, r) => a + r.count, 0));
  const max = niceMax(Math.max(0, ...totals));
  const plotW = width - left - right, plotH = height - top - bottom;
  const slot = plotW / buckets;
  const y = (v) => top + plotH - (v / max) * plotH;
  for (const f of [0, 0.5, 1]) {
    chart.append(svg("line", { class: f === 0 ? "axis" : "grid", x1: left, x2: width - right, y1: y(max * f), y2: y(max * f) }));
    chart.append(svg("text", { x: left - 4, y: y(max * f) + 3, "text-anchor": "end" }, num(max * f) + unit));
  }
  for (const [b, stack] of stacks) {
    const x = left + ((b - start) / bucketMs) * slot;
    let base = 0;
    for (const r of [...stack].sort((p, q) => String(p.key).localeCompare(String(q.key)))) {
      const rect = svg("rect", {
        x: x + slot * 0.1, width: Math.max(1, slot * 0.8),
        y: y(base + r.count), height: Math.max(0.5, y(base) - y(base + r.count)),
        fill: colour[r.key] || "#999",
      }, svg("title", {}, `${clock(b, withDate)}  ${r.key}: ${num(r.count)}`));
      chart.append(rect);
      base += r.count;
    }
  }
  const every = Math.max(1, Math.round(buckets / 8));
  for (let i = 0; i < buckets; i += every) {
    chart.append(svg("text", { x: left + i * slot + slot / 2, y: height - 6, "text-anchor": "middle" },
      clock(start + i * bucketMs, withDate)));
  }
  return chart;
}

// A line with dots over minutes: points {x: ms, y: value}.
function lineChart(points, { minutes, width = 640, height = 170, format }) {
  const left = 52, right = 8, top = 8, bottom = 20;
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img" });
  if (points.length === 0) {
    chart.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "no data"));
    return chart;
  }
  const end = Math.max(...points.map((p) => p.x));
  const start = end - (minutes - 1) * 60000;
  const max = niceMax(Math.max(...points.map((p) => p.y)));
  const plotW = width - left - right, plotH = height - top - bottom;
  const x = (v) => left + ((v - start) / Math.max(1, end - start)) * plotW;
  const y = (v) => top + plotH - (v / max) * plotH;
  for (const f of [0, 0.5, 1]) {
    chart.append(svg("line", { class: f === 0 ? "axis" : "grid", x1: left, x2: width - right, y1: y(max * f), y2: y(max * f) }));
    chart.append(svg("text", { x: left - 4, y: y(max * f) + 3, "text-anchor": "end" }, format(max * f)));
  }
  const sorted = [...points].sort((a, b) => a.x - b.x);
  chart.append(svg("polyline", {
    points: sorted.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(" "),
    fill: "none", stroke: "#c23b4b", "stroke-width": 1.5,
  }));
  for (const p of sorted) {
    chart.append(svg("circle", { cx: x(p.x), cy: y(p.y), r: 2.2, fill: "#c23b4b" },
      svg("title", {}, `${clock(p.x)}  ${format(p.y)}`)));
  }
  const every = Math.max(1, Math.round(minutes / 6));
  for (let i = 0; i < minutes; i += every) {
    const t = start + i * 60000;
    chart.append(svg("text", { x: x(t), y: height - 6, "text-anchor": "middle" }, clock(t)));
  }
  return chart;
}

function legend(entries, colour, testid) {
  return el("div", { class: "legend" }, entries.map(([key, count, note]) =>
    el("span", { title: note || null }, el("i", { style: `background:${colour[key]}` }), key + " ",
      el("b", { testid: testid(key) }, num(count)))));
}

// --- panels --------------------------------------------------------------

function renderTables(tables) {
  if (failed(tables)) return panel("tables", errorLine(tables));
  const names = Object.keys(tables);
  if (names.length === 0) return panel("tables", el("p", { class: "muted" }, "no tables yet"));
  const rows = names.map((t) => {
    const r = tables[t];
    const all = (r.bronze_rows || 0) + (r.dead_letters || 0);
    const share = all > 0 ? ((100 * (r.dead_letters || 0)) / all).toFixed(2) + " %" : "–";
    return el("tr", {},
      el("td", { class: "mono" }, t),
      el("td", { class: "n", testid: tid("bronze-rows", t) }, num(r.bronze_rows)),
      el("td", { class: "n", testid: tid("dead-letters", t) }, num(r.dead_letters)),
      el("td", { class: "n", testid: tid("dead-letter-share", t) }, share),
      el("td", { class: "n " + freshnessClass(r.freshness_seconds), testid: tid("freshness", t),
        title: r.freshness_basis ? "now − max(" + r.freshness_basis + ") of bronze" : null }, age(r.freshness_seconds)),
      el("td", { class: "mono nowrap" }, when(r.newest_event)),
      el("td", { class: "n", testid: tid("bronze-version", t) }, num(r.bronze_version)),
      el("td", { class: "n", testid: tid("dead-letters-version", t) }, num(r.dead_letters_version)),
      el("td", { class: "n", testid: tid("sources", t) }, num(r.checkpoints)),
      el("td", { class: "n " + (r.open_intents > 0 ? "warn" : ""), testid: tid("open-intents", t) }, num(r.open_intents)),
      el("td", { class: "n", testid: tid("micro-batches", t) }, num(r.micro_batches)),
      el("td", { class: "mono nowrap" }, when(r.checkpoint_updated_at)));
  });
  panel("tables", table([["table"], ["bronze rows", "n"], ["dead letters", "n"], ["dead-letter share", "n"],
    ["freshness", "n"], ["newest event"], ["bronze version", "n"], ["dead_letters version", "n"],
    ["sources", "n"], ["open intents", "n"], ["micro-batches", "n"], ["checkpoint updated"]], rows));
}

function renderLag(lag) {
  if (!lag.available) {
    return panel("lag",
      el("p", { class: "na", testid: "kafka-lag-status" }, "n/a"),
      el("p", { class: "muted", testid: "kafka-lag-reason" }, lag.reason || "unreachable"),
      el("p", { class: "muted" }, "brokers ", el("span", { class: "mono" }, lag.brokers)));
  }
  const rows = lag.partitions.map((p) => el("tr", {},
    el("td", { class: "mono" }, p.topic),
    el("td", { class: "n" }, p.partition),
    el("td", { class: "n" }, num(p.next_offset)),
    el("td", { class: "n" }, num(p.high_watermark)),
    el("td", { class: "n " + (p.lag > 0 ? "warn" : "ok"), testid: tid("kafka-lag", p.topic, p.partition) }, num(p.lag))));
  panel("lag",
    el("div", { class: "kpis" },
      el("div", {}, el("span", {}, "status"), el("b", { class: "ok", testid: "kafka-lag-status" }, "ok")),
      el("div", {}, el("span", {}, "total lag (messages)"), el("b", { class: "big", testid: "kafka-lag-total" }, num(lag.total))),
      el("div", {}, el("span", {}, "brokers"), el("span", { class: "mono" }, lag.brokers))),
    table([["topic"], ["partition", "n"], ["next offset", "n"], ["high watermark", "n"], ["lag", "n"]], rows));
}

function renderMetrics(metrics) {
  if (!metrics || metrics.length === 0) {
    return panel("metrics", el("p", { class: "muted", testid: "metrics-none" },
      "No endpoints: start with --metrics-url http://consumer:9464/metrics (repeatable) or METRICS_URLS=url,url."));
  }
  const rows = metrics.map((m, i) => el("tr", {},
    el("td", { class: "mono url", testid: tid("metrics-url", i), title: m.url }, m.url),
    el("td", { class: m.up ? "ok" : "bad", testid: tid("metrics-up", i), title: m.error || null }, m.up ? "up" : "down"),
    el("td", { class: "n", testid: tid("metrics-records-bronze", i) }, m.up ? num(m.records.bronze ?? null) : "–"),
    el("td", { class: "n", testid: tid("metrics-records-dead-letter", i) }, m.up ? num(m.records.dead_letter ?? null) : "–"),
    el("td", { class: "n", testid: tid("metrics-kafka-lag", i) }, m.up ? num(m.kafka_lag_messages) : "–"),
    el("td", { class: "n", testid: tid("metrics-freshness", i) }, m.up ? age(m.freshness_seconds) : "–"),
    el("td", { class: "n", testid: tid("metrics-rss", i) }, m.up ? bytes(m.resident_memory_bytes) : "–"),
    el("td", { class: "n muted" }, m.elapsed_ms + " ms")));
  const errors = metrics.filter((m) => !m.up).map((m) =>
    el("p", { class: "bad mono" }, m.url + ": " + m.error));
  panel("metrics", table([["endpoint"], ["state"], ["bronze", "n"], ["dead", "n"],
    ["lag", "n"], ["fresh", "n"], ["RSS", "n"], ["took", "n"]], rows), errors);
}

function renderDeadLetters(dead) {
  if (failed(dead)) return panel("dead-letters", errorLine(dead));
  const names = Object.keys(dead);
  if (names.length === 0) return panel("dead-letters", el("p", { class: "muted" }, "no dead-letter tables yet"));
  const content = [];
  for (const t of names) {
    const d = dead[t];
    const total = d.by_code.reduce((a, r) => a + r.count, 0);
    const colour = colours(d.by_code.map((r) => r.error_code));
    const series = d[bucket];
    content.push(el("h3", {}, "dead_letters." + t + " ",
      el("small", {}, num(total) + " in all, " + d.by_code.length + " codes; the chart: the newest "
        + series.buckets + (bucket === "per_minute" ? " minutes" : " hours"))));
    content.push(legend(d.by_code.map((r) => [r.error_code, r.count, r.error_kind]), colour,
      (code) => tid("dead-letters-code", t, code)));
    content.push(stackedBars(series.rows.map((r) => ({ bucket: r.bucket, key: r.error_code, count: r.count })),
      { bucketMs: series.bucket_ms, buckets: series.buckets, colour, withDate: bucket === "per_hour" }));
    const sample = d.newest.map((r, i) => {
      // A raw object's key is long and its folder is the same for a whole
      // run: show the file name, the whole key on hover.
      const source = r.source_topic !== null
        ? `${r.source_topic}[${r.source_partition}]@${r.source_offset}`
        : String(r.source_key || "").split("/").pop();
      return el("tr", {},
        el("td", { class: "mono nowrap" }, when(r.ingested_at)),
        el("td", { class: "mono", testid: tid("dead-letter-sample-code", t, i) }, r.error_code),
        el("td", {}, r.error_kind),
        el("td", { class: "mono nowrap", title: [r.source_key, r.batch_id && "batch " + r.batch_id].filter(Boolean).join("\n") || null },
          source + (r.record_index !== null ? " #" + r.record_index : "")),
        el("td", { class: "msg", testid: tid("dead-letter-sample-message", t, i) }, r.error_message),
        el("td", { class: "raw mono", title: (r.raw_bytes ?? "?") + " bytes" }, r.raw_preview ?? "(not UTF-8)"));
    });
    content.push(el("h3", {}, "newest " + sample.length + " ", el("small", {}, "by ingested_at")));
    content.push(table([["ingested_at"], ["error_code"], ["kind"], ["source"], ["error_message"], ["raw payload"]], sample));
  }
  panel("dead-letters", content);
}

function renderGold(gold) {
  if (failed(gold)) {
    panel("gold-events", errorLine(gold));
    return panel("gold-dead", errorLine(gold));
  }
  const epm = gold.events_per_minute;
  if (!epm) {
    panel("gold-events", el("p", { class: "muted", testid: "gold-events-missing" },
      "gold.events_per_minute does not exist yet: the refiner writes it (refiner --models models)."));
  } else {
    const types = [...new Set(epm.series.map((r) => r.event_type))];
    const colour = colours(types);
    const byType = types.map((ty) => [ty, epm.series.filter((r) => r.event_type === ty).reduce((a, r) => a + r.events, 0)]);
    panel("gold-events",
      el("div", { class: "kpis" },
        el("div", {}, el("span", {}, "events, whole table"), el("b", { class: "big", testid: "gold-events-total" }, num(epm.total_events))),
        el("div", {}, el("span", {}, "rows"), el("b", { class: "big", testid: "gold-events-per-minute-rows" }, num(epm.rows)))),
      legend(byType, colour, (ty) => tid("gold-events-type", ty)),
      stackedBars(epm.series.map((r) => ({ bucket: r.minute, key: r.event_type, count: r.events })),
        { bucketMs: 60000, buckets: gold.window_minutes, colour, width: 640 }));
  }
  const dlr = gold.dead_letter_rate;
  if (!dlr) {
    panel("gold-dead", el("p", { class: "muted", testid: "gold-dead-letter-rate-missing" },
      "gold.dead_letter_rate does not exist yet: the refiner writes it (refiner --models models)."));
  } else {
    const points = dlr.series.map((r) => ({ x: r.minute, y: r.share * 100 }));
    const newest = dlr.series.length ? dlr.series[dlr.series.length - 1] : null;
    panel("gold-dead",
      el("div", { class: "kpis" },
        el("div", {}, el("span", {}, "dead letters, whole table"), el("b", { class: "big", testid: "gold-dead-letters-total" }, num(dlr.total_dead_letters))),
        el("div", {}, el("span", {}, "rows"), el("b", { class: "big", testid: "gold-dead-letter-rate-rows" }, num(dlr.rows))),
        el("div", {}, el("span", {}, "newest minute"),
          el("b", { class: "big", testid: "gold-dead-letter-share-newest" }, newest ? (newest.share * 100).toFixed(2) + " %" : "–"))),
      lineChart(points, { minutes: gold.window_minutes, format: (v) => v.toFixed(v < 1 ? 2 : 1) + " %" }));
  }
}

function renderBatches(batches) {
  if (failed(batches)) return panel("batches", errorLine(batches));
  if (batches.length === 0) return panel("batches", el("p", { class: "muted" }, "no commits yet"));
  const rows = batches.map((b, i) => el("tr", {},
    el("td", { class: "mono", testid: tid("batch-table", i) }, b.table),
    el("td", { class: "n", testid: tid("batch-version", i) }, num(b.version)),
    el("td", { class: "mono nowrap" }, when(b.time)),
    el("td", {}, b.operation),
    el("td", { class: "n", testid: tid("batch-rows", i) }, num(b.rows_added)),
    el("td", { class: "n", testid: tid("batch-files", i) }, num(b.files_added)),
    el("td", { class: "n" }, num(b.files_removed)),
    el("td", { class: "mono" }, b.transactions.map((t) => t.app_id + " → " + t.version).join(", ") || "–")));
  panel("batches", table([["table"], ["version", "n"], ["committed"], ["operation"], ["rows", "n"],
    ["files +", "n"], ["files −", "n"], ["txn (app id → version)"]], rows));
}

function renderModels(models) {
  const views = Object.keys(models);
  if (views.length === 0) {
    return panel("models", el("p", { class: "muted" }, "no silver or gold tables yet (refiner --models models)"));
  }
  const rows = views.map((v) => {
    const m = models[v];
    const r = m.refiner;
    const lags = r ? Object.values(r.inputs || {}).map((i) => i.lag).filter((l) => l !== null) : [];
    const lag = lags.length ? Math.max(...lags) : null;
    let state = "–", cls = "muted";
    if (r && r.error) { state = "error: " + r.error; cls = "bad"; }
    else if (r && r.waiting) { state = "waiting: " + r.waiting; cls = "warn"; }
    else if (r) { state = "ok"; cls = "ok"; }
    return el("tr", {},
      el("td", { class: "mono" }, v),
      el("td", { class: "n", testid: tid("model-rows", v) }, num(m.rows)),
      el("td", { class: "n", testid: tid("model-version", v) }, num(m.version)),
      el("td", { class: "n " + (lag > 0 ? "warn" : ""), testid: tid("model-input-lag", v),
        title: "input versions committed but not yet in the table" }, num(lag)),
      el("td", { class: "n" }, r ? num(r.late_rows_since_start) : "–"),
      el("td", { class: "mono nowrap" }, r ? when(r.updated_at) : "–"),
      el("td", { class: cls + " state", testid: tid("model-state", v), title: state }, state));
  });
  panel("models", table([["table"], ["rows", "n"], ["version", "n"], ["input lag", "n"], ["late rows", "n"],
    ["refiner updated"], ["state"]], rows));
}

function render(all) {
  document.querySelector("[data-testid=lake]").textContent = all.lake;
  document.querySelector("[data-testid=last-refresh]").textContent = when(all.generated_at);
  document.querySelector("[data-testid=last-refresh]").setAttribute("datetime", all.generated_at);
  document.querySelector("[data-testid=took]").textContent = "took " + all.took_ms + " ms";
  // A panel that cannot be drawn says so; the others still draw.
  const panels = [
    ["tables", () => renderTables(all.tables)],
    ["lag", () => renderLag(all.kafka_lag)],
    ["metrics", () => renderMetrics(all.metrics)],
    ["dead-letters", () => renderDeadLetters(all.dead_letters)],
    ["gold-events", () => renderGold(all.gold)],
    ["batches", () => renderBatches(all.batches)],
    ["models", () => renderModels(all.models)],
  ];
  for (const [id, draw] of panels) {
    try {
      draw();
    } catch (e) {
      panel(id, el("p", { class: "bad" }, "cannot draw this panel: " + e.message));
    }
  }
}

function setState(state, message) {
  const pill = document.querySelector("[data-testid=page-state]");
  pill.textContent = state;
  pill.className = "pill " + state;
  const error = document.querySelector("[data-testid=page-error]");
  error.hidden = !message;
  error.textContent = message || "";
}

async function refresh() {
  try {
    const response = await fetch("/api/all", { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) {
      // The lake is unreadable; the processes may say why.
      if (body.metrics) renderMetrics(body.metrics);
      throw new Error(body.error || "HTTP " + response.status);
    }
    last = body;
    refreshes += 1;
    render(body);
    document.querySelector("[data-testid=refresh-count]").textContent = refreshes;
    setState("ok");
  } catch (e) {
    const shown = last ? " (showing the numbers of " + when(last.generated_at) + ")" : "";
    setState("error", "cannot refresh: " + e.message + shown);
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

for (const button of document.querySelectorAll(".toggle button")) {
  button.addEventListener("click", () => {
    bucket = button.dataset.bucket;
    for (const b of document.querySelectorAll(".toggle button")) b.classList.toggle("on", b === button);
    if (last) renderDeadLetters(last.dead_letters);
  });
}

refresh();
