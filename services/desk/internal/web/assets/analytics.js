// The AI suggestions analytics page (supervisors): per model and prompt template, how often the
// agents used a suggestion as it was, edited it or rejected it (/api/analytics/suggestions).
"use strict";

const $ = (s) => document.querySelector(s);

Object.assign(MESSAGES.zh, { "an.title": "AI 建议采纳率", "an.model": "模型", "an.template": "提示词模板", "an.suggestions": "建议数",
  "an.accepted": "直接采用", "an.edited": "修改后采用", "an.rejected": "不采用", "an.rate": "采纳率", "an.distance": "平均修改字数",
  "an.forbidden": "只有主管可以查看分析。", "an.empty": "暂无反馈" });
Object.assign(MESSAGES.en, { "an.title": "AI suggestion acceptance", "an.model": "Model", "an.template": "Prompt template",
  "an.suggestions": "Suggestions", "an.accepted": "Accepted", "an.edited": "Edited", "an.rejected": "Rejected", "an.rate": "Acceptance rate",
  "an.distance": "Mean edit distance", "an.forbidden": "Only supervisors see the analytics.", "an.empty": "No feedback yet" });

let rows = [];

function render() {
  applyI18n();
  const body = $("#an-rows");
  body.replaceChildren(...rows.map((r) => el("tr", { dataset: { model: r.model, template: r.prompt_template_id } },
    el("td", {}, r.model || "—"), el("td", {}, el("code", {}, r.prompt_template_id || "—")), el("td", {}, String(r.suggestions)),
    el("td", {}, String(r.accepted)), el("td", {}, String(r.edited)), el("td", {}, String(r.rejected)),
    el("td", { class: "rate" }, (r.acceptance_rate * 100).toFixed(1) + "%"), el("td", {}, r.mean_edit_distance.toFixed(1)))));
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: "8", class: "muted" }, t("an.empty"))));
}

async function load() {
  try {
    rows = (await api("/api/analytics/suggestions?window=" + $("#window").value)).rows;
    $("#an-error").hidden = true;
  } catch (e) {
    rows = [];
    $("#an-error").hidden = false;
    $("#an-error").textContent = e.status === 403 ? t("an.forbidden") : e.message;
  }
  render();
}

$("#window").addEventListener("change", load);
$("#lang-toggle").addEventListener("click", () => toggleLang(render));
load();
