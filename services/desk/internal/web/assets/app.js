// The workbench: inbox, conversation timeline with tools and reply box, customer 360 panel,
// alert banners; live over Server-Sent Events (/api/events). Everything shown comes from /api.
"use strict";

const CHANNELS = ["wechatkf", "wecom", "douyin", "kuaishou", "weibo", "sms", "webchat", "voice"];
const state = {
  me: null, agents: [], conversations: new Map(), selected: null, timeline: null, customer: null,
  filters: { channel: "", status: "open", assignee: "" }, alerts: [], dismissed: new Set(JSON.parse(sessionStorage.getItem("desk.dismissed") || "[]")),
  openForm: null, replyChannel: "", calls: new Map(), // ringing calls: call_id -> {call, customer}
  drafts: new Map(), // conversation id -> {text, note}: the reply box's draft, kept across re-renders and switches
};

const $ = (sel) => document.querySelector(sel);

function badge(ch) { return el("span", { class: "badge ch-" + ch, title: ch }, channelLabel(ch)); }

function toast(msg, kind) {
  let box = $("#toasts");
  if (!box) { box = el("div", { id: "toasts", class: "toasts", "aria-live": "polite" }); document.body.append(box); }
  const n = el("div", { class: "toast " + (kind || "") }, msg);
  box.append(n);
  setTimeout(() => n.remove(), 3500);
}

// ---------- inbox

function renderFilters() {
  const ch = $("#f-channel"), as = $("#f-assignee");
  ch.replaceChildren(el("option", { value: "" }, t("filter.channel") + ": " + t("all")),
    ...CHANNELS.map((c) => el("option", { value: c, selected: state.filters.channel === c }, channelLabel(c))));
  as.replaceChildren(el("option", { value: "" }, t("filter.assignee") + ": " + t("all")),
    el("option", { value: "me", selected: state.filters.assignee === "me" }, t("assignee.me")),
    el("option", { value: "none", selected: state.filters.assignee === "none" }, t("assignee.none")),
    ...state.agents.map((a) => el("option", { value: a.id, selected: state.filters.assignee === a.id }, a.name + " (" + a.load + "/" + a.capacity + ")")));
  $("#f-status").value = state.filters.status;
}

async function loadInbox() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state.filters)) if (v) q.set(k, v);
  const { conversations } = await api("/api/conversations?" + q);
  state.conversations = new Map(conversations.map((c) => [c.id, c]));
  renderInbox();
}

function matchesFilters(c) {
  const f = state.filters;
  if (f.channel && !c.channels.includes(f.channel)) return false;
  if (f.status === "open" && c.status !== "open") return false;
  if (f.status === "closed" && c.status !== "closed") return false;
  if (f.status === "all" && c.status === "merged") return false;
  if (f.assignee === "none" && c.assignee) return false;
  if (f.assignee === "me" && c.assignee !== (state.me && state.me.principal.agent_id)) return false;
  if (f.assignee && !["me", "none"].includes(f.assignee) && c.assignee !== f.assignee) return false;
  return true;
}

function agentName(id) { const a = state.agents.find((x) => x.id === id); return a ? a.name : id; }

function renderInbox() {
  const list = [...state.conversations.values()].filter(matchesFilters).sort((a, b) => b.last_event_at.localeCompare(a.last_event_at));
  const ul = $("#conversations");
  if (!list.length) { ul.replaceChildren(el("li", { class: "empty" }, t("empty.inbox"))); return; }
  const now = Date.now();
  ul.replaceChildren(...list.map((c) => el("li", {
    class: "conv" + (c.id === state.selected ? " selected" : "") + (c.unread ? " unread" : "") + (c.sentiment === "negative" ? " negative" : ""),
    dataset: { id: c.id }, tabindex: "0", onclick: () => select(c.id), onkeydown: (e) => { if (e.key === "Enter") select(c.id); },
  },
    el("div", { class: "conv-top" },
      el("span", { class: "conv-name" }, c.sentiment === "negative" ? el("span", { class: "neg-flag", title: t("alert.sentiment") }, "⚠ ") : null, c.customer_name || c.customer_id.slice(0, 8)),
      el("span", { class: "badges" }, ...c.channels.map(badge)),
      c.unread ? el("span", { class: "unread-count", title: "unread" }, c.unread) : null),
    el("div", { class: "conv-preview" }, c.last_direction === "outbound" ? "↩ " : "", c.last_preview || ""),
    el("div", { class: "conv-meta" },
      el("span", { class: "assignee" + (c.assignee ? "" : " none") }, c.assignee ? agentName(c.assignee) : t("unassigned")),
      c.waiting_since && c.status === "open" ? el("span", { class: "waiting" + (now - Date.parse(c.waiting_since) > 5 * 60e3 ? " late" : "") },
        t("waiting") + " " + fmtDuration(now - Date.parse(c.waiting_since))) : null,
      el("span", { class: "time" }, fmtTime(c.last_message_at || c.last_event_at))),
  )));
}

// ---------- conversation

async function select(id) {
  state.selected = id;
  state.openForm = null;
  state.replyChannel = "";
  renderInbox();
  await Promise.all([loadTimeline(), loadCustomer()]);
  const c = state.conversations.get(id);
  if (c && c.unread) api("/api/conversations/" + id + "/read", { method: "POST" }).catch(() => {});
}

async function loadTimeline() {
  if (!state.selected) return;
  const id = state.selected;
  const tl = await api("/api/conversations/" + id + "/timeline");
  if (id !== state.selected) return;
  state.timeline = tl;
  state.conversations.set(tl.conversation.id, tl.conversation);
  renderConversation();
}

