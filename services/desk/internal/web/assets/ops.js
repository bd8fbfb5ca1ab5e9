// The ops page: per vendor route success rate, p50/p99 latency, error codes, breaker state and a
// small SVG chart, from /api/ops/routes (a projection of the audit records); refreshed live; the
// connectors the process runs without for want of configuration, with the variables that enable them.
// Then the canary rollouts (pkg/canary, from the omni.ops.canary.* events): per target its status,
// plan and reason, and per variant the calls, success rate, mean and p95 latency of the window.
// Below them, the dead letters (/api/ops/dlq, supervisors only): a summary by service and
// reason, a table to select, inspect, redrive and discard (with a note) them.
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
  renderDLQ();
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
  const disabled = data.disabled || [];
  $("#ops-disabled-section").hidden = !disabled.length;
  $("#ops-disabled").replaceChildren(...disabled.map((d) => el("li", { dataset: { service: d.name } },
    el("strong", {}, d.name), " ", el("span", { class: "muted" }, d.enable.join(" · ")))));
  renderCanary(data.canary || []);
  $("#ops-alerts").replaceChildren(...data.alerts.map((a) => el("li", {},
    el("span", { class: "pill " + (a.resolved_at ? "" : "negative") }, a.resolved_at ? t("resolved") : t("active")), " ",
    el("strong", {}, a.kind === "ops" ? a.route || "" : t("alert.sentiment")), " ", a.kind === "ops" ? opsAlertText(a) : a.title, el("span", { class: "muted" }, " · " + fmtTime(a.at)))));
  const active = data.alerts.filter((a) => !a.resolved_at && a.kind === "ops");
  $("#alerts").replaceChildren(...active.slice(0, 3).map((a) => el("div", { class: "banner banner-error", role: "alert" }, el("strong", {}, t("alert.ops")), " ", el("span", { title: a.title }, opsAlertText(a)))));
}

// renderCanary shows one row per variant of each rollout, the target's cells spanning them.
function renderCanary(list) {
  $("#canary").hidden = !list.length;
  $("#canary-rows").replaceChildren(...list.flatMap((c) => {
    const st = c.state || {}, stats = c.stats && c.stats.length ? c.stats : [{ variant: st.baseline }, { variant: st.candidate }];
    return stats.map((v, i) => {
      const rate = v.calls ? 1 - v.failure_ratio : null;
      const cells = [];
      if (i === 0) {
        const span = { rowspan: String(stats.length) };
        cells.push(el("td", span, el("strong", {}, c.target)),
          el("td", span, el("span", { class: "pill " + (st.status === "rolled_back" ? "negative" : "") }, t("canary.status." + st.status)),
            st.reason ? el("div", { class: "muted" }, st.reason) : "", el("div", { class: "muted" }, fmtTime(st.since || c.state_at))),
          el("td", span, el("code", {}, st.plan || ""), el("div", { class: "muted" }, (st.by || ""))));
      }
      cells.push(el("td", {}, v.variant || "", el("span", { class: "muted" }, " · " + t(v.variant === st.baseline ? "canary.baseline" : "canary.candidate"))),
        el("td", { class: "num" }, v.calls || 0),
        el("td", { class: "num rate " + (rate === null ? "" : rate < 0.99 ? "bad" : "good") }, rate === null ? "—" : (rate * 100).toFixed(rate < 1 ? 2 : 0) + "%"),
        el("td", { class: "num" }, v.calls ? v.latency_mean_ms.toFixed(0) + " ms" : "—"),
        el("td", { class: "num" }, v.calls ? "≤ " + v.latency_p95_ms.toFixed(0) + " ms" : "—"));
      return el("tr", { dataset: { target: c.target, variant: v.variant || "" } }, ...cells);
    });
  }));
}

async function load() { data = await api("/api/ops/routes?window=" + $("#window").value); render(); }

// --- dead letters

let dlq = null, dlqDenied = false, dlqOpen = null;
const dlqSel = new Set();

async function loadDLQ() {
  const q = new URLSearchParams();
  if ($("#dlq-service").value) q.set("service", $("#dlq-service").value);
  if ($("#dlq-reason").value.trim()) q.set("reason", $("#dlq-reason").value.trim());
  try { dlq = await api("/api/ops/dlq?" + q); dlqDenied = false; }
  catch (e) { if (e.status !== 403) throw e; dlq = null; dlqDenied = true; }
  const present = new Set((dlq ? dlq.letters : []).map((l) => l.seq));
  for (const s of [...dlqSel]) if (!present.has(s)) dlqSel.delete(s);
  renderDLQ();
}

