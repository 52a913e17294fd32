// Messages in Chinese (the default) and English. Screens add their own with addMessages;
// `t(key, vars)` fills `{name}` placeholders. The choice is kept in IndexedDB and
// <html lang> follows it.
import { idb } from "./store.js";

const messages = { zh: {}, en: {} };
const listeners = new Set();
let current = "zh";

export function addMessages(more) {
  for (const lang of Object.keys(messages)) Object.assign(messages[lang], more[lang] ?? {});
}

export function t(key, vars = {}) {
  const text = messages[current][key] ?? messages.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

export function lang() {
  return current;
}

export function setLang(next) {
  if (!(next in messages) || next === current) return;
  current = next;
  document.documentElement.lang = next === "zh" ? "zh-CN" : "en";
  idb.put("prefs", "lang", next).catch(() => {});
  for (const fn of listeners) fn(next);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Read the saved choice (once, at start). */
export async function loadLang() {
  const saved = await idb.get("prefs", "lang").catch(() => null);
  if (saved) setLang(saved);
}

addMessages({
  zh: {
    "app.name": "公文交换与电子用印平台",
    "app.skip": "跳到主要内容",
    "nav.label": "主导航",
    "lang.switch": "English",
    "session.logout": "退出登录",
    "common.loading": "正在加载…",
    "common.retry": "重试",
    "common.cancel": "取消",
    "common.empty": "暂无内容",
    "common.error": "出错了",
    "common.search": "搜索",
    "common.more": "加载更多",
    "common.yes": "是",
    "common.no": "否",
    "urgency.normal": "平件",
    "urgency.urgent": "加急",
    "urgency.very_urgent": "特急",
    "state.pending": "待签收",
    "state.fetched": "已查阅",
    "state.received": "已签收",
    "state.rejected": "已退回",
    "state.dispatched": "已分发",
    "state.withdrawn": "已撤回",
    "state.in_approval": "审批中",
    "state.returned": "已退回修改",
    "state.awaiting_seal": "待用印",
    "state.active": "有效",
    "state.revoked": "已吊销",
    "state.disabled": "已停用",
    "error.network_error": "无法连接服务器，请检查网络后重试。",
    "error.forbidden": "没有权限执行此操作。",
    "error.not_found": "未找到，或无权查看。",
  },
  en: {
    "app.name": "Document Exchange and E-Seal Platform",
    "app.skip": "Skip to main content",
    "nav.label": "Main navigation",
    "lang.switch": "中文",
    "session.logout": "Log out",
    "common.loading": "Loading…",
    "common.retry": "Retry",
    "common.cancel": "Cancel",
    "common.empty": "Nothing here",
    "common.error": "Something went wrong",
    "common.search": "Search",
    "common.more": "Load more",
    "common.yes": "Yes",
    "common.no": "No",
    "urgency.normal": "Normal",
    "urgency.urgent": "Urgent",
    "urgency.very_urgent": "Very urgent",
    "state.pending": "To sign for",
    "state.fetched": "Opened",
    "state.received": "Signed for",
    "state.rejected": "Returned",
    "state.dispatched": "Dispatched",
    "state.withdrawn": "Withdrawn",
    "state.in_approval": "In approval",
    "state.returned": "Returned for revision",
    "state.awaiting_seal": "Awaiting seal",
    "state.active": "Active",
    "state.revoked": "Revoked",
    "state.disabled": "Disabled",
    "error.network_error": "The server cannot be reached. Check the network and retry.",
    "error.forbidden": "You may not do this.",
    "error.not_found": "Not found, or not yours to see.",
  },
});