async function loadCustomer() {
  const c = state.conversations.get(state.selected) || (state.timeline && state.timeline.conversation);
  if (!c) return;
  const cu = await api("/api/customers/" + c.customer_id);
  if (state.selected !== c.id) return;
  state.customer = cu;
  renderPanel();
  renderReplyChannels();
}

function textOf(body) {
  if (!body) return "";
  switch (body.type) {
    case "text": return body.text;
    case "link": return (body.link.title || "") + " " + body.link.url;
    case "location": return "[location] " + (body.location.name || "") + " " + (body.location.address || "");
    case "event": return "[" + body.event.name + "]";
    default: return "[" + body.type + "]" + (body.file_name ? " " + body.file_name : "");
  }
}

function isSupervisor() { return !!(state.me && state.me.principal.roles.includes("supervisor")); }

// renderSystemEvent renders a channel's system event (a customer entering the session, sharing
// a contact) as a note on the timeline, not as something the customer said.
function renderSystemEvent(m) {
  const ev = m.body.event || {};
  const key = "sysevent." + ev.name;
  const label = MESSAGES.en[key] ? t(key) : t("sysevent.other") + " · " + (ev.name || "?");
  const scene = ev.detail && ev.detail.scene;
  return el("div", { class: "timeline-note system-event", dataset: { id: m.event_id, event: ev.name || "" } },
    badge(m.channel), " ", label, scene ? " · " + t("sysevent.scene") + " " + scene : "", " · ", fmtTime(m.sent_at));
}

function renderMessage(m) {
  const body = m.body || {};
  if (body.type === "event" && body.event) return renderSystemEvent(m);
  const content = body.type === "image" && body.media_url
    ? el("img", { src: body.media_url, alt: "image", class: "msg-image" })
    : body.type === "link" && body.link ? el("a", { href: body.link.url, target: "_blank", rel: "noopener" }, body.link.title || body.link.url)
    : el("span", {}, textOf(body));
  return el("div", { class: "msg " + m.direction, dataset: { id: m.event_id } },
    el("div", { class: "msg-bubble" }, content),
    el("div", { class: "msg-meta" }, sentimentMark(m), badge(m.channel), " ",
      m.direction === "outbound" && m.agent_id ? agentName(m.agent_id) + " · " : "",
      fmtTime(m.sent_at),
      m.direction === "outbound" ? el("span", { class: "status st-" + (m.status || "pending"), title: m.error || "" },
        " · " + t("status." + (m.status || "pending")) + (m.status === "failed" && (m.error_code || m.error) ? " (" + (m.error_code || m.error) + ")" : "")) : null));
}

function routeText(r, lang) {
  const ev = (r.events || [])[0];
  const st = MESSAGES[lang]["route." + r.status] || r.status;
  if (lang === "zh") {
    return "您好，您的包裹 " + r.tracking_number + " 当前状态：" + (r.status_text || st) + "。" +
      (ev ? "最新进展：" + new Date(ev.at).toLocaleString("zh-CN") + " " + (ev.location ? ev.location + " " : "") + ev.description + "。" : "") +
      (r.eta ? "预计送达：" + new Date(r.eta).toLocaleString("zh-CN") + "。" : "");
  }
  return "Hello, your parcel " + r.tracking_number + " is: " + (st || r.status_text) + "." +
    (ev ? " Latest: " + new Date(ev.at).toLocaleString("en-GB") + " " + (ev.location ? ev.location + " — " : "") + ev.description + "." : "") +
    (r.eta ? " Expected delivery: " + new Date(r.eta).toLocaleString("en-GB") + "." : "");
}

function customerLang() { const c = state.timeline && state.timeline.conversation; return c && c.language === "en" ? "en" : "zh"; }

// paymentStatus is the status (paid, closed, refunded) the timeline has for the payment link
// requested as correlationID, or "".
function paymentStatus(correlationID) {
  const items = (state.timeline && state.timeline.items) || [];
  const s = items.find((i) => i.kind === "tool_result" && i.result && i.result.tool === "payment" && i.result.op === "status" && i.result.correlation_id === correlationID);
  return s ? s.result.outcome : "";
}

