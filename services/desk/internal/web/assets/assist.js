// AI suggestions as the model writes them. The desk relays the assist connector's live pieces
// (omni.live.ai.suggest.delta: core NATS, at most once) to the page of the agent who asked, over
// the same event stream as everything else; the card grows under the request until the
// completed result on the timeline replaces it. A lost piece only makes the text jump: the
// result is the record. Loaded before app.js, whose connect() and renderConversation() call
// onSuggestDelta and decorateLive.
"use strict";

Object.assign(MESSAGES.zh, { "ai.writing": "AI 正在撰写…", "kb.fallback": "可参考的知识库文章", "ai.reject": "不采用", "ai.rejected": "已标记为不采用" });
Object.assign(MESSAGES.en, { "ai.writing": "AI is writing…", "kb.fallback": "Knowledge-base articles to answer from", "ai.reject": "Reject",
  "ai.rejected": "Marked as rejected" });

// request id -> { conversation_id, attempt, seq, text, at }
const liveSuggest = new Map();

function onSuggestDelta(n) {
  const d = n.data || {};
  if (!d.request_id) return;
  let s = liveSuggest.get(d.request_id);
  // A retried vendor call writes the suggestion again from the start.
  if (!s || (d.attempt || 1) !== s.attempt) s = { conversation_id: d.conversation_id, attempt: d.attempt || 1, seq: 0, text: "" };
  if (d.seq <= s.seq) return; // a duplicate or a piece overtaken
  const cps = [...s.text];
  // Place the piece at its offset (a lost piece before it leaves the text short, not garbled).
  s.text = (d.offset <= cps.length ? cps.slice(0, d.offset).join("") : s.text) + d.text;
  s.seq = d.seq;
  s.at = Date.now();
  liveSuggest.set(d.request_id, s);
  if (s.conversation_id === state.selected) decorateLive();
}

// decorateLive puts the live cards of the selected conversation on its timeline (again, after a
// render), each after its request, and drops those whose request is answered.
function decorateLive() {
  const tl = document.getElementById("timeline");
  if (!tl) return;
  const atBottom = tl.scrollHeight - tl.scrollTop - tl.clientHeight < 40;
  for (const [id, s] of liveSuggest) {
    const req = tl.querySelector('.tool-request[data-id="' + CSS.escape(id) + '"]');
    let card = tl.querySelector('.ai-live[data-live="' + CSS.escape(id) + '"]');
    if ((req && req.classList.contains("answered")) || Date.now() - s.at > 120e3) {
      liveSuggest.delete(id);
      if (card) card.remove();
      continue;
    }
    if (s.conversation_id !== state.selected) continue;
    if (!card) {
      card = el("div", { class: "card tool-card ai-card ai-live", dataset: { live: id } },
        el("div", { class: "card-head" }, el("span", { class: "tool-name" }, "ai.suggest"), " ", t("ai.writing")),
        el("div", { class: "card-body" }, el("span", { class: "live-text" }), el("span", { class: "cursor" }, "▍")));
      if (req) req.after(card); else tl.append(card);
    }
    card.querySelector(".live-text").textContent = s.text;
  }
  if (atBottom) tl.scrollTop = tl.scrollHeight;
}

// renderFallbackArticles shows the knowledge-base articles of a failed suggestion's fallback, each
// with a button that puts its body into the reply box.
function renderFallbackArticles(fb) {
  const list = (fb && fb.articles) || [];
  if (!list.length) return null;
  return el("div", { class: "fallback-articles" }, el("strong", {}, t("kb.fallback")),
    el("ul", { class: "suggestions" }, ...list.map((a) => el("li", { dataset: { article: a.id } },
      el("div", {}, el("strong", {}, a.title), el("div", { class: "muted" }, a.body)),
      el("button", { class: "ghost use-article", onclick: () => { $("#reply-text").value = a.body; $("#reply-text").focus(); } }, t("use"))))));
}

// Feedback: "use" puts a suggestion into the reply box; when the reply is sent the desk records
// accepted (sent as suggested) or edited (with the edit distance); "reject" records rejected.
let usedSuggestion = null; // { conversation, id, text }

function useSuggestion(r, text) {
  usedSuggestion = { conversation: state.selected, id: r.event_id };
  $("#reply-text").value = text;
  $("#reply-text").focus();
}

function suggestionFeedback(id, verdict, text) {
  return api("/api/conversations/" + state.selected + "/suggestions/feedback", { method: "POST", body: { suggestion_event_id: id, verdict, text } });
}

function suggestionSent(text) {
  const u = usedSuggestion;
  usedSuggestion = null;
  if (u && u.conversation === state.selected) suggestionFeedback(u.id, "used", text).catch(() => {});
}

function rejectButton(r) {
  return el("button", { class: "ghost reject-suggestion", onclick: async (e) => {
    e.target.disabled = true;
    try { await suggestionFeedback(r.event_id, "rejected"); toast(t("ai.rejected"), "ok"); }
    catch (err) { e.target.disabled = false; toast(t("error") + ": " + err.message, "error"); }
  } }, t("ai.reject"));
}
