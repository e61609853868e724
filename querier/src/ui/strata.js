// Strata's web UI: the graph page Prometheus and Thanos users know, plus the stores, rules,
// alerts, flags and status pages. Plain JavaScript, no dependencies, no build step.
//
// Every link and API call is relative to the document's <base href> (the querier's external
// or route prefix), so the UI works behind a proxy that serves it under a sub-path. The graph
// page keeps its whole state in the URL in Prometheus's format (g0.expr=...&g0.tab=0&
// g0.range_input=1h&g0.end_input=...&g0.step_input=...) with Thanos's additions
// (g0.deduplicate, g0.partial_response, g0.max_source_resolution), so links from Prometheus
// and Thanos open the same view here.
"use strict";

(() => {
  const settings = JSON.parse(document.getElementById("settings").textContent);
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#7b4173"];
  const AGGREGATIONS = ["sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
    "count_values", "bottomk", "topk", "quantile"];
  const KEYWORDS = ["by", "without", "on", "ignoring", "group_left", "group_right", "offset",
    "bool", "and", "or", "unless", "atan2"];
  const RANGE_STEPS = [1, 10, 60, 300, 900, 1800, 3600, 7200, 21600, 43200, 86400, 172800,
    604800, 1209600, 2419200, 4838400, 31536000, 63072000].map(s => s * 1000);
  const MAX_TABLE_ROWS = 10000;
  const MAX_COMPLETIONS = 60;

  // ---------------------------------------------------------------------------------------
  // Small helpers.

  /** An element with attributes (`class`, `text`, `on<event>` handlers, others) and children. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttributes(node, attrs);
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    setAttributes(node, attrs);
    return node;
  }

  function setAttributes(node, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
  }

  /** Calls the HTTP API; resolves to the JSON envelope, also for API errors. */
  async function callApi(path, params, options = {}) {
    const body = new URLSearchParams();
    for (const [key, value] of Object.entries(params || {})) {
      for (const item of Array.isArray(value) ? value : [value]) body.append(key, item);
    }
    const init = { cache: "no-store", credentials: "same-origin", signal: options.signal };
    let url = path;
    if (options.post) {
      init.method = "POST";
      init.body = body;
    } else if ([...body.keys()].length > 0) {
      url += "?" + body.toString();
    }
    const response = await fetch(url, init);
    const text = await response.text();
    try {
      return JSON.parse(text);
    } catch (_) {
      return { status: "error", errorType: "http " + response.status, error: text.slice(0, 500) };
    }
  }

  function metricName(metric) {
    if (!metric) return "scalar";
    const labels = Object.keys(metric).filter(k => k !== "__name__").sort()
      .map(k => k + "=" + JSON.stringify(metric[k]));
    return (metric.__name__ || "") + "{" + labels.join(", ") + "}";
  }

  /** A metric as a name in bold and its labels, for tables and the legend. */
  function metricNode(metric) {
    const node = el("span", { class: "metric" });
    if (metric.__name__) node.append(el("b", { text: metric.__name__ }));
    node.append("{");
    const names = Object.keys(metric).filter(k => k !== "__name__").sort();
    names.forEach((name, i) => {
      node.append(el("span", { class: "label-name", text: name }), "=",
        el("span", { class: "label-value", text: JSON.stringify(metric[name]) }));
      if (i < names.length - 1) node.append(", ");
    });
    node.append("}");
    return node;
  }

  // ---------------------------------------------------------------------------------------
  // Durations and times (UTC unless "Use local time" is checked; URLs always hold UTC).

  const DURATION_UNITS = { y: 31536000000, w: 604800000, d: 86400000, h: 3600000, m: 60000, s: 1000, ms: 1 };

  /** Prometheus's duration syntax (`1h30m`, `90s`, `2d`) in ms, or null. */
  function parseDuration(text) {
    const trimmed = String(text).trim();
    if (!/^(\d+(ms|[ywdhms]))+$/.test(trimmed)) return null;
    let total = 0;
    for (const [, number, unit] of trimmed.matchAll(/(\d+)(ms|[ywdhms])/g)) total += Number(number) * DURATION_UNITS[unit];
    return total > 0 ? total : null;
  }

  function formatDuration(ms) {
    if (ms <= 0) return "0s";
    let rest = ms;
    let out = "";
    for (const [unit, size] of Object.entries(DURATION_UNITS)) {
      const count = Math.floor(rest / size);
      if (count > 0) {
        out += count + unit;
        rest -= count * size;
      }
    }
    return out;
  }

  let useLocalTime = localStorage.getItem("strata.useLocalTime") === "1";

  function pad(n, width = 2) { return String(n).padStart(width, "0"); }

  /** `YYYY-MM-DD HH:mm:ss` in UTC (or local time when asked for and `local`). */
  function formatTime(ms, local = useLocalTime) {
    const d = new Date(ms);
    if (isNaN(d.getTime())) return String(ms);
    const parts = local
      ? [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()]
      : [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()];
    return `${parts[0]}-${pad(parts[1])}-${pad(parts[2])} ${pad(parts[3])}:${pad(parts[4])}:${pad(parts[5])}`;
  }

  /**
   * A time typed or linked: `YYYY-MM-DD[ HH:mm[:ss[.SSS]]]` (UTC, or local when `local`),
   * RFC 3339 with a zone, or Unix seconds. Null when unreadable.
   */
  function parseTime(text, local = false) {
    const trimmed = String(text).trim();
    if (trimmed === "") return null;
    if (/^\d+(\.\d+)?$/.test(trimmed) && trimmed.length >= 9) return Math.round(Number(trimmed) * 1000);
    const match = trimmed.match(/^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i);
    if (!match) return null;
    const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "0", zone] = match;
    const ms = Number((frac + "00").slice(0, 3));
    let time;
    if (zone) {
      time = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, ms);
      if (zone.toUpperCase() !== "Z") {
        const sign = zone[0] === "-" ? -1 : 1;
        const digits = zone.slice(1).replace(":", "");
        time -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60000;
      }
    } else if (local) {
      time = new Date(+y, +mo - 1, +d, +h, +mi, +s, ms).getTime();
    } else {
      time = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, ms);
    }
    return isNaN(time) ? null : time;
  }

  /** How long ago `ms` was, e.g. `3m 4s ago`. */
  function ago(ms) {
    const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (seconds < 60) return seconds + "s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m " + (seconds % 60) + "s ago";
    return Math.floor(seconds / 3600) + "h " + Math.floor((seconds % 3600) / 60) + "m ago";
  }

  /** A number with an SI suffix for axis ticks (`1.5k`, `20M`, `3m`). */
  function formatSI(value) {
    if (value === 0) return "0";
    const abs = Math.abs(value);
    const units = [[1e24, "Y"], [1e21, "Z"], [1e18, "E"], [1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (const [size, suffix] of units) if (abs >= size) return trim(value / size) + suffix;
    if (abs >= 1) return trim(value);
    const small = [[1e-3, "m"], [1e-6, "µ"], [1e-9, "n"], [1e-12, "p"], [1e-15, "f"], [1e-18, "a"]];
    for (const [size, suffix] of small) if (abs >= size) return trim(value / size) + suffix;
    return value.toExponential(2);
  }

  function trim(value) { return String(Number(value.toPrecision(4))); }

  // ---------------------------------------------------------------------------------------
  // URL state: Prometheus's `g<N>.<option>` parameters plus Thanos's.

  function defaultOptions() {
    return {
      expr: "", tab: "table", stacked: false, range: 3600000, endTime: null, resolution: null,
      maxSourceResolution: settings.maxSourceResolution || "0s",
      dedup: true, partialResponse: settings.partialResponse !== false,
    };
  }

  /** The panels of a `?g0.expr=...` query string (Prometheus's and Thanos's links). */
  function parsePanels(search) {
    const byIndex = new Map();
    for (const [key, value] of new URLSearchParams(search)) {
      const match = key.match(/^g(\d+)\.(.+)$/);
      if (!match) continue;
      const index = Number(match[1]);
      if (!byIndex.has(index)) byIndex.set(index, {});
      byIndex.get(index)[match[2]] = value;
    }
    const panels = [];
    for (const index of [...byIndex.keys()].sort((a, b) => a - b)) {
      const raw = byIndex.get(index);
      if (raw.expr === undefined) continue;
      const options = defaultOptions();
      options.expr = raw.expr;
      if (raw.tab !== undefined) options.tab = raw.tab === "0" || raw.tab === "graph" ? "graph" : "table";
      if (raw.stacked !== undefined) options.stacked = raw.stacked === "1";
      if (raw.display_mode !== undefined) options.stacked = raw.display_mode === "stacked";
      const range = raw.range_input === undefined ? null : parseDuration(raw.range_input);
      if (range !== null) options.range = range;
      for (const key of ["end_input", "moment_input"]) {
        const time = raw[key] === undefined ? null : parseTime(raw[key]);
        if (time !== null) options.endTime = time;
      }
      const step = raw.step_input === undefined ? NaN : parseFloat(raw.step_input);
      if (step > 0) options.resolution = step;
      if (raw.max_source_resolution !== undefined &&
        (raw.max_source_resolution === "auto" || parseDuration(raw.max_source_resolution) !== null || raw.max_source_resolution === "0s")) {
        options.maxSourceResolution = raw.max_source_resolution;
      }
      if (raw.deduplicate !== undefined) options.dedup = raw.deduplicate === "1";
      if (raw.partial_response !== undefined) options.partialResponse = raw.partial_response === "1";
      panels.push(options);
    }
    return panels;
  }

  /** The query string of `panels`, in the order Thanos writes it. */
  function encodePanels(panels) {
    const parts = [];
    panels.forEach((options, index) => {
      const add = (name, value) => parts.push(`g${index}.${name}=${encodeURIComponent(value)}`);
      add("expr", options.expr);
      add("tab", options.tab === "graph" ? 0 : 1);
      add("stacked", options.stacked ? 1 : 0);
      add("range_input", formatDuration(options.range));
      add("max_source_resolution", options.maxSourceResolution);
      add("deduplicate", options.dedup ? 1 : 0);
      add("partial_response", options.partialResponse ? 1 : 0);
      if (options.endTime !== null) {
        add("end_input", formatTime(options.endTime, false));
        add("moment_input", formatTime(options.endTime, false));
      }
      if (options.resolution !== null) add("step_input", options.resolution);
    });
    return "?" + parts.join("&");
  }

  // ---------------------------------------------------------------------------------------
  // Autocomplete: metric names, label names and values from the API, functions, keywords.

  const completionCache = new Map();
  function cached(key, load) {
    if (!completionCache.has(key)) {
      completionCache.set(key, load().catch(() => {
        completionCache.delete(key);
        return [];
      }));
    }
    return completionCache.get(key);
  }
  async function loadList(path, params) {
    const body = await callApi(path, params);
    return body.status === "success" && Array.isArray(body.data) ? body.data : [];
  }
  const metricNames = () => cached("metrics", () => loadList("api/v1/label/__name__/values"));
  const selectorFor = metric => metric ? [`{__name__=${JSON.stringify(metric)}}`] : [];
  const labelNames = metric => cached("labels:" + metric, () =>
    loadList("api/v1/labels", metric ? { "match[]": selectorFor(metric) } : {}));
  const labelValues = (name, metric) => cached(`values:${name}:${metric}`, () =>
    loadList(`api/v1/label/${encodeURIComponent(name)}/values`, metric ? { "match[]": selectorFor(metric) } : {}));

  /**
   * What can be completed at the end of `text` (the expression up to the cursor): the kind of
   * token, the partial word typed, and what it belongs to (metric, label).
   */
  function completionContext(text) {
    let inString = null;
    const open = []; // stack of {char, at}
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        if (c === "\\") i++;
        else if (c === inString) inString = null;
        continue;
      }
      if (c === '"' || c === "'" || c === "`") inString = c;
      else if (c === "#") { // a comment runs to the end of the line
        const end = text.indexOf("\n", i);
        if (end < 0) return null;
        i = end;
      } else if ("({[".includes(c)) open.push({ char: c, at: i });
      else if (")}]".includes(c)) open.pop();
    }
    const innermost = open[open.length - 1];
    if (innermost && innermost.char === "{") {
      const before = text.slice(0, innermost.at);
      const metric = (before.match(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*$/) || [])[1] || "";
      const inside = text.slice(innermost.at + 1);
      if (inString) {
        const m = inside.match(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*["'`]((?:[^"'`\\]|\\.)*)$/);
        if (m) return { kind: "value", label: m[1], metric, word: m[3], quote: text[text.length - m[3].length - 1] };
        return null;
      }
      const operand = inside.match(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*$/);
      if (operand) return { kind: "value", label: operand[1], metric, word: "", quote: null };
      const word = (inside.match(/([a-zA-Z_][a-zA-Z0-9_]*)$/) || [, ""])[1];
      if (/(^|[,{\s])\s*[a-zA-Z_]*$/.test(inside)) return { kind: "label", metric, word };
      return null;
    }
    if (inString) return null;
    if (innermost && innermost.char === "[") {
      const word = (text.slice(innermost.at + 1).match(/[0-9a-z:]*$/) || [""])[0];
      return { kind: "duration", word };
    }
    if (innermost && innermost.char === "(" &&
      /\b(by|without|on|ignoring|group_left|group_right)\s*$/.test(text.slice(0, innermost.at))) {
      const word = (text.slice(innermost.at + 1).match(/([a-zA-Z_][a-zA-Z0-9_]*)$/) || [, ""])[1];
      const metric = (text.match(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\[[^\]]*\])?\s*\)?\s*$/) || [])[1] || "";
      return { kind: "label", metric: "", word, grouping: metric };
    }
    const word = (text.match(/([a-zA-Z_:][a-zA-Z0-9_:]*)$/) || [, ""])[1];
    if (word === "" || /[0-9.]$/.test(text.slice(0, text.length - word.length))) return null;
    return { kind: "name", word };
  }

  function rank(candidates, word) {
    const lower = word.toLowerCase();
    const starts = [];
    const contains = [];
    for (const candidate of candidates) {
      const text = candidate.text.toLowerCase();
      if (text === lower) continue;
      if (text.startsWith(lower)) starts.push(candidate);
      else if (lower.length >= 2 && text.includes(lower)) contains.push(candidate);
      if (starts.length >= MAX_COMPLETIONS) break;
    }
    return starts.concat(contains).slice(0, MAX_COMPLETIONS);
  }

  async function completions(context) {
    const items = [];
    switch (context.kind) {
      case "name": {
        for (const name of await metricNames()) items.push({ text: name, kind: "metric" });
        for (const name of AGGREGATIONS) items.push({ text: name, kind: "aggregation", suffix: "(" });
        for (const name of settings.functions || []) items.push({ text: name, kind: "function", suffix: "(" });
        for (const name of KEYWORDS) items.push({ text: name, kind: "keyword" });
        break;
      }
      case "label":
        for (const name of await labelNames(context.metric)) {
          if (name !== "__name__" || !context.metric) items.push({ text: name, kind: "label" });
        }
        break;
      case "value":
        for (const value of await labelValues(context.label, context.metric)) {
          items.push({ text: value, kind: "value" });
        }
        break;
      case "duration":
        for (const text of ["1m", "5m", "10m", "30m", "1h", "6h", "1d", "1w"]) items.push({ text, kind: "duration" });
        break;
    }
    return rank(items, context.word);
  }

  /** The completion box of one expression textarea. */
  class Autocomplete {
    constructor(textarea, onAccept) {
      this.textarea = textarea;
      this.onAccept = onAccept;
      this.list = el("ul", { class: "autocomplete", role: "listbox", hidden: true });
      this.items = [];
      this.selected = -1;
      this.generation = 0;
      textarea.addEventListener("input", () => this.update());
      textarea.addEventListener("blur", () => setTimeout(() => this.close(), 150));
      textarea.addEventListener("keydown", event => this.keydown(event));
    }

    isOpen() { return !this.list.hidden && this.items.length > 0; }

    async update() {
      const generation = ++this.generation;
      const text = this.textarea.value.slice(0, this.textarea.selectionStart);
      const context = completionContext(text);
      if (!context) return this.close();
      const items = await completions(context);
      if (generation !== this.generation) return; // typed on meanwhile
      this.context = context;
      this.show(items);
    }

    show(items) {
      this.items = items;
      this.selected = items.length > 0 ? 0 : -1;
      this.list.replaceChildren(...items.map((item, index) => el("li", {
        role: "option", "data-kind": item.kind,
        onmousedown: event => { event.preventDefault(); this.accept(index); },
      }, el("span", { class: "text", text: item.text }), el("span", { class: "kind", text: item.kind }))));
      this.list.hidden = items.length === 0;
      this.highlight();
    }

    highlight() {
      [...this.list.children].forEach((child, index) => child.setAttribute("aria-selected", index === this.selected));
      const current = this.list.children[this.selected];
      if (current) current.scrollIntoView({ block: "nearest" });
    }

    close() {
      this.generation++;
      this.list.hidden = true;
      this.items = [];
    }

    keydown(event) {
      if (!this.isOpen()) return;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        const delta = event.key === "ArrowDown" ? 1 : -1;
        this.selected = (this.selected + delta + this.items.length) % this.items.length;
        this.highlight();
        event.preventDefault();
      } else if (event.key === "Tab" || (event.key === "Enter" && !event.shiftKey)) {
        this.accept(this.selected);
        event.preventDefault();
        event.stopImmediatePropagation();
      } else if (event.key === "Escape") {
        this.close();
        event.preventDefault();
      }
    }

    accept(index) {
      const item = this.items[index];
      const context = this.context;
      if (!item || !context) return;
      const textarea = this.textarea;
      const cursor = textarea.selectionStart;
      const before = textarea.value.slice(0, cursor - context.word.length);
      let after = textarea.value.slice(cursor);
      let insert = item.text;
      if (context.kind === "value") {
        const escaped = JSON.stringify(item.text).slice(1, -1);
        if (context.quote) {
          insert = escaped;
          if (after.startsWith(context.quote)) after = after.slice(1);
          insert += context.quote;
        } else {
          insert = '"' + escaped + '"';
        }
      } else if (item.suffix && !after.startsWith(item.suffix)) {
        insert += item.suffix;
      }
      textarea.value = before + insert + after;
      const position = before.length + insert.length;
      textarea.setSelectionRange(position, position);
      this.close();
      this.onAccept();
    }
  }

  // ---------------------------------------------------------------------------------------
  // The graph: an SVG line (or stacked area) chart with axes, hover and legend toggling.

  /** Round tick values covering [lo, hi]. */
  function niceTicks(lo, hi, count) {
    const span = hi - lo;
    const raw = span / count;
    const magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map(f => f * magnitude).find(s => s >= raw) || raw;
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return ticks;
  }

  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
    43200, 86400, 172800, 604800, 1209600, 2592000, 7776000, 31536000].map(s => s * 1000);

  function timeTicks(start, end, count) {
    const step = TIME_STEPS.find(s => (end - start) / s <= count) || TIME_STEPS[TIME_STEPS.length - 1];
    const offset = useLocalTime ? new Date(start).getTimezoneOffset() * 60000 : 0;
    const ticks = [];
    for (let t = Math.ceil((start - offset) / step) * step + offset; t <= end; t += step) ticks.push(t);
    return { ticks, step };
  }

  function timeTickLabel(t, step) {
    const text = formatTime(t);
    if (step >= 86400000) return text.slice(5, 10);
    if (step >= 60000) return text.slice(11, 16);
    return text.slice(11, 19);
  }

  class Graph {
    constructor(container, legend) {
      this.container = container;
      this.legend = legend;
      this.tooltip = el("div", { class: "graph-tooltip", hidden: true });
      this.series = [];
      container.append(this.tooltip);
    }

    /** Shows the matrix `result` of a query over [start, end] with `step` (all in ms). */
    set(result, start, end, step, stacked) {
      this.series = result.map((s, index) => ({
        metric: s.metric,
        name: metricName(s.metric),
        color: COLORS[index % COLORS.length],
        visible: true,
        points: (s.values || []).map(([t, v]) => [Math.round(t * 1000), parseFloat(v), v]),
      }));
      Object.assign(this, { start, end, step, stacked });
      this.draw();
      this.drawLegend();
    }

    clear() {
      this.series = [];
      this.container.querySelector("svg")?.remove();
      this.legend.replaceChildren();
    }

    /** y values to draw per series: stacked sums when stacking, else the values. */
    layout() {
      const visible = this.series.filter(s => s.visible);
      if (!this.stacked) return visible.map(s => ({ series: s, points: s.points.map(([t, v]) => [t, v, 0]) }));
      const totals = new Map();
      return visible.map(s => ({
        series: s,
        points: s.points.map(([t, v]) => {
          const base = totals.get(t) || 0;
          const top = isFinite(v) ? base + v : NaN;
          if (isFinite(v)) totals.set(t, top);
          return [t, top, base];
        }),
      }));
    }

    draw() {
      this.container.querySelector("svg")?.remove();
      this.tooltip.hidden = true;
      const width = Math.max(this.container.clientWidth || 0, 400);
      const height = 340;
      const margin = { left: 64, right: 16, top: 10, bottom: 28 };
      const plotWidth = width - margin.left - margin.right;
      const plotHeight = height - margin.top - margin.bottom;
      const layout = this.layout();
      let lo = Infinity;
      let hi = -Infinity;
      for (const { points } of layout) {
        for (const [, top, base] of points) {
          if (!isFinite(top)) continue;
          lo = Math.min(lo, top, this.stacked ? base : top);
          hi = Math.max(hi, top);
        }
      }
      if (!isFinite(lo)) { lo = 0; hi = 1; }
      if (lo === hi) { lo -= Math.abs(lo) * 0.1 || 1; hi += Math.abs(hi) * 0.1 || 1; }
      const yTicks = niceTicks(lo, hi, 6);
      lo = Math.min(lo, yTicks[0]);
      hi = Math.max(hi, yTicks[yTicks.length - 1]);
      const x = t => margin.left + (t - this.start) / Math.max(this.end - this.start, 1) * plotWidth;
      const y = v => margin.top + (hi - v) / (hi - lo) * plotHeight;
      Object.assign(this, { x, y, margin, plotWidth, plotHeight, layoutCache: layout });

      const root = svg("svg", { width, height, class: "graph-svg", viewBox: `0 0 ${width} ${height}` });
      const grid = svg("g", { class: "grid" });
      for (const v of yTicks) {
        grid.append(svg("line", { x1: margin.left, x2: width - margin.right, y1: y(v), y2: y(v) }));
        const label = svg("text", { x: margin.left - 6, y: y(v) + 4, "text-anchor": "end" });
        label.textContent = formatSI(v);
        grid.append(label);
      }
      const { ticks, step } = timeTicks(this.start, this.end, Math.max(2, Math.floor(plotWidth / 110)));
      for (const t of ticks) {
        grid.append(svg("line", { x1: x(t), x2: x(t), y1: margin.top, y2: margin.top + plotHeight }));
        const label = svg("text", { x: x(t), y: height - 8, "text-anchor": "middle" });
        label.textContent = timeTickLabel(t, step);
        grid.append(label);
      }
      root.append(grid);
      const gapAfter = Math.max(this.step * 1.5, 1);
      for (const { series, points } of layout) {
        if (this.stacked) {
          root.append(svg("path", { class: "area", d: this.pathData(points, gapAfter, true), fill: series.color }));
        }
        root.append(svg("path", {
          class: this.stacked ? "series stacked" : "series",
          d: this.pathData(points, gapAfter, false),
          stroke: series.color,
          "data-series": series.name,
        }));
      }
      this.crosshair = svg("line", { class: "crosshair", y1: margin.top, y2: margin.top + plotHeight, visibility: "hidden" });
      this.marker = svg("circle", { class: "marker", r: 4, visibility: "hidden" });
      const overlay = svg("rect", {
        class: "overlay", x: margin.left, y: margin.top, width: plotWidth, height: plotHeight,
        onmousemove: event => this.hover(event), onmouseleave: () => this.unhover(),
      });
      root.append(this.crosshair, this.marker, overlay);
      this.container.prepend(root);
    }

    /**
     * Path data of one series: a line per run of points without gaps, or with `area` the
     * closed band between the series' stacked base and top.
     */
    pathData(points, gapAfter, area) {
      const runs = [];
      let run = [];
      let lastT = null;
      for (const point of points) {
        const [t, top] = point;
        if (!isFinite(top) || (lastT !== null && t - lastT > gapAfter)) {
          if (run.length) runs.push(run);
          run = [];
        }
        if (isFinite(top)) run.push(point);
        lastT = t;
      }
      if (run.length) runs.push(run);
      const f = n => n.toFixed(1);
      return runs.map(r => {
        if (!area) {
          if (r.length === 1) return `M${f(this.x(r[0][0]) - 1)},${f(this.y(r[0][1]))}h2`;
          return "M" + r.map(([t, v]) => `${f(this.x(t))},${f(this.y(v))}`).join("L");
        }
        const upper = r.map(([t, top]) => `${f(this.x(t))},${f(this.y(top))}`);
        const lower = r.slice().reverse().map(([t, , base]) => `${f(this.x(t))},${f(this.y(base))}`);
        return "M" + upper.join("L") + "L" + lower.join("L") + "Z";
      }).join("");
    }

    hover(event) {
      const box = event.currentTarget.ownerSVGElement.getBoundingClientRect();
      const mouseX = event.clientX - box.left;
      const mouseY = event.clientY - box.top;
      let best = null;
      for (const { series, points } of this.layoutCache) {
        const point = nearest(points, this.start + (mouseX - this.margin.left) / this.plotWidth * (this.end - this.start));
        if (!point || !isFinite(point[1])) continue;
        const distance = Math.abs(this.x(point[0]) - mouseX) * 0.2 + Math.abs(this.y(point[1]) - mouseY);
        if (!best || distance < best.distance) best = { series, point, distance };
      }
      if (!best) return this.unhover();
      const [t, top] = best.point;
      const original = best.series.points.find(p => p[0] === t);
      this.crosshair.setAttribute("x1", this.x(t));
      this.crosshair.setAttribute("x2", this.x(t));
      this.crosshair.setAttribute("visibility", "visible");
      this.marker.setAttribute("cx", this.x(t));
      this.marker.setAttribute("cy", this.y(top));
      this.marker.setAttribute("fill", best.series.color);
      this.marker.setAttribute("visibility", "visible");
      const labels = Object.entries(best.series.metric).filter(([k]) => k !== "__name__").sort();
      this.tooltip.replaceChildren(
        el("div", { class: "tooltip-time", text: formatTime(t) + (useLocalTime ? "" : " UTC") }),
        el("div", { class: "tooltip-series" },
          el("span", { class: "swatch", style: `background:${best.series.color}` }),
          el("b", { text: best.series.metric.__name__ || "value" }), ": ",
          el("span", { class: "tooltip-value", text: original ? original[2] : String(top) })),
        el("div", { class: "tooltip-labels" }, labels.map(([k, v]) => el("div", {}, el("b", { text: k }), ": " + v))),
      );
      this.tooltip.hidden = false;
      const left = this.x(t) + 14;
      const width = this.tooltip.offsetWidth;
      this.tooltip.style.left = (left + width > this.container.clientWidth ? this.x(t) - width - 14 : left) + "px";
      this.tooltip.style.top = Math.max(0, this.y(top) - 20) + "px";
    }

    unhover() {
      this.tooltip.hidden = true;
      this.crosshair?.setAttribute("visibility", "hidden");
      this.marker?.setAttribute("visibility", "hidden");
    }

    drawLegend() {
      this.legend.replaceChildren(...this.series.map(series => el("div", {
        class: "legend-item" + (series.visible ? "" : " off"),
        title: "click: show only this series (again: all); ctrl/cmd-click: show or hide it",
        onclick: event => this.toggle(series, event.ctrlKey || event.metaKey),
      }, el("span", { class: "swatch", style: `background:${series.color}` }), metricNode(series.metric))));
    }

    /** Prometheus's legend: a click isolates a series (or shows all again), ctrl-click toggles it. */
    toggle(series, single) {
      if (single) {
        series.visible = !series.visible;
      } else {
        const isolated = series.visible && this.series.every(s => s === series || !s.visible);
        for (const s of this.series) s.visible = isolated || s === series;
      }
      this.draw();
      this.drawLegend();
    }
  }

  /** The point of `points` (sorted by time) nearest to `t`. */
  function nearest(points, t) {
    let lo = 0;
    let hi = points.length - 1;
    if (hi < 0) return null;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (points[mid][0] < t) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && Math.abs(points[lo - 1][0] - t) < Math.abs(points[lo][0] - t)) lo--;
    return points[lo];
  }

  // ---------------------------------------------------------------------------------------
  // The graph page: panels, each with an expression, options, a table and a graph tab.

  function calendarIcon() {
    const icon = svg("svg", { width: 14, height: 14, viewBox: "0 0 14 14", class: "icon" });
    icon.append(svg("rect", { x: 1.5, y: 2.5, width: 11, height: 10, rx: 1.5, fill: "none", stroke: "currentColor" }),
      svg("path", { d: "M1.5 5.5h11M4.5 1v3M9.5 1v3", stroke: "currentColor" }));
    return icon;
  }

  /** A time field with «/» buttons (half a range back or forward), a picker and a clear button. */
  function timeInput(placeholder, getTime, setTime, getRange) {
    const input = el("input", { class: "time-input", placeholder, size: 19, spellcheck: "false" });
    const picker = el("input", { type: "datetime-local", class: "picker", step: "1", tabindex: "-1" });
    const show = () => { const t = getTime(); input.value = t === null ? "" : formatTime(t); };
    const commit = () => {
      const time = parseTime(input.value, useLocalTime);
      if (input.value.trim() !== "" && time === null) {
        input.classList.add("invalid");
        return;
      }
      input.classList.remove("invalid");
      // Enter commits, and the blur that follows fires "change" again: only a new time counts.
      if (time !== getTime()) setTime(time);
      show();
    };
    input.addEventListener("change", commit);
    input.addEventListener("keydown", event => { if (event.key === "Enter") { event.preventDefault(); commit(); } });
    picker.addEventListener("change", () => {
      if (!picker.value) return;
      input.value = picker.value.replace("T", " ");
      commit();
    });
    const move = sign => () => { setTime((getTime() ?? Date.now()) + sign * getRange() / 2); show(); };
    const pick = () => {
      picker.value = formatTime(getTime() ?? Date.now()).replace(" ", "T");
      try { picker.showPicker(); } catch (_) { picker.focus(); }
    };
    show();
    return {
      node: el("span", { class: "time-group" },
        el("button", { type: "button", title: "Back by half the range", onclick: move(-1), text: "«" }),
        input, picker,
        el("button", { type: "button", title: "Pick a date and time", class: "pick", onclick: pick }, calendarIcon()),
        el("button", { type: "button", title: "Forward by half the range", onclick: move(1), text: "»" }),
        el("button", { type: "button", title: "Now", onclick: () => { setTime(null); show(); }, text: "now" })),
      refresh: show,
    };
  }

  class Panel {
    constructor(page, options) {
      this.page = page;
      this.options = options;
      this.abort = null;
      this.build();
    }

    build() {
      const o = this.options;
      this.textarea = el("textarea", {
        class: "expr", rows: 1, spellcheck: "false", autocomplete: "off",
        placeholder: "Expression (press Shift+Enter for newlines)",
      });
      this.textarea.value = o.expr;
      this.autocomplete = new Autocomplete(this.textarea, () => this.fitTextarea());
      this.textarea.addEventListener("keydown", event => {
        if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); this.execute(); }
      });
      this.textarea.addEventListener("input", () => this.fitTextarea());
      const checkbox = (label, key) => el("label", { class: "check" },
        el("input", {
          type: "checkbox", checked: o[key], "data-option": key,
          onchange: event => { o[key] = event.target.checked; this.changed(true); },
        }), " " + label);
      this.messages = el("div", { class: "messages" });
      this.stats = el("span", { class: "stats" });
      this.tabButtons = {
        table: el("button", { type: "button", class: "tab", "data-tab": "table", text: "Table", onclick: () => this.setTab("table") }),
        graph: el("button", { type: "button", class: "tab", "data-tab": "graph", text: "Graph", onclick: () => this.setTab("graph") }),
      };
      this.evalTime = timeInput("Evaluation time", () => o.endTime, t => { o.endTime = t; this.changed(true); }, () => o.range);
      this.endTime = timeInput("End time", () => o.endTime, t => { o.endTime = t; this.changed(true); }, () => o.range);
      this.rangeInput = el("input", { class: "range-input", size: 6, value: formatDuration(o.range), title: "Range, e.g. 1h, 30m, 2d" });
      this.rangeInput.addEventListener("change", () => this.setRange(parseDuration(this.rangeInput.value)));
      this.rangeInput.addEventListener("keydown", event => { if (event.key === "Enter") this.setRange(parseDuration(this.rangeInput.value)); });
      this.resolutionInput = el("input", {
        class: "resolution-input", size: 8, placeholder: "Res. (s)", title: "Query resolution step in seconds",
        value: o.resolution === null ? "" : o.resolution,
      });
      this.resolutionInput.addEventListener("change", () => {
        const value = parseFloat(this.resolutionInput.value);
        const resolution = value > 0 ? value : null;
        this.resolutionInput.value = resolution === null ? "" : resolution;
        if (resolution === o.resolution) return;
        o.resolution = resolution;
        this.changed(true);
      });
      this.stackButtons = {
        lines: el("button", { type: "button", class: "toggle", title: "Show unstacked line graph", text: "lines", onclick: () => this.setStacked(false) }),
        stacked: el("button", { type: "button", class: "toggle", title: "Show stacked graph", text: "stacked", onclick: () => this.setStacked(true) }),
      };
      this.resolutionSelect = el("select", { class: "max-source-resolution", title: "Max source resolution (downsampled data)" },
        [["auto", "Auto downsampling"], ["0s", "Only raw data"], ["5m", "Max 5m downsampling"], ["1h", "Max 1h downsampling"]]
          .map(([value, text]) => el("option", { value, text })));
      if (![...this.resolutionSelect.options].some(option => option.value === o.maxSourceResolution)) {
        this.resolutionSelect.append(el("option", { value: o.maxSourceResolution, text: "Max " + o.maxSourceResolution + " downsampling" }));
      }
      this.resolutionSelect.value = o.maxSourceResolution;
      this.resolutionSelect.addEventListener("change", () => { o.maxSourceResolution = this.resolutionSelect.value; this.changed(true); });
      this.table = el("div", { class: "table-wrap" });
      const graphArea = el("div", { class: "graph" });
      const legend = el("div", { class: "legend" });
      this.graph = new Graph(graphArea, legend);
      this.tablePane = el("div", { class: "pane table-pane" }, el("div", { class: "controls" }, this.evalTime.node), this.table);
      this.graphPane = el("div", { class: "pane graph-pane" },
        el("div", { class: "controls" },
          el("span", { class: "range-group" },
            el("button", { type: "button", title: "Decrease range", text: "−", onclick: () => this.stepRange(-1) }),
            this.rangeInput,
            el("button", { type: "button", title: "Increase range", text: "+", onclick: () => this.stepRange(1) })),
          this.endTime.node, this.resolutionInput,
          el("span", { class: "toggle-group" }, this.stackButtons.lines, this.stackButtons.stacked),
          this.resolutionSelect),
        graphArea, legend);
      this.node = el("section", { class: "panel" },
        el("div", { class: "expr-row" },
          el("div", { class: "expr-wrap" }, this.textarea, this.autocomplete.list),
          el("button", { type: "button", class: "execute", text: "Execute", onclick: () => this.execute() })),
        el("div", { class: "options-row" },
          checkbox("Use deduplication", "dedup"), checkbox("Use partial response", "partialResponse")),
        this.messages,
        el("div", { class: "tabs" }, this.tabButtons.table, this.tabButtons.graph, this.stats),
        this.tablePane, this.graphPane,
        el("div", { class: "panel-footer" },
          el("button", { type: "button", class: "link remove", text: "Remove panel", onclick: () => this.page.remove(this) })));
      this.syncControls();
      requestAnimationFrame(() => this.fitTextarea());
    }

    fitTextarea() {
      this.textarea.style.height = "auto";
      this.textarea.style.height = this.textarea.scrollHeight + 2 + "px";
    }

    syncControls() {
      const o = this.options;
      for (const [tab, button] of Object.entries(this.tabButtons)) button.classList.toggle("active", o.tab === tab);
      this.tablePane.hidden = o.tab !== "table";
      this.graphPane.hidden = o.tab !== "graph";
      this.stackButtons.lines.classList.toggle("active", !o.stacked);
      this.stackButtons.stacked.classList.toggle("active", o.stacked);
      this.rangeInput.value = formatDuration(o.range);
      this.evalTime.refresh();
      this.endTime.refresh();
    }

    /** Records an option change in the URL and, when it changes the answer, runs the query again. */
    changed(rerun) {
      this.syncControls();
      this.page.saveUrl();
      if (rerun) this.execute();
    }

    setTab(tab) { this.options.tab = tab; this.graph.clear(); this.changed(true); }
    setStacked(stacked) {
      this.options.stacked = stacked;
      this.changed(false);
      if (this.graph.series.length) { this.graph.stacked = stacked; this.graph.draw(); }
    }
    setRange(range) {
      if (range === null || range === this.options.range) { this.rangeInput.value = formatDuration(this.options.range); return; }
      this.options.range = range;
      this.changed(true);
    }
    stepRange(direction) {
      const range = this.options.range;
      const steps = direction > 0 ? RANGE_STEPS : RANGE_STEPS.slice().reverse();
      const next = steps.find(s => direction > 0 ? s > range : s < range);
      if (next !== undefined) this.setRange(next);
    }

    showMessages(error, warnings) {
      this.messages.replaceChildren();
      if (error) this.messages.append(el("div", { class: "alert error", text: error }));
      for (const warning of warnings || []) this.messages.append(el("div", { class: "alert warning", text: "Warning: " + warning }));
    }

    async execute() {
      const o = this.options;
      o.expr = this.textarea.value;
      this.autocomplete.close();
      this.page.saveUrl();
      if (this.abort) this.abort.abort();
      if (o.expr.trim() === "") {
        this.showMessages(null, []);
        return;
      }
      const abort = new AbortController();
      this.abort = abort;
      const end = o.endTime ?? Date.now();
      const startedAt = performance.now();
      const params = {
        query: o.expr, dedup: String(o.dedup), partial_response: String(o.partialResponse), stats: "all",
      };
      let path;
      let step = 0;
      if (o.tab === "graph") {
        step = (o.resolution ?? Math.max(Math.floor(o.range / 250000), 1)) * 1000;
        Object.assign(params, {
          start: (end - o.range) / 1000, end: end / 1000, step: step / 1000,
          max_source_resolution: o.maxSourceResolution,
        });
        path = "api/v1/query_range";
      } else {
        Object.assign(params, { time: end / 1000 });
        if (o.maxSourceResolution !== "auto") params.max_source_resolution = o.maxSourceResolution;
        path = "api/v1/query";
      }
      this.node.classList.add("loading");
      this.stats.textContent = "Loading…";
      let body;
      try {
        body = await callApi(path, params, { post: true, signal: abort.signal });
      } catch (err) {
        if (err.name === "AbortError") return;
        body = { status: "error", errorType: "network", error: err.message };
      } finally {
        if (this.abort === abort) this.node.classList.remove("loading");
      }
      if (this.abort !== abort) return;
      this.abort = null;
      const loadTime = Math.round(performance.now() - startedAt);
      if (body.status !== "success") {
        this.stats.textContent = "";
        this.showMessages(`Error executing query: ${body.error || "invalid response"}` + (body.errorType ? ` (${body.errorType})` : ""), body.warnings);
        this.table.replaceChildren();
        this.graph.clear();
        return;
      }
      this.showMessages(null, body.warnings);
      const data = body.data;
      const resultSeries = data.resultType === "scalar" || data.resultType === "string" ? 1 : data.result.length;
      this.showStats(loadTime, step, resultSeries, data.stats);
      if (o.tab === "graph") {
        if (data.resultType !== "matrix") {
          this.showMessages(`Query result is of type ${data.resultType}, not a range vector`, body.warnings);
          return;
        }
        if (data.result.length === 0) this.showMessages("Empty query result", body.warnings);
        this.graph.set(data.result, end - o.range, end, step, o.stacked);
      } else {
        this.renderTable(data);
      }
    }

    showStats(loadTime, step, resultSeries, stats) {
      const parts = [`Load time: ${loadTime}ms`];
      if (step) parts.push(`Resolution: ${step / 1000}s`);
      parts.push(`Result series: ${resultSeries}`);
      if (stats && stats.series && stats.series.totalQueryableSeries !== undefined) parts.push(`Series touched: ${stats.series.totalQueryableSeries}`);
      if (stats && stats.samples) {
        parts.push(`Samples touched: ${stats.samples.totalQueryableSamples}`);
        parts.push(`Peak samples: ${stats.samples.peakSamples}`);
      }
      if (stats && stats.timings) parts.push(`Evaluation: ${(stats.timings.evalTotalTime * 1000).toFixed(1)}ms`);
      this.stats.textContent = parts.join(" · ");
    }

    renderTable(data) {
      const rows = [];
      const header = el("tr", {}, el("th", { text: "Element" }), el("th", { text: "Value" }));
      switch (data.resultType) {
        case "vector":
          for (const sample of data.result.slice(0, MAX_TABLE_ROWS)) {
            rows.push(el("tr", {}, el("td", {}, metricNode(sample.metric)), el("td", { class: "value", text: sample.value[1] })));
          }
          break;
        case "matrix":
          for (const series of data.result.slice(0, MAX_TABLE_ROWS)) {
            rows.push(el("tr", {}, el("td", {}, metricNode(series.metric)),
              el("td", { class: "value" }, (series.values || []).map(([t, v]) => el("div", { text: `${v} @${t}` })))));
          }
          break;
        case "scalar":
          rows.push(el("tr", {}, el("td", { text: "scalar" }), el("td", { class: "value", text: data.result[1] })));
          break;
        case "string":
          rows.push(el("tr", {}, el("td", { text: "string" }), el("td", { class: "value", text: data.result[1] })));
          break;
      }
      const notes = [];
      if (rows.length === 0) notes.push(el("p", { class: "empty", text: "Empty query result" }));
      if (Array.isArray(data.result) && data.resultType !== "scalar" && data.resultType !== "string" && data.result.length > MAX_TABLE_ROWS) {
        notes.push(el("p", { class: "alert warning", text: `Showing ${MAX_TABLE_ROWS} of ${data.result.length} series` }));
      }
      this.table.replaceChildren(...notes, el("table", { class: "data" }, header, rows));
    }
  }

  class GraphPage {
    constructor(root) {
      this.root = root;
      this.list = el("div", { class: "panels" });
      root.append(this.list, el("button", { type: "button", class: "add-panel", text: "Add Panel", onclick: () => this.add(defaultOptions(), true) }));
      const panels = parsePanels(location.search);
      this.panels = [];
      for (const options of panels.length ? panels : [defaultOptions()]) this.add(options, false);
      this.saveUrl();
      for (const panel of this.panels) if (panel.options.expr) panel.execute();
      let resizeTimer = null;
      window.addEventListener("resize", () => {
        clearTimeout(resizeTimer);
        resizeTimer = setTimeout(() => this.panels.forEach(p => p.graph.series.length && p.graph.draw()), 150);
      });
      metricNames(); // warm the autocomplete cache
    }

    add(options, focus) {
      const panel = new Panel(this, options);
      this.panels.push(panel);
      this.list.append(panel.node);
      if (focus) panel.textarea.focus();
      this.saveUrl();
      return panel;
    }

    remove(panel) {
      panel.abort?.abort();
      this.panels = this.panels.filter(p => p !== panel);
      panel.node.remove();
      this.saveUrl();
    }

    saveUrl() {
      history.replaceState(null, "", "graph" + encodePanels(this.panels.map(p => p.options)));
    }
  }

  // ---------------------------------------------------------------------------------------
  // The other pages.

  function loadingInto(root, promise, render) {
    const status = el("p", { class: "empty", text: "Loading…" });
    root.append(status);
    promise.then(body => {
      status.remove();
      if (body.status !== "success") {
        root.append(el("div", { class: "alert error", text: `Error: ${body.error || "invalid response"}` }));
        return;
      }
      for (const warning of body.warnings || []) root.append(el("div", { class: "alert warning", text: "Warning: " + warning }));
      render(body.data);
    }).catch(err => {
      status.remove();
      root.append(el("div", { class: "alert error", text: "Error: " + err.message }));
    });
  }

  /** A StoreAPI time bound (ms); the int64 extremes mean unbounded. */
  function storeTime(ms, store) {
    // An endpoint whose Info never answered has no time range yet.
    if (store && !store.labelSets?.length && store.minTime === 0 && store.maxTime === 0) return "-";
    if (typeof ms !== "number" || Math.abs(ms) >= 8.64e15) return ms < 0 ? "-∞" : "+∞";
    return formatTime(ms);
  }

  function storesPage(root) {
    root.append(el("h1", { text: "Stores" }));
    loadingInto(root, callApi("api/v1/stores"), data => {
      const types = Object.keys(data || {}).sort();
      if (types.length === 0) root.append(el("p", { class: "empty", text: "No store endpoints are known to this querier." }));
      for (const type of types) {
        const stores = data[type].slice().sort((a, b) => a.name.localeCompare(b.name));
        const up = stores.filter(s => !s.lastError).length;
        root.append(el("h2", { class: "store-type" }, type, el("span", { class: "count", text: ` ${up}/${stores.length} up` })));
        const rows = stores.map(store => el("tr", { class: "store", "data-endpoint": store.name },
          el("td", { class: "endpoint", text: store.name }),
          el("td", {}, el("span", { class: "badge " + (store.lastError ? "down" : "up"), text: store.lastError ? "DOWN" : "UP" })),
          el("td", { class: "label-sets" }, (store.labelSets || []).map(set => el("div", { class: "label-set" },
            Object.keys(set).sort().map(name => el("span", { class: "chip", text: `${name}="${set[name]}"` }))))),
          el("td", { class: "time", text: storeTime(store.minTime, store) }),
          el("td", { class: "time", text: storeTime(store.maxTime, store) }),
          el("td", { text: store.lastCheck && !store.lastCheck.startsWith("0001") ? ago(Date.parse(store.lastCheck)) : "never" }),
          el("td", { class: "last-error", text: store.lastError || "" })));
        root.append(el("table", { class: "data stores" },
          el("tr", {}, ["Endpoint", "Status", "Announced label sets", "Min time", "Max time", "Last check", "Last error"].map(h => el("th", { text: h }))),
          rows));
      }
    });
  }

  function flagsPage(root) {
    root.append(el("h1", { text: "Command-line flags" }));
    const filter = el("input", { class: "filter", placeholder: "Filter by flag name or value" });
    root.append(filter);
    loadingInto(root, callApi("api/v1/status/flags"), data => {
      const rows = Object.keys(data).sort().map(name => el("tr", {}, el("td", { class: "flag", text: "--" + name }), el("td", { text: data[name] })));
      filter.addEventListener("input", () => {
        const needle = filter.value.toLowerCase();
        for (const row of rows) row.hidden = needle !== "" && !row.textContent.toLowerCase().includes(needle);
      });
      root.append(el("table", { class: "data flags" }, el("tr", {}, el("th", { text: "Flag" }), el("th", { text: "Value" })), rows));
    });
  }

  function statusPage(root) {
    root.append(el("h1", { text: "Status" }));
    const build = el("section");
    const endpoints = el("section");
    root.append(build, endpoints);
    build.append(el("h2", { text: "Build information" }));
    loadingInto(build, callApi("api/v1/status/buildinfo"), data => {
      const names = { version: "Version", revision: "Revision", branch: "Branch", buildUser: "Build user", buildDate: "Build date", goVersion: "Toolchain" };
      build.append(el("table", { class: "data status" }, Object.keys(data).map(key => el("tr", {}, el("th", { text: names[key] || key }), el("td", { text: data[key] })))));
    });
    endpoints.append(el("h2", { text: "Endpoints" }));
    loadingInto(endpoints, callApi("api/v1/stores"), data => {
      const rows = Object.keys(data || {}).sort().map(type => {
        const up = data[type].filter(s => !s.lastError).length;
        return el("tr", {}, el("th", { text: type }), el("td", { text: `${up} up of ${data[type].length}` }));
      });
      endpoints.append(rows.length ? el("table", { class: "data status" }, rows) : el("p", { class: "empty", text: "No endpoints." }),
        el("p", {}, el("a", { href: "stores", text: "Details on the stores page" })));
    });
  }

  function queryLink(expr) {
    return "graph" + encodePanels([Object.assign(defaultOptions(), { expr, tab: "table" })]);
  }

  function rulesPage(root) {
    root.append(el("h1", { text: "Rules" }));
    loadingInto(root, callApi("api/v1/rules"), data => {
      const groups = data.groups || [];
      if (groups.length === 0) root.append(el("p", { class: "empty", text: "No rule groups." }));
      for (const group of groups) {
        root.append(el("h2", { text: group.name }, el("span", { class: "count", text: group.file ? `  ${group.file}` : "" })));
        root.append(el("table", { class: "data rules" },
          el("tr", {}, ["Rule", "State", "Error", "Last evaluation", "Evaluation time"].map(h => el("th", { text: h }))),
          (group.rules || []).map(rule => el("tr", {},
            el("td", {},
              el("div", {}, el("b", { text: (rule.type === "alerting" ? "alert: " : "record: ") + rule.name })),
              el("div", {}, "expr: ", el("a", { href: queryLink(rule.query), text: rule.query }))),
            el("td", {}, el("span", { class: "badge " + (rule.health === "ok" ? "up" : rule.health === "err" ? "down" : "unknown"), text: rule.health || "unknown" })),
            el("td", { class: "last-error", text: rule.lastError || "" }),
            el("td", { text: rule.lastEvaluation && !rule.lastEvaluation.startsWith("0001") ? ago(Date.parse(rule.lastEvaluation)) : "never" }),
            el("td", { text: rule.evaluationTime !== undefined ? `${(rule.evaluationTime * 1000).toFixed(1)}ms` : "" })))));
      }
    });
  }

  function alertsPage(root) {
    root.append(el("h1", { text: "Alerts" }));
    loadingInto(root, callApi("api/v1/alerts"), data => {
      const alerts = data.alerts || [];
      if (alerts.length === 0) root.append(el("p", { class: "empty", text: "No active alerts." }));
      const byName = new Map();
      for (const alert of alerts) {
        const name = (alert.labels || {}).alertname || "(unnamed)";
        if (!byName.has(name)) byName.set(name, []);
        byName.get(name).push(alert);
      }
      for (const [name, list] of [...byName.entries()].sort()) {
        const firing = list.filter(a => a.state === "firing").length;
        root.append(el("h2", { class: firing ? "firing" : "pending" }, name, el("span", { class: "count", text: ` (${firing} firing, ${list.length - firing} pending)` })));
        root.append(el("table", { class: "data alerts" },
          el("tr", {}, ["Labels", "State", "Active since", "Value", "Annotations"].map(h => el("th", { text: h }))),
          list.map(alert => el("tr", {},
            el("td", {}, metricNode(alert.labels || {})),
            el("td", {}, el("span", { class: "badge " + (alert.state === "firing" ? "down" : "unknown"), text: alert.state })),
            el("td", { text: alert.activeAt ? formatTime(Date.parse(alert.activeAt)) : "" }),
            el("td", { text: alert.value || "" }),
            el("td", {}, Object.entries(alert.annotations || {}).map(([k, v]) => el("div", {}, el("b", { text: k }), ": " + v)))))));
      }
    });
  }

  // ---------------------------------------------------------------------------------------
  // Start: pick the page from the last path segment.

  const PAGES = { graph: GraphPage, stores: storesPage, flags: flagsPage, status: statusPage, rules: rulesPage, alerts: alertsPage };

  function start() {
    const name = location.pathname.split("/").filter(Boolean).pop() || "graph";
    const page = PAGES[name] ? name : "graph";
    for (const link of document.querySelectorAll("nav a[data-page]")) link.classList.toggle("active", link.dataset.page === page);
    const localTime = document.getElementById("use-local-time");
    localTime.checked = useLocalTime;
    localTime.addEventListener("change", () => {
      localStorage.setItem("strata.useLocalTime", localTime.checked ? "1" : "0");
      location.reload();
    });
    document.title = `Strata · ${page[0].toUpperCase()}${page.slice(1)}`;
    const root = document.getElementById("page");
    root.className = "page-" + page;
    if (page === "graph") window.strataGraphPage = new GraphPage(root);
    else PAGES[page](root);
  }

  start();
})();