function renderToolResult(r) {
  const res = r.result || {};
  const head = (title) => el("div", { class: "card-head" }, el("span", { class: "tool-name" }, r.tool + "." + r.op), " ", title, el("span", { class: "time" }, fmtTime(r.at)));
  if (r.outcome === "failed") {
    const fb = res.fallback || {};
    return el("div", { class: "card tool-card failed", dataset: { tool: r.tool, op: r.op } }, head(t("failed")),
      el("div", { class: "card-body" }, (res.error_code ? "[" + res.error_code + "] " : "") + (res.error || ""),
        fb.note || fb.manual_url ? el("div", { class: "fallback" }, el("strong", {}, t("fallback") + ": "), fb.note || "",
          fb.manual_url ? el("a", { href: fb.manual_url, target: "_blank", rel: "noopener noreferrer", class: "manual-link" }, " " + t("manual") + " ↗") : null) : null,
        renderFallbackArticles(fb))); // assist.js
  }
  if (r.tool === "logistics" && r.op === "route") {
    const events = (res.events || []).slice(0, 6);
    return el("div", { class: "card route-card", dataset: { tracking: res.tracking_number } }, head(t("route.card")),
      el("div", { class: "card-body" },
        el("div", { class: "route-summary" }, el("strong", {}, res.tracking_number), " · ", res.carrier || res.provider, " · ",
          el("span", { class: "route-status rs-" + res.status }, res.status_text || t("route." + res.status)),
          res.eta ? el("span", { class: "muted" }, " · " + t("route.eta") + " " + fmtTime(res.eta)) : null),
        el("ol", { class: "route-events" }, ...events.map((e) => el("li", {}, el("span", { class: "time" }, fmtTime(e.at)), " ", e.location ? el("span", { class: "loc" }, e.location + " ") : null, e.description))),
        el("button", { class: "primary send-route", onclick: (ev) => sendText(routeText(res, customerLang()), ev.target) }, t("send.customer"))));
  }
  if (r.tool === "ticket" && r.op === "create") {
    return el("div", { class: "card tool-card" }, head(t("ticket.created")),
      el("div", { class: "card-body" }, el("strong", {}, res.ticket_id), " · ", res.provider, res.status ? " · " + res.status : "",
        res.url ? el("a", { href: res.url, target: "_blank", rel: "noopener noreferrer" }, " ↗") : null));
  }
  if (r.tool === "payment" && r.op === "link") {
    const amt = res.amount ? res.amount.value + " " + res.amount.currency : "";
    const text = (customerLang() === "zh" ? "请通过以下链接完成支付（" + amt + "）：" : "Please complete your payment (" + amt + ") here: ") + res.url;
    const st = paymentStatus(r.correlation_id);
    return el("div", { class: "card tool-card payment-card" + (st ? " " + st : ""), dataset: { status: st || "pending" } }, head(t(st ? "payment." + st : "payment.created")),
      el("div", { class: "card-body" }, el("strong", {}, amt), " · ", res.provider, " ", el("a", { href: res.url, target: "_blank", rel: "noopener noreferrer" }, res.url),
        res.qr_code ? el("div", { class: "qr-code" }, t("payment.qr") + ": ", el("code", {}, res.qr_code)) : null,
        st ? null : el("button", { class: "primary send-payment", onclick: (ev) => sendText(text, ev.target) }, t("send.customer"))));
  }
  if (r.tool === "payment" && r.op === "status") {
    return el("div", { class: "card tool-card payment-status " + r.outcome }, head(t("payment." + r.outcome)),
      el("div", { class: "card-body" }, res.amount ? el("strong", {}, res.amount.value + " " + res.amount.currency) : null, " · ", res.provider || "", res.transaction_id ? " · " + res.transaction_id : ""));
  }
  if (r.tool === "ai" && r.op === "suggest") {
    const s = res.sentiment;
    return el("div", { class: "card tool-card ai-card" }, head(t("ai.suggestions")),
      el("div", { class: "card-body" },
        s ? el("div", { class: "sentiment s-" + s.label }, t("sentiment") + ": " + t("sentiment." + s.label)) : null,
        el("ul", { class: "suggestions" }, ...(res.suggestions || []).map((x) => el("li", {}, el("span", {}, x.text),
          el("button", { class: "ghost use-suggestion", onclick: () => useSuggestion(r, x.text) }, t("use")), rejectButton(r)))))); // assist.js
  }
  if (r.tool === "ai" && r.op === "summary") {
    return el("div", { class: "card tool-card summary-card" }, head(t("summary")),
      el("div", { class: "card-body" }, summaryView({ text: res.summary, source: res.source, business_type: res.business_type,
        model: res.provenance && res.provenance.model })));
  }
  if (r.tool === "crm") {
    const found = res.found;
    return el("div", { class: "card tool-card crm-card" }, head(found ? t("crm.found") : t("crm.notfound")),
      el("div", { class: "card-body muted" }, res.provider || "", found && res.profile ? " · " + Object.keys(res.profile).join(", ") : ""));
  }
  return el("div", { class: "card tool-card" }, head(r.outcome), el("pre", { class: "card-body json" }, JSON.stringify(res, null, 2)));
}

// ---------- calls

function fmtDuration(ms) { const s = Math.round((ms || 0) / 1000); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); }

function renderCall(c) {
  const party = c.party || {};
  return el("div", { class: "sys call call-" + c.state, dataset: { id: c.call_id } },
    el("strong", {}, "☎ " + t("call." + c.direction) + " · " + t("call.state." + c.state)), " ",
    el("code", {}, party.masked || ""), " · " + fmtTime(c.started_at || c.at),
    c.ended_at ? " · " + t("call.duration") + " " + fmtDuration(c.duration_ms) + (c.talk_ms ? " (" + t("call.talk") + " " + fmtDuration(c.talk_ms) + ")" : "") : "",
    c.hangup_side ? el("span", { class: "muted" }, " · " + t("call.hangup") + ": " + c.hangup_side) : null,
    c.play_url ? el("div", { class: "recording" }, el("audio", { controls: true, preload: "none", src: c.play_url, title: t("call.recording") }))
      : c.recording_url ? [" · ", el("span", { class: "muted recording" }, t("call.recording") + ": " + c.recording_url)] : null,
    c.transfer ? callTransfer(c.transfer) : null,
    callTranscript(c),
    c.state === "ringing" || c.state === "answered" ? callControls(c) : null);
}

// The state of the call's transcript: being made (live while the call is up, pending until a
// provider call's recording is transcribed), partial or none; nothing when it is complete.
function callTranscript(c) {
  const s = c.transcript;
  if ((s === "live" && c.state === "answered") || s === "pending")
    return el("div", { class: "call-transcript transcribing", dataset: { transcript: s } }, "✎ " + t("call.transcript.transcribing"));
  if (s === "partial" || s === "none")
    return el("div", { class: "call-transcript " + s, role: "status", dataset: { transcript: s } }, "⚠ " + t("call.transcript." + s));
  return null;
}