function renderDLQ() {
  $("#dlq-denied").hidden = !dlqDenied;
  for (const id of ["#dlq-summary", ".dlq-actions", "#dlq table"]) $(id).hidden = dlqDenied;
  if (!dlq) return;
  $("#dlq-total").textContent = t("dlq.total", { n: dlq.total });
  const svc = $("#dlq-service"), cur = svc.value;
  const services = [...new Set(dlq.summary.map((c) => c.service))].sort();
  if (cur && !services.includes(cur)) services.push(cur);
  svc.replaceChildren(el("option", { value: "" }, t("dlq.any")), ...services.map((s) => el("option", { value: s }, s)));
  svc.value = cur;
  $("#dlq-summary").replaceChildren(...dlq.summary.map((c) => el("li", {
    class: svc.value === c.service && $("#dlq-reason").value === c.reason ? "on" : "", title: c.reason,
    dataset: { service: c.service },
    onclick: () => { svc.value = c.service; $("#dlq-reason").value = c.reason.replace(/…$/, ""); loadDLQ().catch(showDLQError); },
  }, el("strong", {}, c.service), " · ", c.reason.length > 80 ? c.reason.slice(0, 80) + "…" : c.reason, " × " + c.count)));
  const rows = dlq.letters.map((l) => el("tr", { dataset: { seq: l.seq }, class: dlqOpen === l.seq ? "sel" : "", onclick: (ev) => { if (ev.target.type !== "checkbox") inspect(l.seq); } },
    el("td", {}, el("input", { type: "checkbox", checked: dlqSel.has(l.seq), "aria-label": "#" + l.seq,
      onchange: (ev) => { ev.target.checked ? dlqSel.add(l.seq) : dlqSel.delete(l.seq); renderButtons(); } })),
    el("td", { class: "num" }, l.seq), el("td", {}, fmtTime(l.time)), el("td", {}, l.service),
    el("td", { class: "reason", title: l.reason }, l.reason), el("td", {}, l.original_subject),
    el("td", {}, l.consumer || "—"), el("td", { class: "num" }, l.deliveries), el("td", { class: "muted" }, l.event_type || "—")));
  $("#dlq-rows").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "9", class: "muted" }, t("dlq.empty")))]));
  $("#dlq-all").checked = dlq.letters.length > 0 && dlq.letters.every((l) => dlqSel.has(l.seq));
  renderButtons();
}

function renderButtons() {
  $("#dlq-redrive").disabled = $("#dlq-discard").disabled = dlqSel.size === 0;
}

async function inspect(seq) {
  dlqOpen = seq;
  const d = await api("/api/ops/dlq/" + seq).catch((e) => { showDLQError(e); return null; });
  if (!d) return;
  let body = d.data;
  try { body = JSON.stringify(JSON.parse(d.data), null, 2); } catch { /* not JSON: as is */ }
  $("#dlq-detail").replaceChildren(
    el("strong", {}, "#" + d.seq + " · " + d.service + " · " + (d.event_type || "") + " " + (d.event_id || "")),
    el("h3", {}, t("dlq.error")), el("div", { class: "err" }, d.reason),
    el("h3", {}, t("dlq.headers")), el("pre", { class: "json headers" }, Object.entries(d.headers).sort().map(([k, v]) => k + ": " + v).join("\n")),
    el("h3", {}, t("dlq.data"), d.truncated ? " " + t("dlq.truncated") : ""), el("pre", { class: "json data" }, body));
  $("#dlq-detail").hidden = false;
  document.querySelectorAll("#dlq-rows tr").forEach((tr) => tr.classList.toggle("sel", tr.dataset.seq === String(seq)));
}

function showResult(text, ok) { const r = $("#dlq-result"); r.className = ok ? "ok" : "bad"; r.textContent = text; }
function showDLQError(e) { showResult(t("error") + ": " + e.message, false); }

async function act(action, note) {
  const body = { seqs: [...dlqSel] };
  if (note) body.note = note;
  try {
    const res = await api("/api/ops/dlq/" + action, { method: "POST", body });
    showResult(t(action === "redrive" ? "dlq.redriven" : "dlq.discarded", { n: res.count }) + (res.error ? " · " + res.error : ""), !res.error);
    dlqSel.clear();
    if (res.seqs.includes(dlqOpen)) { dlqOpen = null; $("#dlq-detail").hidden = true; }
  } catch (e) { showDLQError(e); }
  await loadDLQ().catch(showDLQError);
}

function startDLQ() {
  $("#dlq-service").addEventListener("change", () => loadDLQ().catch(showDLQError));
  $("#dlq-reason").addEventListener("change", () => loadDLQ().catch(showDLQError));
  $("#dlq-refresh").addEventListener("click", () => loadDLQ().catch(showDLQError));
  $("#dlq-all").addEventListener("change", (ev) => {
    for (const l of dlq ? dlq.letters : []) ev.target.checked ? dlqSel.add(l.seq) : dlqSel.delete(l.seq);
    renderDLQ();
  });
  $("#dlq-redrive").addEventListener("click", () => act("redrive"));
  $("#dlq-discard").addEventListener("click", () => { $("#dlq-note-form").hidden = false; $("#dlq-note").focus(); });
  $("#dlq-note-cancel").addEventListener("click", () => { $("#dlq-note-form").hidden = true; });
  $("#dlq-note-ok").addEventListener("click", () => {
    const note = $("#dlq-note").value.trim();
    if (!note) { showResult(t("dlq.note.required"), false); return; }
    $("#dlq-note-form").hidden = true; $("#dlq-note").value = "";
    act("discard", note);
  });
  loadDLQ().catch(showDLQError);
}

let timer = null;
function loadSoon() { clearTimeout(timer); timer = setTimeout(() => load().catch(() => {}), 1000); }

function start() {
  applyI18n();
  $("#lang-toggle").addEventListener("click", () => toggleLang(render));
  $("#window").addEventListener("change", load);
  load().catch(() => {});
  startDLQ();
  const es = new EventSource("/api/events");
  es.onopen = () => $("#live").classList.add("on");
  es.onerror = () => $("#live").classList.remove("on");
  es.onmessage = (m) => { const n = JSON.parse(m.data); if (n.type === "omni.audit.call.recorded" || n.type === "desk.alerts" || n.type.startsWith("omni.ops.canary.")) loadSoon(); };
  setInterval(() => { load().catch(() => {}); loadDLQ().catch(() => {}); }, 15000);
}
start();
