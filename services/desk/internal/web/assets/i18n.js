// The workbench's two languages. Elements with data-i18n="key" get their text from here;
// scripts call t(key, vars). The choice is kept in localStorage.
"use strict";

const MESSAGES = {
  zh: {
    "sysevent.enter_session": "客户进入会话", "sysevent.contact_shared": "客户分享了联系方式", "sysevent.msg_send_fail": "消息发送失败",
    "sysevent.user_recall_msg": "客户撤回了一条消息", "sysevent.other": "系统事件", "sysevent.scene": "来源",
    "app.title": "坐席工作台", "nav.desk": "工作台", "nav.ops": "运维", "lang.toggle": "EN", "logout": "退出",
    "inbox": "会话", "filter.channel": "渠道", "filter.status": "状态", "filter.assignee": "处理人",
    "all": "全部", "status.open": "进行中", "status.closed": "已关闭", "status.merged": "已合并", "status.all": "全部",
    "assignee.me": "我的", "assignee.none": "未分配", "unassigned": "未分配",
    "waiting": "等待", "empty.inbox": "暂无会话", "empty.conversation": "请选择左侧的会话",
    "reply.placeholder": "输入回复…（Ctrl+Enter 发送）", "reply.send": "发送", "reply.via": "经由",
    "note": "内部备注", "note.mode": "内部备注（仅坐席可见）", "note.add": "添加备注", "note.ok": "已添加备注",
    "note.placeholder": "写给同事的备注，客户看不到…用 @坐席ID 提及（Ctrl+Enter）", "mention.toast": "{agent} 在备注中提到了你",
    "canned": "快捷回复", "canned.shared": "共享", "canned.none": "没有匹配的快捷回复", "canned.missing": "未能填入", "canned.save": "存为快捷回复",
    "canned.hint": "在回复框输入 / 和快捷词插入快捷回复", "canned.prompt": "快捷词（输入 / 加它插入）：", "canned.share": "共享给所有坐席？",
    "canned.ok": "已保存快捷回复", "canned.empty": "先在回复框写好内容",
    "tool.track": "查询物流", "tool.ticket": "创建工单", "tool.payment": "支付链接", "tool.ai": "AI 建议回复",
    "track.number": "运单号", "track.carrier": "快递公司（可选）", "submit": "提交", "cancel": "取消",
    "ticket.subject": "标题", "ticket.description": "描述", "ticket.priority": "优先级",
    "priority.low": "低", "priority.normal": "普通", "priority.high": "高", "priority.urgent": "紧急",
    "payment.amount": "金额（元）", "payment.description": "说明",
    "requested": "已请求", "waiting.result": "等待结果…", "answered": "已返回",
    "route.card": "物流轨迹", "route.status": "状态", "route.eta": "预计送达", "send.customer": "发送给客户",
    "route.created": "已下单", "route.in_transit": "运输中", "route.out_for_delivery": "派送中", "route.delivered": "已签收",
    "route.exception": "异常", "route.returned": "已退回", "route.unknown": "未知",
    "failed": "失败", "fallback": "备用方案", "manual": "手动处理", "ticket.created": "工单已创建",
    "payment.created": "支付链接已生成", "payment.paid": "已支付", "payment.closed": "支付链接已关闭", "payment.refunded": "已退款", "payment.qr": "二维码内容",
    "ai.suggestions": "建议回复", "use": "使用", "sentiment": "情绪",
    "sentiment.negative": "负面", "sentiment.neutral": "中性", "sentiment.positive": "正面",
    "crm.found": "CRM 已匹配客户记录", "crm.notfound": "CRM 未找到记录",
    "assigned.to": "已分配给", "rule.sticky": "老客户粘性", "rule.least_loaded": "最少负载", "rule.relaxed": "放宽匹配", "rule.transfer": "转接", "rule.claimed": "回复即接手",
    "panel.profile": "客户档案", "panel.identities": "身份", "panel.crm": "CRM 字段", "panel.orders": "最近订单",
    "panel.history": "历史会话", "panel.sources": "来源", "panel.none": "无",
    "summary": "小结", "summary.llm": "AI", "summary.rules": "规则",
    "biz.order": "订单", "biz.logistics": "物流", "biz.payment": "支付", "biz.account": "账户", "biz.complaint": "投诉", "biz.other": "其他",
    "transfer": "转接", "close": "关闭会话", "reopen": "重新打开", "take": "接手",
    "alert.sentiment": "客户情绪负面", "alert.ops": "运维告警", "dismiss": "知道了",
    "opsalert.vendor_failure_ratio": "{vendor} {op}：最近 {window}内 {calls} 次调用失败 {failures} 次（{ratio} ≥ {threshold}）",
    "opsalert.dead_letters": "{subject} 积压 {messages} 条死信：在运维页查看原因、修复后重投",
    "call.ringing": "来电", "call.open": "打开会话", "call.inbound": "呼入", "call.outbound": "呼出",
    "call.state.ringing": "振铃中", "call.state.answered": "通话中", "call.state.ended": "已结束", "call.state.missed": "未接",
    "call.duration": "时长", "call.talk": "通话", "call.hangup": "挂断方", "call.recording": "录音",
    "call.transcript.transcribing": "正在转写…", "call.transcript.partial": "转写不完整——部分通话期间语音识别不可用", "call.transcript.none": "无转写",
    "call.hangup.button": "挂断", "call.transfer": "转接电话", "call.transfer.target": "分机号",
    "call.transfer.transferred": "已转接至", "call.transfer.failed": "转接失败",
    "call.transfer.reason.not_answered": "通话尚未接通", "call.transfer.reason.refused": "对端拒绝转接",
    "call.transfer.reason.failed": "目标未接通", "call.transfer.reason.timeout": "转接超时", "call.transfer.reason.ended": "通话已结束",
    "call.prompt": "播放", "call.prompt.text": "播放提示语（语音合成）",
    "status.pending": "发送中", "status.accepted": "已受理", "status.sent": "已发送", "status.delivered": "已送达", "status.read": "已读", "status.failed": "发送失败",
    "ops.title": "供应商线路", "ops.route": "线路", "ops.success": "成功率", "ops.p50": "P50", "ops.p99": "P99",
    "ops.errors": "错误码分布", "ops.breaker": "熔断器", "ops.chart": "调用 / 错误", "ops.calls": "调用数",
    "ops.alerts": "最近告警", "ops.empty": "尚无审计记录（omni.audit.call.recorded）", "ops.window": "时间窗口",
    "ops.disabled": "未启用的连接器", "ops.disabled.help": "未配置：设置以下任一变量（及其所需的其余配置）即可启用",
    "canary.title": "灰度发布", "canary.target": "对象", "canary.status": "状态", "canary.plan": "方案", "canary.variant": "版本",
    "canary.baseline": "基线", "canary.candidate": "灰度", "canary.failures": "失败", "canary.mean": "平均耗时", "canary.p95": "P95",
    "canary.status.active": "进行中", "canary.status.rolled_back": "已自动回滚", "canary.status.ended": "已结束",
    "dlq.title": "死信", "dlq.service": "服务", "dlq.reason": "原因", "dlq.any": "全部", "dlq.reason.ph": "原因包含…", "dlq.refresh": "刷新",
    "dlq.denied": "只有主管可以处理死信。", "dlq.redrive": "重新投递所选", "dlq.discard": "丢弃所选", "dlq.discard.confirm": "确认丢弃", "dlq.cancel": "取消",
    "dlq.note.ph": "丢弃原因（必填，记入审计）", "dlq.note.required": "请填写丢弃原因", "dlq.time": "时间", "dlq.subject": "原主题",
    "dlq.consumer": "消费者", "dlq.deliveries": "投递次数", "dlq.event": "事件", "dlq.empty": "没有死信",
    "dlq.total": "共 {n} 条", "dlq.redriven": "已重新投递 {n} 条", "dlq.discarded": "已丢弃 {n} 条", "dlq.error": "错误",
    "dlq.headers": "消息头", "dlq.data": "事件内容（个人信息已脱敏）", "dlq.truncated": "（仅显示前 64 KiB）",
    "breaker.open": "断开", "breaker.closed": "闭合", "resolved": "已恢复", "active": "进行中",
    "ch.wechatkf": "微信客服", "ch.wecom": "企业微信", "ch.douyin": "抖音", "ch.kuaishou": "快手", "ch.weibo": "微博",
    "ch.sms": "短信", "ch.webchat": "网页", "ch.voice": "电话", "ch.example": "示例",
    "error": "出错了", "sent.ok": "已发送", "requested.ok": "已提交请求",
    "min": "分", "h": "小时", "d": "天", "s": "秒",
  },
  en: {
    "sysevent.enter_session": "Customer entered the session", "sysevent.contact_shared": "Customer shared contact details", "sysevent.msg_send_fail": "A message could not be delivered",
    "sysevent.user_recall_msg": "Customer recalled a message", "sysevent.other": "System event", "sysevent.scene": "from",
    "app.title": "Agent workbench", "nav.desk": "Workbench", "nav.ops": "Ops", "lang.toggle": "中文", "logout": "Sign out",
    "inbox": "Conversations", "filter.channel": "Channel", "filter.status": "Status", "filter.assignee": "Assignee",
    "all": "All", "status.open": "Open", "status.closed": "Closed", "status.merged": "Merged", "status.all": "All",
    "assignee.me": "Mine", "assignee.none": "Unassigned", "unassigned": "Unassigned",
    "waiting": "waiting", "empty.inbox": "No conversations", "empty.conversation": "Pick a conversation on the left",
    "reply.placeholder": "Type a reply… (Ctrl+Enter to send)", "reply.send": "Send", "reply.via": "via",
    "note": "Private note", "note.mode": "Private note (agents only)", "note.add": "Add note", "note.ok": "Note added",
    "note.placeholder": "A note for colleagues, never sent to the customer… @agent-id to mention (Ctrl+Enter)", "mention.toast": "{agent} mentioned you in a note",
    "canned": "Canned responses", "canned.shared": "shared", "canned.none": "No canned response matches", "canned.missing": "Not filled in", "canned.save": "Save as canned",
    "canned.hint": "Type / and a shortcut in the reply box to insert a canned response", "canned.prompt": "Shortcut (type / and it to insert):", "canned.share": "Share with every agent?",
    "canned.ok": "Canned response saved", "canned.empty": "Write the text in the reply box first",
    "tool.track": "Track parcel", "tool.ticket": "Create ticket", "tool.payment": "Payment link", "tool.ai": "AI suggestion",
    "track.number": "Tracking number", "track.carrier": "Carrier (optional)", "submit": "Submit", "cancel": "Cancel",
    "ticket.subject": "Subject", "ticket.description": "Description", "ticket.priority": "Priority",
    "priority.low": "Low", "priority.normal": "Normal", "priority.high": "High", "priority.urgent": "Urgent",
    "payment.amount": "Amount (CNY)", "payment.description": "Description",
    "requested": "requested", "waiting.result": "waiting for the result…", "answered": "answered",
    "route.card": "Parcel route", "route.status": "Status", "route.eta": "ETA", "send.customer": "Send to customer",
    "route.created": "Created", "route.in_transit": "In transit", "route.out_for_delivery": "Out for delivery", "route.delivered": "Delivered",
    "route.exception": "Exception", "route.returned": "Returned", "route.unknown": "Unknown",
    "failed": "failed", "fallback": "Fallback", "manual": "Do it by hand", "ticket.created": "Ticket created",
    "payment.created": "Payment link created", "payment.paid": "Paid", "payment.closed": "Payment link closed", "payment.refunded": "Refunded", "payment.qr": "QR code",
    "ai.suggestions": "Suggested replies", "use": "Use", "sentiment": "Sentiment",
    "sentiment.negative": "negative", "sentiment.neutral": "neutral", "sentiment.positive": "positive",
    "crm.found": "CRM record matched", "crm.notfound": "No CRM record found",
    "assigned.to": "Assigned to", "rule.sticky": "returning customer", "rule.least_loaded": "least loaded", "rule.relaxed": "relaxed match", "rule.transfer": "transfer", "rule.claimed": "claimed by replying",
    "panel.profile": "Customer profile", "panel.identities": "Identities", "panel.crm": "CRM fields", "panel.orders": "Recent orders",
    "panel.history": "Past conversations", "panel.sources": "Sources", "panel.none": "None",
    "summary": "Summary", "summary.llm": "AI", "summary.rules": "rules",
    "biz.order": "order", "biz.logistics": "logistics", "biz.payment": "payment", "biz.account": "account", "biz.complaint": "complaint", "biz.other": "other",
    "transfer": "Transfer", "close": "Close", "reopen": "Reopen", "take": "Take",
    "alert.sentiment": "Negative customer sentiment", "alert.ops": "Ops alert", "dismiss": "Dismiss",
    "opsalert.vendor_failure_ratio": "{vendor} {op}: {failures} of {calls} calls failed in the last {window} ({ratio} ≥ {threshold})",
    "opsalert.dead_letters": "{subject} holds {messages} dead letters: see why on the ops page, fix the cause, then redrive",
    "call.ringing": "Incoming call", "call.open": "Open conversation", "call.inbound": "Inbound call", "call.outbound": "Outbound call",
    "call.state.ringing": "ringing", "call.state.answered": "answered", "call.state.ended": "ended", "call.state.missed": "missed",
    "call.duration": "duration", "call.talk": "talk", "call.hangup": "hung up by", "call.recording": "Recording",
    "call.transcript.transcribing": "Transcribing…", "call.transcript.partial": "Transcript partial — ASR was unavailable for part of the call", "call.transcript.none": "No transcript",
    "call.hangup.button": "Hang up", "call.transfer": "Transfer call", "call.transfer.target": "Extension",
    "call.transfer.transferred": "Transferred to", "call.transfer.failed": "Transfer failed",
    "call.transfer.reason.not_answered": "the call was not answered yet", "call.transfer.reason.refused": "the trunk refused it",
    "call.transfer.reason.failed": "the target did not answer", "call.transfer.reason.timeout": "no answer in time", "call.transfer.reason.ended": "the call ended first",
    "call.prompt": "Play", "call.prompt.text": "Prompt to play (text to speech)",
    "status.pending": "sending", "status.accepted": "accepted", "status.sent": "sent", "status.delivered": "delivered", "status.read": "read", "status.failed": "failed",
    "ops.title": "Vendor routes", "ops.route": "Route", "ops.success": "Success", "ops.p50": "p50", "ops.p99": "p99",
    "ops.errors": "Error codes", "ops.breaker": "Breaker", "ops.chart": "Calls / errors", "ops.calls": "Calls",
    "ops.alerts": "Recent alerts", "ops.empty": "No audit records yet (omni.audit.call.recorded)", "ops.window": "Window",
    "ops.disabled": "Disabled connectors", "ops.disabled.help": "Not configured: set one of these variables (with what it needs) to enable it",
    "canary.title": "Canary rollouts", "canary.target": "Target", "canary.status": "Status", "canary.plan": "Plan", "canary.variant": "Variant",
    "canary.baseline": "baseline", "canary.candidate": "candidate", "canary.failures": "Failures", "canary.mean": "Mean", "canary.p95": "p95",
    "canary.status.active": "active", "canary.status.rolled_back": "rolled back", "canary.status.ended": "ended",
    "dlq.title": "Dead letters", "dlq.service": "Service", "dlq.reason": "Reason", "dlq.any": "all", "dlq.reason.ph": "reason contains…", "dlq.refresh": "Refresh",
    "dlq.denied": "Only supervisors work dead letters.", "dlq.redrive": "Redrive selected", "dlq.discard": "Discard selected", "dlq.discard.confirm": "Discard", "dlq.cancel": "Cancel",
    "dlq.note.ph": "Why discard them (required, audited)", "dlq.note.required": "Say why you discard them", "dlq.time": "Time", "dlq.subject": "Original subject",
    "dlq.consumer": "Consumer", "dlq.deliveries": "Deliveries", "dlq.event": "Event", "dlq.empty": "No dead letters",
    "dlq.total": "{n} in total", "dlq.redriven": "Redrove {n}", "dlq.discarded": "Discarded {n}", "dlq.error": "Error",
    "dlq.headers": "Headers", "dlq.data": "Event (personal data masked)", "dlq.truncated": "(first 64 KiB only)",
    "breaker.open": "open", "breaker.closed": "closed", "resolved": "resolved", "active": "active",
    "ch.wechatkf": "WeChat KF", "ch.wecom": "WeCom", "ch.douyin": "Douyin", "ch.kuaishou": "Kuaishou", "ch.weibo": "Weibo",
    "ch.sms": "SMS", "ch.webchat": "Web chat", "ch.voice": "Voice", "ch.example": "Example",
    "error": "Something went wrong", "sent.ok": "Sent", "requested.ok": "Requested",
    "min": "m", "h": "h", "d": "d", "s": "s",
  },
};