// The outcome of the call's latest transfer: where it went, or why it did not (the reason, and
// the trunk's own words).
function callTransfer(x) {
  if (x.outcome === "transferred")
    return el("div", { class: "call-transfer-outcome ok" }, "↪ " + t("call.transfer.transferred") + " " + x.target + " · " + fmtTime(x.at));
  return el("div", { class: "call-transfer-outcome failed", role: "status" },
    "⚠ " + t("call.transfer.failed") + " (" + x.target + "): " + t("call.transfer.reason." + x.reason) +
    (x.detail ? " — " + x.detail : "") + " · " + fmtTime(x.at));
}

// The controls of a live call (POST /api/calls/{id}/hangup|transfer|prompt; the API checks that
// the agent is the conversation's assignee or a supervisor). A transfer or a prompt needs an
// answered call.
function callControls(c) {
  const target = el("input", { class: "call-transfer-target", name: "target", placeholder: t("call.transfer.target"), size: 12,
    disabled: c.state !== "answered", "aria-label": t("call.transfer.target") });
  const send = async (op, body) => {
    try { await api("/api/calls/" + c.call_id + "/" + op, { method: "POST", body }); toast(t("requested.ok"), "ok"); }
    catch (e) { toast(t("error") + ": " + e.message, "error"); }
  };
  const text = el("input", { class: "call-prompt-text", name: "text", placeholder: t("call.prompt.text"), maxlength: 300,
    disabled: c.state !== "answered", "aria-label": t("call.prompt.text") });
  return el("div", { class: "call-controls" },
    el("button", { type: "button", class: "ghost danger small call-hangup", onclick: () => send("hangup", {}) }, t("call.hangup.button")),
    el("form", { class: "call-transfer-form", onsubmit: (ev) => { ev.preventDefault(); if (target.value.trim()) send("transfer", { target: target.value.trim() }); } },
      target, el("button", { type: "submit", class: "ghost small call-transfer", disabled: c.state !== "answered" }, t("call.transfer"))),
    el("form", { class: "call-prompt-form", onsubmit: (ev) => { ev.preventDefault(); if (text.value.trim()) send("prompt", { text: text.value.trim() }).then(() => { text.value = ""; }); } },
      text, el("button", { type: "submit", class: "ghost small call-prompt", disabled: c.state !== "answered" }, t("call.prompt"))));
}

// The ringing calls' banners (screen pop): the caller's customer — name and identities — before
// the call is answered, and the way to its conversation.
function renderCalls() {
  const box = $("#calls");
  if (!box) return;
  box.replaceChildren(...[...state.calls.values()].map(({ call, customer }) => {
    const cu = customer || {};
    const party = call.direction === "outbound" ? call.to : call.from;
    return el("div", { class: "banner banner-call", role: "alert", dataset: { callId: call.call_id, conversationId: call.conversation_id } },
      el("strong", {}, "☎ " + t("call.ringing")), " ",
      el("span", { class: "call-customer" }, cu.display_name || call.customer_id.slice(0, 8)), " ",
      el("code", {}, (party && party.masked) || ""),
      el("span", { class: "call-identities muted" }, ...(cu.identities || []).map((i) => " · " + i.kind + " " + i.masked)),
      el("button", { class: "ghost small", onclick: () => select(call.conversation_id) }, t("call.open")));
  }));
}

function onCall(n) {
  const { call, customer } = n.data || {};
  if (!call) return;
  if (call.state === "ringing") {
    state.calls.set(call.call_id, { call, customer });
    // Screen pop: an agent with no conversation open gets the caller's at once.
    if (!state.selected) select(call.conversation_id).catch(() => {});
  } else {
    state.calls.delete(call.call_id);
  }
  renderCalls();
}

function renderItem(it) {
  switch (it.kind) {
    case "message": return renderMessage(it.message);
    case "call": return renderCall(it.call);
    case "tool_result": return renderToolResult(it.result);
    case "tool_request": {
      const q = it.request;
      return el("div", { class: "sys tool-request" + (q.answered ? " answered" : " pending"), dataset: { id: q.event_id } },
        el("span", { class: "tool-name" }, q.tool + "." + q.op), " " + t("requested"),
        q.agent_id ? " · " + agentName(q.agent_id) : "", " · " + fmtTime(q.requested_at),
        q.answered ? "" : el("span", { class: "muted" }, " · " + t("waiting.result")));
    }
    case "note": {
      const n = it.note;
      const text = el("div", { class: "note-text" }, ...n.text.split(/(@[A-Za-z0-9][A-Za-z0-9._@-]*)/).map((part) =>
        part.startsWith("@") && n.mentions.includes(part.slice(1).replace(/[.@-]+$/, "")) ? el("strong", { class: "mention" }, part) : part));
      return el("div", { class: "note", dataset: { id: n.note_id } },
        el("div", { class: "note-head" }, el("span", { class: "note-label" }, t("note")), " · " + agentName(n.author) + " · " + fmtTime(n.at)), text);
    }
    case "assignment": {
      const a = it.assignment;
      return el("div", { class: "sys assignment" }, t("assigned.to") + " ", el("strong", {}, agentName(a.agent_id)),
        " · " + t("rule." + a.rule) + (a.note ? " — " + a.note : "") + " · " + fmtTime(a.at));
    }
  }
  return null;
}

function toolButton(id, key, form) {
  return el("button", { id, class: "tool" + (state.openForm === form ? " on" : ""), onclick: () => {
    if (form === "ai") { requestTool("ai", "suggest", {}); return; }
    state.openForm = state.openForm === form ? null : form; renderTools();
  } }, t(key));
}

function guessTracking() {
  const items = (state.timeline && state.timeline.items) || [];
  const re = /\b(SF\d{10,15}|JD[A-Z0-9]{10,15}|YT\d{10,15}|[A-Z]{2}\d{9}[A-Z]{2}|\d{12,15})\b/i;
  for (let i = items.length - 1; i >= 0; i--) {
    const m = items[i].kind === "message" && items[i].message.direction === "inbound" && items[i].message.body.type === "text" && re.exec(items[i].message.body.text);
    if (m) return m[1].toUpperCase();
  }
  return "";
}

