// The concurrency visualizer. Hand-written, no libraries: the page works offline.
//
// It fires N requests at the same moment at each chosen setup, then draws what the servers
// reported: one lane per process / OS thread / greenlet, one bar per request from the
// server's start to its finish time, and a tick where the browser sent the request.
"use strict";

const SETUPS = ["sync", "gthread", "gevent"];
const LOOPBACK = /^(localhost|127\.0\.0\.1|\[::1\]|[a-z0-9-]+\.localhost)$/;

// Browsers open at most 6 HTTP/1.1 connections per host. On this machine, spread requests
// over c0.localhost, c1.localhost, ... (all loopback, see nginx/snippets/http/cors-loopback.conf)
// so the server decides what overlaps. Elsewhere, stay on this origin.
function originFor(index) {
  const { protocol, hostname, port } = window.location;
  if (!LOOPBACK.test(hostname)) return "";
  return `${protocol}//c${index}.localhost${port ? ":" + port : ""}`;
}

function randomToken() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// When the browser really sent a request (resource timing), in epoch seconds.
function sentAt(url) {
  const entries = performance.getEntriesByName(url);
  const entry = entries[entries.length - 1];
  if (!entry) return null;
  return (performance.timeOrigin + (entry.requestStart || entry.fetchStart)) / 1000;
}

// Start every fetch in the same task, so they leave together (as far as the browser lets).
async function fireSimultaneously(urls) {
  const results = await Promise.all(urls.map(async (url) => {
    try {
      const response = await fetch(url, { cache: "no-store" });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) return { error: `HTTP ${response.status} ${body.message || ""}`.trim() };
      return body;
    } catch (err) {
      return { error: String(err.message || err) };
    }
  }));
  urls.forEach((url, i) => { if (!results[i].error) results[i].sent_at = sentAt(url); });
  return results;
}

// --- Arithmetic on the servers' answers (the same rules as loadtest/evidence.py) ----------

function maxInFlight(bodies) {
  const events = [];
  for (const b of bodies) { events.push([b.started_at, 1], [b.finished_at, -1]); }
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);  // ends before starts at equal times
  let current = 0, peak = 0;
  for (const [, delta] of events) { current += delta; peak = Math.max(peak, current); }
  return peak;
}

function countWaves(bodies) {
  let waves = 0, roundEnds = -Infinity;
  for (const b of [...bodies].sort((x, y) => x.started_at - y.started_at)) {
    if (b.started_at >= roundEnds) { waves += 1; roundEnds = b.finished_at; }
    else { roundEnds = Math.min(roundEnds, b.finished_at); }
  }
  return waves;
}

const laneKey = (b) => `${b.hostname}/${b.pid}/${b.thread_id}/${b.greenlet_id ?? 0}`;

function describe(bodies) {
  const processes = new Map();
  for (const b of bodies) {
    const key = `${b.hostname}/${b.pid}`;
    if (!processes.has(key)) processes.set(key, new Set());
    processes.get(key).add(b.thread_id);
  }
  const threadsPerProcess = Math.max(...[...processes.values()].map((s) => s.size));
  const threads = [...processes.values()].reduce((n, s) => n + s.size, 0);
  const greenlets = new Set(bodies.filter((b) => b.greenlet_id !== null).map(laneKey)).size;
  const sent = bodies.map((b) => b.sent_at ?? b.started_at);
  const total = Math.max(...bodies.map((b) => b.finished_at)) - Math.min(...sent);
  return { requests: bodies.length, processes: processes.size, threads, threadsPerProcess,
           greenlets, lanes: new Set(bodies.map(laneKey)).size, maxInFlight: maxInFlight(bodies),
           waves: countWaves(bodies), total };
}

const plural = (n, word, many = word + "s") => `${n} ${n === 1 ? word : many}`;

