/*! omnibus web chat widget. Embed with one tag (see /webchat/ and services/webchat/README.md):
 *  <script src="https://desk.example.com/webchat/widget.js" defer></script>
 * Optional data-* attributes: lang (zh|en), title, greeting, color, position (right|left), open,
 * identity-kind, identity-value, identity-ts, identity-sig (a host-signed logged-in user).
 * No dependencies, no build step; the UI lives in a shadow root so the page's CSS cannot break it. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.OmnibusWebchat) return;

  var STRINGS = {
    zh: {
      title: "在线客服", open: "打开在线客服", close: "关闭聊天窗口", input: "输入消息",
      placeholder: "输入消息，回车发送", send: "发送", sending: "发送中", sent: "已发送",
      failed: "未发送", retry: "重试", connecting: "正在连接…", online: "在线",
      offline: "连接已断开，正在重连…", greeting: "您好！请问有什么可以帮您？",
      contactToggle: "留下手机号或邮箱", contactLabel: "手机号或邮箱",
      contactHint: "方便客服在您离开后联系您", contactSubmit: "提交", contactCancel: "取消",
      contactSaved: "已收到您的联系方式：", contactShared: "您留下了联系方式",
      you: "我", agent: "客服", unread: "条未读消息", rateLimited: "发送太频繁，请稍后再试",
      image: "图片", file: "文件", log: "聊天记录"
    },
    en: {
      title: "Chat with us", open: "Open chat", close: "Close chat", input: "Message",
      placeholder: "Type a message, Enter to send", send: "Send", sending: "Sending", sent: "Sent",
      failed: "Not sent", retry: "Retry", connecting: "Connecting…", online: "Online",
      offline: "Connection lost, reconnecting…", greeting: "Hello! How can we help you?",
      contactToggle: "Leave your phone or email", contactLabel: "Phone or email",
      contactHint: "So that an agent can reach you after you leave", contactSubmit: "Send",
      contactCancel: "Cancel", contactSaved: "Thanks, we have your contact: ",
      contactShared: "You left your contact details", you: "You", agent: "Agent",
      unread: "unread messages", rateLimited: "Too many messages, please wait a moment",
      image: "Image", file: "File", log: "Conversation"
    }
  };

  var ds = script.dataset;
  var base = new URL(".", script.src);
  var wsURL = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + base.pathname + "ws";
  var lang = (ds.lang || navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  var T = STRINGS[lang];
  var KEY = "omnibus.webchat:" + base.host;

  // Persistent state: the visitor's id and token, the outbox (messages not yet acknowledged, so a
  // reload resends them with the same cid) and the receipt cursors.
  function load() {
    try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch (e) { return {}; }
  }
  var st = load();
  st.outbox = st.outbox || [];
  st.read = st.read || 0; // highest seq read: agent messages above it are unread
  function save() {
    try { localStorage.setItem(KEY, JSON.stringify(st)); } catch (e) { /* private mode: in memory only */ }
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function newCID() {
    var b = new Uint8Array(12);
    (window.crypto || {}).getRandomValues ? crypto.getRandomValues(b) : b.forEach(function (_, i) { b[i] = Math.random() * 256; });
    return "c_" + Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }
  function httpURL(u) { return typeof u === "string" && /^https?:\/\//i.test(u) ? u : null; }

  // ---- UI ----
  var host = el("div");
  host.setAttribute("data-omnibus-webchat", "");
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var css = el("link");
  css.rel = "stylesheet";
  css.href = new URL("widget.css", base).href;
  root.appendChild(css);

  var wrap = el("div", "obwc" + (ds.position === "left" ? " obwc-left" : ""));
  if (ds.color && /^#[0-9a-f]{3,8}$/i.test(ds.color)) wrap.style.setProperty("--obwc-accent", ds.color);
  var launcher = el("button", "obwc-launcher");
  launcher.type = "button";
  launcher.setAttribute("aria-label", T.open);
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "obwc-panel");
  launcher.innerHTML = '<svg viewBox="0 0 24 24" width="28" height="28" aria-hidden="true" focusable="false"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2zm3 6v2h2v-2H7zm4 0v2h2v-2h-2zm4 0v2h2v-2h-2z"/></svg>';
  var badge = el("span", "obwc-badge");
  badge.hidden = true;
  launcher.appendChild(badge);

  var panel = el("section", "obwc-panel");
  panel.id = "obwc-panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-labelledby", "obwc-title");
  var header = el("header", "obwc-header");
  var titleBox = el("div");
  var title = el("h2", "obwc-title", ds.title || T.title);
  title.id = "obwc-title";
  var status = el("p", "obwc-status", T.connecting);
  status.setAttribute("role", "status");
  titleBox.appendChild(title);
  titleBox.appendChild(status);
  var closeBtn = el("button", "obwc-close", "×");
  closeBtn.type = "button";
  closeBtn.setAttribute("aria-label", T.close);
  header.appendChild(titleBox);
  header.appendChild(closeBtn);

  var list = el("ol", "obwc-log");
  list.setAttribute("role", "log");
  list.setAttribute("aria-live", "polite");
  list.setAttribute("aria-label", T.log);
  list.tabIndex = 0;
  var greeting = el("li", "obwc-note", ds.greeting || T.greeting);
  list.appendChild(greeting);

  var contactToggle = el("button", "obwc-link", T.contactToggle);
  contactToggle.type = "button";
  contactToggle.setAttribute("aria-expanded", "false");
  var contactForm = el("form", "obwc-contact");
  contactForm.hidden = true;
  contactForm.noValidate = true;
  var cLabel = el("label", null, T.contactLabel);
  cLabel.htmlFor = "obwc-contact-input";
  var cInput = el("input");
  cInput.id = "obwc-contact-input";
  cInput.type = "text";
  cInput.autocomplete = "on";
  cInput.setAttribute("aria-describedby", "obwc-contact-msg");
  var cMsg = el("p", "obwc-hint", T.contactHint);
  cMsg.id = "obwc-contact-msg";
  cMsg.setAttribute("aria-live", "polite");
  var cSubmit = el("button", "obwc-btn", T.contactSubmit);
  cSubmit.type = "submit";
  var cCancel = el("button", "obwc-link", T.contactCancel);
  cCancel.type = "button";
  [cLabel, cInput, cSubmit, cCancel, cMsg].forEach(function (n) { contactForm.appendChild(n); });

  var composer = el("form", "obwc-composer");
  var label = el("label", "obwc-sr", T.input);
  label.htmlFor = "obwc-input";
  var input = el("textarea");
  input.id = "obwc-input";
  input.rows = 1;
  input.maxLength = 4000;
  input.placeholder = T.placeholder;
  var sendBtn = el("button", "obwc-btn", T.send);
  sendBtn.type = "submit";
  composer.appendChild(label);
  composer.appendChild(input);
  composer.appendChild(sendBtn);

  [header, list, contactToggle, contactForm, composer].forEach(function (n) { panel.appendChild(n); });
  wrap.appendChild(panel);
  wrap.appendChild(launcher);
  root.appendChild(wrap);

  // ---- messages ----
  var bySeq = {};  // seq → true: shown
  var byCID = {};  // cid → <li> of my own messages
  var maxSeq = 0;  // highest seq shown on this page
  var unread = 0;

  function time(at) {
    var d = at ? new Date(at) : new Date();
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }
  function body(m) {
    var b = el("div", "obwc-bubble");
    m = m || {};
    if (m.type === "text") b.textContent = m.text;
    else if (m.type === "event") { b.textContent = T.contactShared; b.className += " obwc-event"; }
    else if (m.type === "link" && m.link && httpURL(m.link.url)) {
      var a = el("a", null, m.link.title || m.link.url);
      a.href = m.link.url; a.target = "_blank"; a.rel = "noopener noreferrer";
      b.appendChild(a);
      if (m.link.description) b.appendChild(el("p", "obwc-desc", m.link.description));
    } else if (m.type === "image" && httpURL(m.media_url)) {
      var img = el("img");
      img.src = m.media_url; img.alt = m.file_name || T.image; img.loading = "lazy";
      b.appendChild(img);
    } else if (m.type === "file" && httpURL(m.media_url)) {
      var f = el("a", null, (m.file_name || T.file) + " ↓");
      f.href = m.media_url; f.target = "_blank"; f.rel = "noopener noreferrer";
      b.appendChild(f);
    } else b.textContent = m.text || "…";
    return b;
  }
  function setState(li, state) {
    li.dataset.state = state;
    var meta = li.querySelector(".obwc-state");
    if (!meta) return;
    meta.textContent = T[state] || "";
    var r = li.querySelector(".obwc-retry");
    if (r) r.hidden = state !== "failed";
  }
  function add(from, message, at, cid) {
    var li = el("li", "obwc-msg obwc-" + from);
    li.appendChild(el("span", "obwc-sr", from === "visitor" ? T.you : T.agent));
    li.appendChild(body(message));
    var meta = el("div", "obwc-meta");
    meta.appendChild(el("time", null, time(at)));
    if (from === "visitor") {
      meta.appendChild(el("span", "obwc-state"));
      var retry = el("button", "obwc-retry", T.retry);
      retry.type = "button"; retry.hidden = true;
      retry.addEventListener("click", function () { resend(cid); });
      meta.appendChild(retry);
      byCID[cid] = li;
    }
    li.appendChild(meta);
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
    return li;
  }
  function showLog(f) {
    if (bySeq[f.seq]) return;       // a seq already shown: a resume overlap or another tab
    bySeq[f.seq] = true;
    maxSeq = Math.max(maxSeq, f.seq);
    if (f.from === "visitor") {
      var mine = f.cid && byCID[f.cid];
      if (mine) setState(mine, "sent");
      else setState(add("visitor", f.message, f.at, f.cid || ("seq" + f.seq)), "sent");
      return;
    }
    add("agent", f.message, f.at);
    if (f.seq > st.read && !isOpen()) { unread++; showBadge(); }
    receipts();
  }
  function showBadge() {
    badge.hidden = unread === 0;
    badge.textContent = unread > 9 ? "9+" : String(unread);
    launcher.setAttribute("aria-label", unread ? T.open + " (" + unread + " " + T.unread + ")" : T.open);
  }

  // ---- connection ----
  var ws = null, backoff = 1000, timer = null, connected = false, started = false, identityRefused = false;
  function sendFrame(f) {
    if (ws && connected && ws.readyState === 1) { ws.send(JSON.stringify(f)); return true; }
    return false;
  }
  function connect() {
    started = true;
    if (ws || !window.WebSocket) return;
    clearTimeout(timer);
    status.textContent = T.connecting;
    var sock = new WebSocket(wsURL);
    ws = sock;
    sock.onopen = function () {
      var hello = { type: "hello", since: maxSeq };
      if (st.visitor && st.token) { hello.visitor = st.visitor; hello.token = st.token; }
      if (ds.identityKind && ds.identityValue && ds.identitySig && !identityRefused) {
        hello.identity = { kind: ds.identityKind, value: ds.identityValue, ts: parseInt(ds.identityTs, 10) || 0, sig: ds.identitySig };
      }
      sock.send(JSON.stringify(hello));
    };
    sock.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f.type === "welcome") {
        connected = true; backoff = 1000;
        if (f.visitor !== st.visitor || f.reset) { st.visitor = f.visitor; st.read = 0; }
        st.token = f.token; save();
        if (!ds.title && f.title) title.textContent = f.title;
        if (!ds.greeting && f.greeting) greeting.textContent = f.greeting;
        if (f.reset) { bySeq = {}; maxSeq = 0; rDelivered = 0; rRead = 0; }
        status.textContent = T.online;
        st.outbox.forEach(function (m) { sendFrame(m); });
        receipts();
      } else if (f.type === "msg") showLog(f);
      else if (f.type === "ack") acked(f);
      else if (f.type === "error") failed(f);
    };
    sock.onclose = function (ev) {
      ws = null; connected = false;
      status.textContent = T.offline;
      if (ev.code === 4401) { delete st.visitor; delete st.token; save(); }
      if (ev.code === 4403) identityRefused = true;   // the host's signature is wrong or stale: chat anonymously
      var wait = ev.code === 1001 ? 200 : backoff;   // a replica restarting: come back at once
      backoff = Math.min(backoff * 2, 30000);
      timer = setTimeout(connect, wait / 2 + Math.random() * wait / 2);
    };
  }
  function acked(f) {
    st.outbox = st.outbox.filter(function (m) { return m.cid !== f.cid; });
    save();
    if (byCID[f.cid]) setState(byCID[f.cid], "sent");
    if (f.cid === pendingContact) {
      pendingContact = null;
      cMsg.textContent = T.contactSaved + (f.phone || f.email || "");
      cInput.value = "";
    }
  }
  function failed(f) {
    if (!f.cid) return;
    var m = st.outbox.filter(function (x) { return x.cid === f.cid; })[0];
    if (f.code === "invalid") {
      st.outbox = st.outbox.filter(function (x) { return x.cid !== f.cid; });
      save();
      if (byCID[f.cid]) setState(byCID[f.cid], "failed");
      if (f.cid === pendingContact) { pendingContact = null; cMsg.textContent = f.reason; }
      return;
    }
    if (f.code === "rate_limited") status.textContent = T.rateLimited;
    if (m) setTimeout(function () { sendFrame(m); }, Math.max(f.retry_after_ms || 2000, 500));
  }
  function resend(cid) {
    var li = byCID[cid];
    if (!li) return;
    var text = li.querySelector(".obwc-bubble").textContent;
    li.parentNode.removeChild(li);
    delete byCID[cid];
    submit(text);
  }
  function queue(frame) {
    st.outbox.push(frame);
    save();
    if (!sendFrame(frame)) connect();
  }
  function submit(text) {
    text = text.replace(/\s+$/, "");
    if (!text.trim()) return;
    var cmd = /^\/(phone|tel|email|mail|电话|手机|邮箱)[\s:：]+(\S.*?)\s*$/.exec(text);
    if (cmd) { contact(cmd[2]); return; }
    var f = { type: "message", cid: newCID(), text: text };
    setState(add("visitor", { type: "text", text: text }, null, f.cid), "sending");
    queue(f);
  }
  var pendingContact = null;
  function contact(value) {
    value = value.trim();
    if (!value) return;
    var f = { type: "contact", cid: newCID() };
    if (value.indexOf("@") > 0) f.email = value; else f.phone = value;
    pendingContact = f.cid;
    cMsg.textContent = T.sending + "…";
    queue(f);
  }

  // Receipts: agent messages shown on this page are "delivered"; while the panel is open and
  // the page visible they are also "read". The connector keeps the cursors and publishes each
  // status once, so a page only remembers what it sent itself.
  var receiptTimer = null, rDelivered = 0, rRead = 0;
  function receipts() {
    clearTimeout(receiptTimer);
    receiptTimer = setTimeout(function () {
      if (maxSeq > rDelivered && sendFrame({ type: "receipt", seq: maxSeq, status: "delivered" })) rDelivered = maxSeq;
      if (isOpen() && document.visibilityState === "visible" && maxSeq > rRead &&
          sendFrame({ type: "receipt", seq: maxSeq, status: "read" })) {
        rRead = maxSeq;
        if (maxSeq > st.read) { st.read = maxSeq; save(); }
      }
    }, 150);
  }

  // ---- open / close ----
  function isOpen() { return !panel.hidden; }
  function open() {
    panel.hidden = false;
    wrap.classList.add("obwc-open");
    launcher.setAttribute("aria-expanded", "true");
    unread = 0; showBadge();
    connect();
    receipts();
    input.focus();
  }
  function close() {
    panel.hidden = true;
    wrap.classList.remove("obwc-open");
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }
  launcher.addEventListener("click", function () { isOpen() ? close() : open(); });
  closeBtn.addEventListener("click", close);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") close(); });
  composer.addEventListener("submit", function (e) {
    e.preventDefault();
    submit(input.value);
    input.value = "";
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); composer.requestSubmit ? composer.requestSubmit() : composer.dispatchEvent(new Event("submit")); }
  });
  contactToggle.addEventListener("click", function () {
    contactForm.hidden = !contactForm.hidden;
    contactToggle.setAttribute("aria-expanded", String(!contactForm.hidden));
    if (!contactForm.hidden) cInput.focus();
  });
  cCancel.addEventListener("click", function () { contactForm.hidden = true; contactToggle.setAttribute("aria-expanded", "false"); contactToggle.focus(); });
  contactForm.addEventListener("submit", function (e) { e.preventDefault(); contact(cInput.value); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { if (started && !ws) connect(); receipts(); }
  });
  window.addEventListener("online", function () { if (started && !ws) connect(); });

  // Messages still in the outbox were typed before a reload: show them as sending.
  st.outbox.forEach(function (m) {
    if (m.type === "message") setState(add("visitor", { type: "text", text: m.text }, null, m.cid), "sending");
  });

  function mount() {
    document.body.appendChild(host);
    // A returning visitor connects at once (agent replies and the unread badge); a new one only
    // when opening the chat, so page views alone open no sockets.
    if (st.visitor || st.outbox.length) connect();
    if (ds.open === "true") open();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
  window.OmnibusWebchat = { open: open, close: close };
})();