function renderTools() {
  const box = $("#tools");
  if (!box) return;
  const bar = el("div", { class: "tool-bar" },
    toolButton("tool-track", "tool.track", "track"), toolButton("tool-ticket", "tool.ticket", "ticket"),
    toolButton("tool-payment", "tool.payment", "payment"), toolButton("tool-ai", "tool.ai", "ai"));
  let form = null;
  const field = (label, input) => el("label", {}, el("span", {}, t(label)), input);
  const actions = (onsubmit) => el("div", { class: "form-actions" },
    el("button", { type: "submit", class: "primary", id: "tool-submit" }, t("submit")),
    el("button", { type: "button", class: "ghost", onclick: () => { state.openForm = null; renderTools(); } }, t("cancel")));
  const submit = (fn) => (e) => { e.preventDefault(); fn(new FormData(e.target)); };
  if (state.openForm === "track") {
    form = el("form", { class: "tool-form", id: "track-form", onsubmit: submit((f) => {
      const body = { tracking_number: f.get("tracking_number").trim() };
      if (f.get("carrier")) body.carrier = f.get("carrier");
      requestTool("logistics", "route", body);
    }) },
      field("track.number", el("input", { name: "tracking_number", id: "track-number", required: true, value: guessTracking(), pattern: "[A-Za-z0-9\\-]{4,64}" })),
      field("track.carrier", el("select", { name: "carrier" }, el("option", { value: "" }, "—"), el("option", { value: "sf_express" }, "顺丰 SF Express"), el("option", { value: "cainiao" }, "菜鸟 Cainiao"))),
      actions());
  } else if (state.openForm === "ticket") {
    const c = state.timeline.conversation;
    form = el("form", { class: "tool-form", id: "ticket-form", onsubmit: submit((f) => requestTool("ticket", "create", { subject: f.get("subject"), description: f.get("description"), priority: f.get("priority") })) },
      field("ticket.subject", el("input", { name: "subject", required: true, maxlength: "256", value: (c.customer_name ? c.customer_name + ": " : "") + (c.last_preview || "").slice(0, 80) })),
      field("ticket.priority", el("select", { name: "priority" }, ...["normal", "low", "high", "urgent"].map((p) => el("option", { value: p }, t("priority." + p))))),
      field("ticket.description", el("textarea", { name: "description", rows: "2", maxlength: "10000" })),
      actions());
  } else if (state.openForm === "payment") {
    form = el("form", { class: "tool-form", id: "payment-form", onsubmit: submit((f) => requestTool("payment", "link", { amount: { value: f.get("amount"), currency: "CNY" }, description: f.get("description") })) },
      field("payment.amount", el("input", { name: "amount", required: true, pattern: "(0|[1-9][0-9]{0,9})(\\.[0-9]{1,2})?", placeholder: "99.00" })),
      field("payment.description", el("input", { name: "description", required: true, maxlength: "256" })),
      actions());
  }
  box.replaceChildren(bar, form || "");
}

async function requestTool(tool, op, body) {
  try {
    await api("/api/conversations/" + state.selected + "/tools/" + tool + "/" + op, { method: "POST", body });
    state.openForm = null;
    toast(t("requested.ok") + ": " + tool + "." + op, "ok");
    await loadTimeline();
  } catch (e) { toast(t("error") + ": " + e.message, "error"); }
}

async function sendText(text, button) {
  if (button) button.disabled = true;
  try {
    const body = { text };
    if (state.replyChannel) body.channel = state.replyChannel;
    await api("/api/conversations/" + state.selected + "/reply", { method: "POST", body });
    toast(t("sent.ok"), "ok");
    await loadTimeline();
    return true;
  } catch (e) { toast(t("error") + ": " + e.message, "error"); if (button) button.disabled = false; return false; }
}

async function addNote(text, button) {
  if (button) button.disabled = true;
  try {
    await api("/api/conversations/" + state.selected + "/notes", { method: "POST", body: { text } });
    toast(t("note.ok"), "ok");
    reloadSelectedSoon();
    return true;
  } catch (e) { toast(t("error") + ": " + e.message, "error"); return false; }
}

// ---------- canned responses: "/" and a shortcut in the reply box, filled in for the conversation

async function cannedList() {
  if (!state.canned || state.canned.conv !== state.selected) {
    const conv = state.selected, r = await api("/api/conversations/" + conv + "/canned");
    state.canned = { conv, list: r.canned || [] };
  }
  return state.canned.list;
}

function cannedInput(ta) {
  const m = /^\/([a-z0-9_-]*)$/.exec(ta.value);
  if (!m) { closeCanned(); return; }
  if (m[1] === "") state.canned = null; // each "/" asks again: the order number may have changed
  cannedList().then((list) => {
    if (ta.value !== "/" + m[1]) return; // typed on meanwhile
    const hits = list.filter((c) => c.shortcut.startsWith(m[1])).slice(0, 8);
    let picker = $("#canned-picker");
    if (!picker) { picker = el("ul", { id: "canned-picker", class: "canned-picker", role: "listbox", "aria-label": t("canned") }); ta.before(picker); }
    picker.replaceChildren(...(hits.length ? hits.map((c, i) => el("li", { role: "option", class: i === 0 ? "active" : "", "aria-selected": String(i === 0), dataset: { id: c.canned_id },
      onmousedown: (e) => { e.preventDefault(); useCanned(c); } }, el("strong", {}, "/" + c.shortcut), " " + c.title,
      c.shared ? el("span", { class: "muted" }, " · " + t("canned.shared")) : "")) : [el("li", { class: "muted" }, t("canned.none"))]));
  }).catch((e) => toast(t("error") + ": " + e.message, "error"));
}