// ?lang=zh|en picks the language (and keeps it); otherwise the last choice, then the browser's.
const wantLang = new URLSearchParams(location.search).get("lang");
if (wantLang && MESSAGES[wantLang]) localStorage.setItem("desk.lang", wantLang);
let LANG = localStorage.getItem("desk.lang") || (navigator.language || "zh").slice(0, 2);
if (!MESSAGES[LANG]) LANG = "zh";

function t(key, vars) {
  let s = (MESSAGES[LANG] && MESSAGES[LANG][key]) || MESSAGES.en[key] || key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll("{" + k + "}", v);
  return s;
}

// opsAlertText is an ops alert's banner text in the page's language, built from its detail (the
// server's summary is English); the summary when the kind is not one the page knows.
function opsAlertText(a) {
  const d = a.detail || {};
  const key = "opsalert." + d.kind;
  if (!MESSAGES.en[key]) return a.title;
  const pct = (x) => (Math.round((x || 0) * 1000) / 10) + "%";
  const w = d.window_seconds || 0;
  const window = w >= 60 && w % 60 === 0 ? (w / 60) + (LANG === "zh" ? " 分钟" : " min") : w + (LANG === "zh" ? " 秒" : " s");
  return t(key, { vendor: d.vendor || "", op: d.op || "", calls: d.calls || 0, failures: d.failures || 0,
    ratio: pct(d.ratio), threshold: pct(d.threshold), window, subject: d.subject || "", messages: d.messages || 0 });
}