function summaryLine(d) {
  let who = `${plural(d.processes, "process", "processes")} × `;
  if (d.greenlets) who += `1 thread × ${plural(d.greenlets, "greenlet")}`;
  else if (d.threadsPerProcess === 1) who += "1 thread";
  else who += `up to ${d.threadsPerProcess} threads (${d.threads} in all)`;
  return `${plural(d.requests, "request")} → ${who}, max ${d.maxInFlight} in flight, ` +
         `${plural(d.waves, "wave")}, ${d.total.toFixed(2)} s total`;
}

// --- Drawing -------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function svgEl(name, attrs, parent) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function tooltipText(b) {
  return [`request ${b.request_id}`, `pid ${b.pid}, thread ${b.thread_id} (${b.thread_name})`,
          `greenlet ${b.greenlet_id ?? "none"}`,
          `started ${new Date(b.started_at * 1000).toISOString().slice(11, 23)}`,
          `took ${((b.finished_at - b.started_at) * 1000).toFixed(1)} ms`].join("\n");
}

function showTooltip(bar, text) {
  const tip = document.getElementById("tooltip");
  const box = bar.getBoundingClientRect();
  tip.textContent = text;
  tip.hidden = false;
  tip.style.left = `${Math.min(box.left, window.innerWidth - 320)}px`;
  tip.style.top = `${box.bottom + 6}px`;
}
const hideTooltip = () => { document.getElementById("tooltip").hidden = true; };

function drawTimeline(setup, bodies) {
  const lanes = [...new Set(bodies.map(laneKey))].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const t0 = Math.min(...bodies.map((b) => Math.min(b.sent_at ?? b.started_at, b.started_at)));
  const t1 = Math.max(...bodies.map((b) => b.finished_at));
  const [labelW, width, laneH, top] = [190, 960, 20, 8];
  const height = top + lanes.length * laneH + 26;
  const x = (t) => labelW + ((t - t0) / Math.max(t1 - t0, 1e-6)) * (width - labelW - 12);
  const svg = svgEl("svg", { class: "timeline", viewBox: `0 0 ${width} ${height}`, role: "img",
                             "aria-label": `${setup} timeline` });
  const ticks = 5;
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + ((t1 - t0) * i) / ticks;
    svgEl("line", { class: "gridline", x1: x(t), x2: x(t), y1: top, y2: height - 20 }, svg);
    const anchor = i === 0 ? "start" : i === ticks ? "end" : "middle";
    svgEl("text", { class: "axis", x: x(t), y: height - 6, "text-anchor": anchor }, svg)
      .textContent = `${(t - t0).toFixed(2)} s`;
  }
  lanes.forEach((lane, i) => {
    const [, pid, tid, green] = lane.split("/");
    const label = green !== "0" ? `pid ${pid} · greenlet …${green.slice(-4)}` : `pid ${pid} · thread ${tid}`;
    svgEl("text", { class: "lane-label", x: 4, y: top + i * laneH + 14 }, svg).textContent = label;
  });
  for (const b of bodies) {
    const y = top + lanes.indexOf(laneKey(b)) * laneH + 3;
    const bar = svgEl("rect", {
      class: `bar ${setup}`, x: x(b.started_at), y, height: laneH - 6, rx: 2,
      width: Math.max(x(b.finished_at) - x(b.started_at), 1.5), tabindex: 0,
      "data-start": b.started_at, "data-end": b.finished_at, "data-lane": laneKey(b),
      "aria-label": tooltipText(b).replaceAll("\n", ", "),
    }, svg);
    const text = tooltipText(b);
    bar.addEventListener("mouseenter", () => showTooltip(bar, text));
    bar.addEventListener("focus", () => showTooltip(bar, text));
    bar.addEventListener("mouseleave", hideTooltip);
    bar.addEventListener("blur", hideTooltip);
    if (b.sent_at) {
      svgEl("line", { class: "sent", x1: x(b.sent_at), x2: x(b.sent_at), y1: y - 2,
                      y2: y + laneH - 4 }, svg);
    }
  }
  return svg;
}

// --- The two experiments --------------------------------------------------------------------

function setStatus(id, text) { document.getElementById(id).textContent = text; }