function closeCanned() { const p = $("#canned-picker"); if (p) p.remove(); }

// cannedKey moves through the picker (↑ ↓), picks (Enter, Tab) or closes it (Esc).
function cannedKey(e) {
  const p = $("#canned-picker");
  const opts = p ? [...p.querySelectorAll("li[role=option]")] : [];
  if (!p || !opts.length) { if (p && e.key === "Escape") { closeCanned(); return true; } return false; }
  let i = opts.findIndex((o) => o.classList.contains("active"));
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    i = (i + (e.key === "ArrowDown" ? 1 : opts.length - 1)) % opts.length;
    opts.forEach((o, j) => { o.classList.toggle("active", j === i); o.setAttribute("aria-selected", String(j === i)); });
    return true;
  }
  if (e.key === "Enter" || e.key === "Tab") {
    e.preventDefault();
    const c = state.canned && state.canned.list.find((x) => x.canned_id === opts[Math.max(i, 0)].dataset.id);
    if (c) useCanned(c);
    return true;
  }
  if (e.key === "Escape") { closeCanned(); return true; }
  return false;
}

function useCanned(c) {
  const ta = $("#reply-text");
  ta.value = c.rendered || c.text;
  ta.focus();
  closeCanned();
  if (c.missing && c.missing.length) toast(t("canned.missing") + ": " + c.missing.join(", "), "warn");
}

// saveCanned keeps the reply box's text as a canned response: the agent's own, or shared when a
// supervisor says so.
async function saveCanned() {
  const text = $("#reply-text").value.trim();
  if (!text) { toast(t("canned.empty"), "warn"); return; }
  const shortcut = (window.prompt(t("canned.prompt")) || "").trim().replace(/^\//, "").toLowerCase();
  if (!shortcut) return;
  const shared = isSupervisor() && window.confirm(t("canned.share"));
  try {
    await api("/api/canned", { method: "POST", body: { shortcut, title: text.slice(0, 60), text, shared } });
    state.canned = null;
    toast(t("canned.ok") + ": /" + shortcut, "ok");
  } catch (e) { toast(t("error") + ": " + e.message, "error"); }
}

// A colleague @mentioned this agent in a note: say who, where, and go there on a click.
function onMention(n) {
  const note = n.data || {};
  const conv = state.conversations.get(n.conversation_id);
  toast(el("a", { href: "#", class: "mention-toast", onclick: (e) => { e.preventDefault(); select(n.conversation_id); } },
    t("mention.toast").replace("{agent}", agentName(note.author || "")) + ((conv && conv.customer_name) ? " · " + conv.customer_name : "") + ": " + (note.text || "").slice(0, 80)), "info");
}

function renderReplyChannels() {
  const sel = $("#reply-channel");
  if (!sel || !state.timeline) return;
  const c = state.timeline.conversation;
  const chans = new Set((state.customer && state.customer.reply_channels) || []);
  if (c.current_channel) chans.add(c.current_channel);
  const cur = state.replyChannel || c.current_channel || [...chans][0] || "";
  sel.replaceChildren(...[...chans].map((ch) => el("option", { value: ch, selected: ch === cur }, channelLabel(ch) + (ch === c.current_channel ? " ★" : ""))));
}

function renderConversation() {
  const tl = state.timeline, c = tl.conversation, root = $("#conversation");
  const meId = state.me && state.me.principal.agent_id;
  const transferSel = el("select", { id: "transfer-agent", "aria-label": "agent" }, ...state.agents.map((a) => el("option", { value: a.id, selected: a.id === c.assignee }, a.name + " (" + a.load + "/" + a.capacity + ")")));
  const head = el("div", { class: "conv-header" },
    el("div", { class: "conv-title" }, el("h2", {}, c.customer_name || c.customer_id.slice(0, 8)), el("span", { class: "badges" }, ...c.channels.map(badge)),
      el("span", { class: "pill st-" + c.status }, t("status." + c.status)),
      c.sentiment === "negative" ? el("span", { class: "pill negative" }, t("sentiment") + ": " + t("sentiment.negative")) : null),
    el("div", { class: "conv-actions" },
      el("span", { class: "muted" }, t("filter.assignee") + ": "), el("strong", { id: "assignee-name" }, c.assignee ? agentName(c.assignee) : t("unassigned")),
      // Take where it is allowed: an unassigned conversation, or any for a supervisor.
      c.status === "open" && c.assignee !== meId && (!c.assignee || isSupervisor()) ? el("button", { class: "ghost", id: "take", onclick: () => transfer(meId) }, t("take")) : null,
      c.status === "open" ? [transferSel, el("button", { class: "ghost", id: "transfer", onclick: () => transfer($("#transfer-agent").value) }, t("transfer"))] : null,
      c.status === "open" ? el("button", { class: "ghost danger", id: "close", onclick: () => command("close") }, t("close"))
        : c.status === "closed" ? el("button", { class: "ghost", id: "reopen", onclick: () => command("reopen") }, t("reopen")) : null));
  const items = el("div", { class: "timeline", id: "timeline" }, ...tl.items.map(renderItem));
  // The reply box doubles as the note box: "Private note" sends to the agents (and the ones
  // @mentioned), never to the customer.
  const draft = () => state.drafts.get(c.id) || { text: "", note: false };
  const noteMode = (on) => {
    state.drafts.set(c.id, { ...draft(), note: on });
    $("#reply-form").classList.toggle("note-mode", on);
    $("#reply-text").placeholder = t(on ? "note.placeholder" : "reply.placeholder");
    $("#reply-send").textContent = t(on ? "note.add" : "reply.send");
    $("#reply-channel").disabled = on;
  };
  const reply = el("form", { class: "reply", id: "reply-form", dataset: { conv: c.id }, onsubmit: async (e) => {
    e.preventDefault();
    const ta = $("#reply-text"); const text = ta.value.trim(); if (!text) return;
    const sent = $("#reply-note").checked ? await addNote(text, $("#reply-send"))
      : (await sendText(text, $("#reply-send"))) && (suggestionSent(text), true); // assist.js: feedback
    if (sent) { state.drafts.set(c.id, { ...draft(), text: "" }); if ($("#reply-text")) $("#reply-text").value = ""; }
    if ($("#reply-send")) $("#reply-send").disabled = false;
  } },
    el("textarea", { id: "reply-text", rows: "3", placeholder: t("reply.placeholder"), disabled: c.status !== "open", "aria-label": t("reply.placeholder"),
      oninput: (e) => cannedInput(e.target),
      onkeydown: (e) => { if (cannedKey(e)) return; if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); $("#reply-form").requestSubmit(); } } }),
    el("div", { class: "reply-actions" },
      el("label", { class: "note-toggle" }, el("input", { type: "checkbox", id: "reply-note", onchange: (e) => noteMode(e.target.checked) }), " " + t("note.mode")),
      el("button", { type: "button", class: "ghost small", id: "canned-save", title: t("canned.hint"), onclick: saveCanned }, t("canned.save")),
      el("span", { class: "muted" }, t("reply.via") + " "),
      el("select", { id: "reply-channel", "aria-label": "channel", onchange: (e) => { state.replyChannel = e.target.value; } }),
      el("button", { type: "submit", class: "primary", id: "reply-send", disabled: c.status !== "open" }, t("reply.send"))));
  // Updates re-render the conversation while the agent writes: the draft (per conversation),
  // the note mode, the focus and the caret stay.
  const prev = $("#reply-text"), focused = prev && document.activeElement === prev;
  const caret = prev ? [prev.selectionStart, prev.selectionEnd] : null;
  const prevForm = $("#reply-form");
  if (prev && prevForm && prevForm.dataset.conv) { // whatever set it (typing, a suggestion used, an article)
    state.drafts.set(prevForm.dataset.conv, { text: prev.value, note: $("#reply-note").checked });
  }
  root.replaceChildren(head, sentimentBanner(tl) || "", items, el("div", { id: "tools", class: "tools" }), reply);
  renderTools();
  renderReplyChannels();
  const d = draft();
  $("#reply-text").value = d.text;
  if (d.note) { $("#reply-note").checked = true; noteMode(true); }
  if (focused) { $("#reply-text").focus(); if (caret) $("#reply-text").setSelectionRange(caret[0], caret[1]); }
  items.scrollTop = items.scrollHeight;
  decorateLive(); // assist.js: suggestions being written
}

