// The ops page: per vendor route success rate, p50/p99 latency, error codes, breaker state and a
// small SVG chart, from /api/ops/routes (a projection of the audit records); refreshed live.
"use strict";

const $ = (s) => document.querySelector(s);
const SVG = "http://www.w3.org/2000/svg";
let data = null;

function svg(tag, attrs) { const e = document.createElementNS(SVG, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; }

// chart draws calls as bars (errors stacked in red) and the p50 latency as a line.
function chart(series) {
  const w = 220, h = 44, s = svg("svg", { width: w, height: h, class: "chart", viewBox: `0 0 ${w} ${h}`, role: "img" });
  if (!series.length) return s;
  const maxCalls = Math.max(...series.map((b) => b.calls), 1), maxLat = Math.max(...series.map((b) => b.p50_ms), 1);
  const t0 = Date.parse(series[0].at), t1 = Math.max(Date.parse(series[series.length - 1].at), t0 + 1);
  const x = (b) => 2 + (Date.parse(b.at) - t0) / (t1 - t0) * (w - 8);
  const bw = Math.max(2, (w - 8) / Math.max(series.length, 20) - 1);
  for (const b of series) {
    const hc = b.calls / maxCalls * (h - 4), he = b.errors / maxCalls * (h - 4);
    s.append(svg("rect", { class: "bar", x: x(b), y: h - hc, width: bw, height: hc }));
    if (b.errors) s.append(svg("rect", { class: "err", x: x(b), y: h - he, width: bw, height: he }));
  }
  s.append(svg("polyline", { class: "line", points: series.map((b) => `${x(b) + bw / 2},${h - 2 - b.p50_ms / maxLat * (h - 6)}`).join(" ") }));
  const title = svg("title", {}); title.textContent = `max ${maxCalls} calls/step, p50 max ${maxLat.toFixed(0)} ms`; s.append(title);
  return s;
}

function render() {
  applyI18n();
  const tbody = $("#routes");
  if (!data) return;
  if (!data.routes.length) { tbody.replaceChildren(el("tr", {}, el("td", { colspan: "8", class: "muted" }, t("ops.empty")))); }
  else tbody.replaceChildren(...data.routes.map((r) => el("tr", { dataset: { route: r.route } },
    el("td", {}, el("strong", {}, r.vendor), el("span", { class: "muted" }, "." + r.op)),
    el("td", { class: "num" }, r.calls),
    el("td", { class: "num rate " + (r.success_rate < 0.99 ? "bad" : "good") }, (r.success_rate * 100).toFixed(r.success_rate < 1 ? 2 : 0) + "%"),
    el("td", { class: "num" }, r.p50_ms.toFixed(0) + " ms"),
    el("td", { class: "num" }, r.p99_ms.toFixed(0) + " ms"),
    el("td", { class: "codes" }, ...Object.entries(r.codes).sort((a, b) => b[1] - a[1]).map(([c, n]) => el("span", {}, c + " × " + n))),
    el("td", { class: r.breaker === "open" ? "breaker-open" : "" }, r.breaker ? t("breaker." + r.breaker) : "—"),
    el("td", {}, chart(r.series)))));
  $("#ops-alerts").replaceChildren(...data.alerts.map((a) => el("li", {},
    el("span", { class: "pill " + (a.resolved_at ? "" : "negative") }, a.resolved_at ? t("resolved") : t("active")), " ",
    el("strong", {}, a.kind === "ops" ? a.route || "" : t("alert.sentiment")), " ", a.title, el("span", { class: "muted" }, " · " + fmtTime(a.at)))));
  const active = data.alerts.filter((a) => !a.resolved_at && a.kind === "ops");
  $("#alerts").replaceChildren(...active.slice(0, 3).map((a) => el("div", { class: "banner banner-error", role: "alert" }, el("strong", {}, t("alert.ops")), " ", a.title)));
}

async function load() { data = await api("/api/ops/routes?window=" + $("#window").value); render(); }

let timer = null;
function loadSoon() { clearTimeout(timer); timer = setTimeout(() => load().catch(() => {}), 1000); }

function start() {
  applyI18n();
  $("#lang-toggle").addEventListener("click", () => toggleLang(render));
  $("#window").addEventListener("change", load);
  load().catch(() => {});
  const es = new EventSource("/api/events");
  es.onopen = () => $("#live").classList.add("on");
  es.onerror = () => $("#live").classList.remove("on");
  es.onmessage = (m) => { const n = JSON.parse(m.data); if (n.type === "omni.audit.call.recorded" || n.type === "desk.alerts") loadSoon(); };
  setInterval(() => load().catch(() => {}), 15000);
}
start();
