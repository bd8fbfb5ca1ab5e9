// The knowledge-base page: list and search the articles (every agent), create, edit and delete
// them (supervisors; the API enforces it). AI suggestions are grounded in the best matches.
"use strict";

const $ = (s) => document.querySelector(s);

Object.assign(MESSAGES.zh, { "kb.search": "搜索知识库（中文或英文）", "kb.new": "新建文章", "kb.readonly": "只有主管可以编辑知识库。",
  "kb.title": "标题", "kb.language": "语言", "kb.tags": "标签（逗号分隔）", "kb.body": "正文", "kb.save": "保存", "kb.delete": "删除",
  "kb.saved": "已保存", "kb.deleted": "已删除", "kb.confirm": "确认删除", "kb.empty": "没有文章" });
Object.assign(MESSAGES.en, { "kb.search": "Search the knowledge base (Chinese or English)", "kb.new": "New article",
  "kb.readonly": "Only supervisors edit the knowledge base.", "kb.title": "Title", "kb.language": "Language", "kb.tags": "Tags (comma-separated)",
  "kb.body": "Body", "kb.save": "Save", "kb.delete": "Delete", "kb.saved": "Saved", "kb.deleted": "Deleted", "kb.confirm": "Confirm delete",
  "kb.empty": "No articles" });

const kb = { articles: [], editing: null, supervisor: false };

function note(msg) {
  const n = el("div", { class: "toast ok" }, msg);
  let box = $("#toasts");
  if (!box) { box = el("div", { id: "toasts", class: "toasts", "aria-live": "polite" }); document.body.append(box); }
  box.append(n);
  setTimeout(() => n.remove(), 2500);
}

async function load() {
  const q = $("#kb-q").value.trim();
  kb.articles = (await api("/api/kb/articles" + (q ? "?q=" + encodeURIComponent(q) : ""))).articles;
  render();
}

function render() {
  const list = $("#kb-articles");
  list.replaceChildren(...kb.articles.map((a) => el("li", { class: "kb-article" + (kb.editing === a.id ? " on" : ""), dataset: { id: a.id }, onclick: () => edit(a) },
    el("strong", {}, a.title), " ", el("span", { class: "badge" }, a.language),
    el("div", { class: "muted" }, (a.tags || []).join(" · ") + " · " + new Date(a.updated_at).toLocaleString()))));
  if (!kb.articles.length) list.append(el("li", { class: "muted" }, t("kb.empty")));
}

function edit(a) {
  kb.editing = a ? a.id : null;
  const f = $("#kb-form");
  f.hidden = false;
  $("#kb-title").value = a ? a.title : "";
  $("#kb-body").value = a ? a.body : "";
  $("#kb-tags").value = a ? (a.tags || []).join(", ") : "";
  $("#kb-language").value = a ? a.language : (LANG === "en" ? "en" : "zh");
  $("#kb-delete").hidden = !a || !kb.supervisor;
  for (const x of f.querySelectorAll("input, textarea, select, #kb-save")) x.disabled = !kb.supervisor;
  render();
}

async function save(e) {
  e.preventDefault();
  const body = { title: $("#kb-title").value, body: $("#kb-body").value, language: $("#kb-language").value,
    tags: $("#kb-tags").value.split(/[,，]/).map((s) => s.trim()).filter(Boolean) };
  try {
    const a = await api("/api/kb/articles" + (kb.editing ? "/" + kb.editing : ""), { method: kb.editing ? "PUT" : "POST", body });
    kb.editing = a.id;
    note(t("kb.saved"));
    await load();
    edit(a);
  } catch (err) { note(t("error") + ": " + err.message); }
}

// remove deletes the article on the second click (the first arms the button).
async function remove(e) {
  const b = e.currentTarget;
  if (!kb.editing) return;
  if (!b.dataset.armed) { b.dataset.armed = "1"; b.textContent = t("kb.confirm"); return; }
  delete b.dataset.armed;
  b.textContent = t("kb.delete");
  try {
    await api("/api/kb/articles/" + kb.editing, { method: "DELETE" });
    kb.editing = null;
    $("#kb-form").hidden = true;
    note(t("kb.deleted"));
    await load();
  } catch (err) { note(t("error") + ": " + err.message); }
}

async function start() {
  applyI18n();
  const me = await api("/api/me");
  kb.supervisor = me.principal.roles.includes("supervisor");
  $("#me").textContent = me.principal.name || me.principal.agent_id;
  $("#kb-new").hidden = !kb.supervisor;
  $("#kb-readonly").hidden = kb.supervisor;
  $("#kb-new").addEventListener("click", () => edit(null));
  $("#kb-form").addEventListener("submit", save);
  $("#kb-delete").addEventListener("click", remove);
  let timer = null;
  $("#kb-q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 200); });
  $("#lang-toggle").addEventListener("click", () => toggleLang(render));
  await load();
}

start().catch((e) => { if (e.message !== "unauthorized") note(e.message); });