function applyI18n(root) {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  (root || document).querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  (root || document).querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  (root || document).querySelectorAll("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
}

function toggleLang(onChange) {
  LANG = LANG === "zh" ? "en" : "zh";
  localStorage.setItem("desk.lang", LANG);
  applyI18n();
  if (onChange) onChange();
}

function channelLabel(ch) { const k = "ch." + ch; const s = t(k); return s === k ? ch : s; }

// Shared helpers for both pages.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function api(path, opts) {
  const o = Object.assign({ credentials: "same-origin" }, opts || {});
  o.headers = Object.assign({ "X-Desk-Csrf": "1" }, o.body ? { "Content-Type": "application/json" } : {}, o.headers || {});
  if (o.body && typeof o.body !== "string") o.body = JSON.stringify(o.body);
  const r = await fetch(path, o);
  if (r.status === 401) { location.href = "/desk/login?next=" + encodeURIComponent(location.pathname); throw new Error("unauthorized"); }
  if (r.status === 204) return null;
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { const e = new Error(body.reason || r.statusText); e.status = r.status; throw e; }
  return body;
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso), now = new Date();
  const same = d.toDateString() === now.toDateString();
  return same ? d.toLocaleTimeString(LANG === "zh" ? "zh-CN" : "en-GB", { hour: "2-digit", minute: "2-digit" })
              : d.toLocaleString(LANG === "zh" ? "zh-CN" : "en-GB", { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
}

function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return s + t("s");
  const m = Math.floor(s / 60);
  if (m < 60) return m + t("min");
  const h = Math.floor(m / 60);
  if (h < 48) return h + t("h") + (m % 60 ? " " + (m % 60) + t("min") : "");
  return Math.floor(h / 24) + t("d");
}

// The knowledge-base and analytics pages' nav links (kb.js, analytics.js hold the pages' own messages).
Object.assign(MESSAGES.zh, { "nav.kb": "知识库", "nav.analytics": "AI 分析" });
Object.assign(MESSAGES.en, { "nav.kb": "Knowledge", "nav.analytics": "AI analytics" });
