// Sentiment alerts and marks from the sentiment connector (omni.tool.ai.sentiment.*): the
// conversation's "customer turned negative" banner, a mark per scored inbound message on the
// timeline, and which alerts an agent sees (the conversation's agent and supervisors). app.js
// calls sentimentBanner, sentimentMark and alertVisible; the texts join MESSAGES (i18n.js).
"use strict";

Object.assign(MESSAGES.zh, {
  "alert.sentiment": "客户情绪转为负面", "sentiment.escalation": "要求升级/投诉", "sentiment.episode": "负面情绪中",
  "sentiment.by": "评分", "sentiment.fallback": "（{vendor} 不可用，内置分析）", "sentiment.mean": "近期均分",
});
Object.assign(MESSAGES.en, {
  "alert.sentiment": "Customer turned negative", "sentiment.escalation": "asks to escalate", "sentiment.episode": "negative episode",
  "sentiment.by": "scored by", "sentiment.fallback": " ({vendor} unavailable, built-in)", "sentiment.mean": "recent mean",
});

function isSupervisor() { return !!(state.me && (state.me.principal.roles || []).includes("supervisor")); }

// alertVisible: ops alerts for everyone; a sentiment alert for its conversation's agent and for
// supervisors.
function alertVisible(a) {
  if (a.kind !== "sentiment" || isSupervisor()) return true;
  const c = state.conversations.get(a.conversation_id);
  return !!(c && state.me && c.assignee === state.me.principal.agent_id);
}

// sentimentBanner is the open alert of the timeline's conversation (the API sends it only to the
// conversation's agent and supervisors), or nothing.
function sentimentBanner(tl) {
  const a = tl.sentiment_alert;
  if (!a) return null;
  const d = a.detail || {};
  return el("div", { class: "banner banner-warn sentiment-alert", role: "alert", id: "sentiment-alert", dataset: { id: a.id } },
    el("strong", {}, "⚠ " + t("alert.sentiment")),
    el("span", { class: "muted" }, (typeof d.mean_score === "number" ? " · " + t("sentiment.mean") + " " + d.mean_score.toFixed(2) : "") +
      (d.escalation ? " · " + t("sentiment.escalation") : "") + " · " + fmtTime(a.at)));
}

// sentimentMark is the small mark of a scored inbound message: a coloured dot, with the label,
// score and who scored it on hover.
function sentimentMark(m) {
  const s = state.timeline && state.timeline.sentiment && state.timeline.sentiment[m.event_id];
  if (!s || m.direction !== "inbound") return null;
  const by = s.provider + (s.fallback_from ? t("sentiment.fallback", { vendor: s.fallback_from }) : "");
  const title = t("sentiment") + ": " + t("sentiment." + s.label) + " (" + s.score.toFixed(2) + ") · " + t("sentiment.by") + " " + by +
    (s.escalation ? " · " + t("sentiment.escalation") : "") + (s.negative_episode ? " · " + t("sentiment.episode") : "");
  return el("span", { class: "sentiment-mark s-" + s.label + (s.escalation ? " escalation" : ""), title, "aria-label": title, dataset: { label: s.label } },
    s.label === "negative" ? "●" : s.label === "positive" ? "●" : "○");
}