function selectedSetups(form) {
  return SETUPS.filter((s) => form.querySelector(`input[name=setup][value=${s}]`).checked);
}

async function runTimeline(event) {
  event.preventDefault();
  const form = event.target;
  const setups = selectedSetups(form);
  if (!setups.length) { setStatus("run-status", "Pick at least one setup."); return; }
  // An endpoint, with any fixed parameter of its own: "io", "db?driver=psycopg2", ...
  const [endpoint, fixed] = form.elements.work.value.split("?");
  const params = fixed ? `${fixed}&` : "";
  const ms = Number(form.elements.ms.value);
  const count = Number(form.elements.count.value);
  const results = document.getElementById("results");
  const button = document.getElementById("run-button");
  results.replaceChildren();
  button.disabled = true;
  try {
    for (const setup of setups) {  // one setup at a time, so they never compete for CPU
      setStatus("run-status", `Sending ${count} requests to ${setup}…`);
      const urls = Array.from({ length: count }, (_, i) =>
        `${originFor(i)}/${setup}/api/${endpoint}?${params}ms=${ms}&r=${randomToken()}`);
      const answers = await fireSimultaneously(urls);
      const section = document.createElement("section");
      section.className = "setup-result";
      section.dataset.setup = setup;
      const heading = document.createElement("h3");
      heading.textContent = setup;
      const summary = document.createElement("p");
      summary.className = "summary";
      section.append(heading, summary);
      const failed = answers.filter((a) => a.error);
      if (failed.length) {
        summary.textContent = `${failed.length} of ${count} requests failed: ${failed[0].error}`;
        summary.classList.add("bad");
      } else {
        const d = describe(answers);
        Object.assign(section.dataset, { requests: d.requests, maxInFlight: d.maxInFlight,
          lanes: d.lanes, processes: d.processes, greenlets: d.greenlets, waves: d.waves });
        summary.textContent = summaryLine(d);
        section.append(drawTimeline(setup, answers));
      }
      results.append(section);
    }
    setStatus("run-status", "Done. Hover or tab to a bar for its details.");
  } finally {
    button.disabled = false;
  }
}

const STORES = [["module_global", "module global"], ["dict_by_thread_ident", "dict by get_ident()"],
                ["dict_by_os_thread_id", "dict by OS thread id"], ["flask_g", "flask.g"]];

async function runIsolation(event) {
  event.preventDefault();
  const count = Number(event.target.elements.count.value);
  const button = document.getElementById("iso-button");
  const table = document.createElement("table");
  table.id = "iso-table";
  const head = table.createTHead().insertRow();
  for (const text of ["setup", "requests", ...STORES.map(([, label]) => `${label}: clobbered`)]) {
    head.appendChild(document.createElement("th")).textContent = text;
  }
  const body = table.createTBody();
  button.disabled = true;
  try {
    for (const setup of SETUPS) {
      setStatus("iso-status", `Checking ${setup}…`);
      const urls = Array.from({ length: count }, (_, i) =>
        `${originFor(i)}/${setup}/api/isolation?token=${randomToken()}&ms=300`);
      const answers = (await fireSimultaneously(urls)).filter((a) => !a.error);
      const row = body.insertRow();
      row.dataset.setup = setup;
      row.insertCell().textContent = setup;
      row.insertCell().textContent = `${answers.length} of ${count}`;
      for (const [store] of STORES) {
        const clobbered = answers.filter((a) => !a.stores[store].intact).length;
        const cell = row.insertCell();
        cell.dataset.store = store;
        cell.textContent = String(clobbered);
        cell.className = clobbered ? "bad" : "good";
      }
    }
    setStatus("iso-status", "Done. flask.g lives in a context private to each thread and " +
              "greenlet, so it is never clobbered; a global is shared by everything in a process.");
  } finally {
    button.disabled = false;
  }
  document.getElementById("iso-results").replaceChildren(table);
}

document.getElementById("run-form").addEventListener("submit", runTimeline);
document.getElementById("iso-form").addEventListener("submit", runIsolation);