async function transfer(agentId) {
  try {
    await api("/api/conversations/" + state.selected + "/assign", { method: "POST", body: { agent_id: agentId } });
    await Promise.all([loadTimeline(), loadAgents()]);
  } catch (e) { toast(t("error") + ": " + e.message, "error"); }
}

async function command(cmd) {
  try { await api("/api/conversations/" + state.selected + "/" + cmd, { method: "POST", body: {} }); toast(t("requested.ok"), "ok"); }
  catch (e) { toast(t("error") + ": " + e.message, "error"); }
}

// ---------- 360 panel

function renderPanel() {
  const cu = state.customer, root = $("#panel-360");
  if (!cu) { root.replaceChildren(el("div", { class: "empty muted" }, t("panel.profile"))); return; }
  const profile = cu.profile || {}, sources = cu.profile_sources || {};
  const crm = cu.crm;
  const section = (key, ...body) => el("section", { class: "panel-section" }, el("h3", {}, t(key)), ...body);
  const none = () => el("p", { class: "muted" }, t("panel.none"));
  root.replaceChildren(
    el("div", { class: "profile" }, el("div", { class: "avatar" }, (cu.display_name || "?").slice(0, 1)),
      el("div", {}, el("div", { class: "profile-name" }, cu.display_name || cu.id.slice(0, 8)), el("div", { class: "muted small" }, cu.id))),
    section("panel.identities", (cu.identities || []).length ? el("ul", { class: "identities" }, ...cu.identities.map((i) =>
      el("li", {}, el("span", { class: "kind" }, i.kind), " ", el("code", {}, i.masked), " ", el("span", { class: "source" }, i.source)))) : none()),
    section("panel.crm",
      crm && crm.outcome === "failed" ? el("div", { class: "fallback" }, (crm.result.error || t("failed")),
        crm.result.fallback && crm.result.fallback.manual_url ? el("a", { href: crm.result.fallback.manual_url, target: "_blank", rel: "noopener noreferrer" }, " " + t("manual") + " ↗") : null) : null,
      Object.keys(profile).length ? el("dl", { class: "fields" }, ...Object.entries(profile).flatMap(([k, v]) => [
        el("dt", {}, k), el("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v), sources[k] ? el("span", { class: "source", title: sources[k].event_id }, " · " + sources[k].source) : null)])) : (crm && crm.outcome === "failed" ? null : none())),
    section("panel.orders", cu.orders && cu.orders.length ? el("ul", { class: "orders" }, ...cu.orders.slice(0, 5).map((o) =>
      el("li", {}, el("strong", {}, o.order_id || o.id || ""), " ", o.status || "", " ", o.amount ? (o.amount.value || o.amount) + " " + (o.amount.currency || "") : "", o.placed_at ? el("span", { class: "muted" }, " " + fmtTime(o.placed_at)) : null))) : none()),
    section("panel.history", el("ul", { class: "history", id: "past-conversations" }, ...(cu.conversations || []).map((c) =>
      el("li", { class: c.id === state.selected ? "current" : "", onclick: () => { if (!state.conversations.has(c.id)) state.conversations.set(c.id, c); select(c.id); } },
        el("span", { class: "badges" }, ...c.channels.map(badge)), " ", el("span", { class: "pill st-" + c.status }, t("status." + c.status)),
        " ", el("span", { class: "muted" }, fmtTime(c.opened_at)), el("div", { class: "conv-preview" }, c.last_preview || ""),
        c.summary ? summaryView(c.summary) : null)))),
  );
}

// summaryView is the summary of a past conversation's close: where it came from (AI or rules,
// the model in the tooltip), its business type, and the masked text.
function summaryView(s) {
  return el("div", { class: "conv-summary", dataset: { source: s.source } },
    el("span", { class: "pill summary-source src-" + s.source, title: s.model || "" }, t("summary") + " · " + t("summary." + s.source)),
    s.business_type ? el("span", { class: "pill summary-biz" }, t("biz." + s.business_type)) : null,
    " ", el("span", { class: "summary-text" }, s.text));
}

// ---------- alerts

function renderAlerts() {
  const box = $("#alerts");
  const list = state.alerts.filter((a) => !a.resolved_at && !state.dismissed.has(a.id) && alertVisible(a));
  box.replaceChildren(...list.slice(0, 3).map((a) => el("div", { class: "banner " + (a.kind === "ops" ? "banner-error" : "banner-warn"), role: "alert", dataset: { id: a.id } },
    el("strong", {}, a.kind === "ops" ? t("alert.ops") : t("alert.sentiment")), " ",
    a.kind === "ops" ? el("span", { title: a.title }, opsAlertText(a)) : el("a", { href: "#", onclick: (e) => { e.preventDefault(); select(a.conversation_id); } }, (state.conversations.get(a.conversation_id) || {}).customer_name || a.conversation_id.slice(0, 8)),
    el("span", { class: "muted" }, " · " + fmtTime(a.at)),
    el("button", { class: "ghost small", onclick: () => { state.dismissed.add(a.id); sessionStorage.setItem("desk.dismissed", JSON.stringify([...state.dismissed])); renderAlerts(); } }, t("dismiss")))));
}

async function loadAlerts() { state.alerts = (await api("/api/alerts")).alerts; renderAlerts(); }
async function loadAgents() { state.agents = (await api("/api/agents")).agents; renderFilters(); }

// ---------- live

let reloadTimer = null;
function reloadSelectedSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => { loadTimeline().catch(() => {}); }, 120);
}

function connect() {
  const es = new EventSource("/api/events");
  let first = true;
  es.onopen = () => $("#live").classList.add("on");
  es.onerror = () => $("#live").classList.remove("on");
  es.onmessage = (m) => {
    const n = JSON.parse(m.data);
    if (n.type === "desk.hello") {
      if (!first) { loadInbox(); loadAlerts(); if (state.selected) { loadTimeline(); loadCustomer(); } }
      first = false;
      return;
    }
    if (n.type === "omni.live.ai.suggest.delta") { onSuggestDelta(n); return; } // assist.js
    if (n.type === "desk.alerts") { state.alerts = n.data || []; renderAlerts(); return; }
    if (n.type === "desk.call") { onCall(n); if (n.conversation_id === state.selected) reloadSelectedSoon(); return; }
    if (n.type === "desk.mention") { onMention(n); return; }
    if (n.type === "omni.desk.canned.saved" || n.type === "omni.desk.canned.deleted") { state.canned = null; return; }
    if (n.type === "omni.desk.note.added") { if (n.conversation_id === state.selected) reloadSelectedSoon(); return; } // data is the note, not an inbox row
    if (n.type === "omni.desk.agent.updated" || n.type === "omni.desk.assignment.changed") loadAgents().then(renderInbox);
    if (n.data && n.conversation_id) { state.conversations.set(n.conversation_id, n.data); renderInbox(); }
    if (n.conversation_id && n.conversation_id === state.selected) reloadSelectedSoon();
    // Compare with the selected conversation's customer, not only the loaded one: an update that
    // lands while the panel is still loading (CRM result, assignment) must not be dropped.
    const sel = state.selected && state.conversations.get(state.selected);
    const shown = (state.customer && state.customer.id) || (sel && sel.customer_id);
    if (n.customer_id && n.customer_id === shown && !n.type.startsWith("desk.")) loadCustomer().catch(() => {});
  };
}

// ---------- start

async function start() {
  applyI18n();
  $("#lang-toggle").addEventListener("click", () => toggleLang(() => { renderFilters(); renderInbox(); if (state.timeline) renderConversation(); renderPanel(); renderAlerts(); }));
  for (const [id, key] of [["#f-channel", "channel"], ["#f-status", "status"], ["#f-assignee", "assignee"]]) {
    $(id).addEventListener("change", (e) => { state.filters[key] = e.target.value; loadInbox(); });
  }
  state.me = await api("/api/me");
  const p = state.me.principal;
  $("#me").textContent = (p.name || p.agent_id) + (p.roles.includes("supervisor") ? " ★" : "");
  await loadAgents();
  await Promise.all([loadInbox(), loadAlerts()]);
  renderPanel();
  connect();
  setInterval(renderInbox, 30e3); // waiting times
}

start().catch((e) => { if (e.message !== "unauthorized") toast(t("error") + ": " + e.message, "error"); });
