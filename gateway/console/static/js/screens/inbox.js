// 收文: deliveries to my department — to sign for (pending and opened), signed for and
// returned — with search, urgency marks and deadlines; new deliveries appear as they come.
import { html, useState } from "../core/html.js";
import { listAll } from "../core/api.js";
import { addMessages, t } from "../core/i18n.js";
import { DepartmentName } from "../core/directory.js";
import { useDeliveries } from "../core/live.js";
import { navigate } from "../core/router.js";
import { ErrorNote, Field, Loading, Page, StateBadge, Table, Urgency, formatTime, useLoad } from "../core/ui.js";
import { dueAt } from "./dashboard.js";

addMessages({
  zh: {
    "inbox.tab.pending": "待签收",
    "inbox.tab.received": "已签收",
    "inbox.tab.rejected": "已退回",
    "inbox.tabs": "收文状态",
    "inbox.search": "按标题或文号搜索",
    "inbox.col.title": "标题",
    "inbox.col.number": "文号",
    "inbox.col.sender": "来文单位",
    "inbox.col.urgency": "紧急程度",
    "inbox.col.state": "状态",
    "inbox.col.due": "签收期限",
    "inbox.col.received": "收到时间",
    "inbox.copy": "抄送",
    "inbox.empty": "没有符合条件的收文。",
    "inbox.overdue": "已超期",
  },
  en: {
    "inbox.tab.pending": "To sign for",
    "inbox.tab.received": "Signed for",
    "inbox.tab.rejected": "Returned",
    "inbox.tabs": "Inbox state",
    "inbox.search": "Search title or document number",
    "inbox.col.title": "Title",
    "inbox.col.number": "Number",
    "inbox.col.sender": "From",
    "inbox.col.urgency": "Urgency",
    "inbox.col.state": "State",
    "inbox.col.due": "Sign for by",
    "inbox.col.received": "Received",
    "inbox.copy": "cc",
    "inbox.empty": "No documents match.",
    "inbox.overdue": "overdue",
  },
});

const TABS = { pending: ["pending", "fetched"], received: ["received"], rejected: ["rejected"] };

async function load(tab, q) {
  const lists = await Promise.all(TABS[tab].map((state) => listAll("/v1/inbox", { state, q })));
  const needle = (q ?? "").trim();
  return lists
    .flat()
    .filter((item) => !needle || item.document.title.includes(needle) || item.document.doc_number.includes(needle))
    .sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
}

function Due({ item }) {
  const at = dueAt(item);
  if (!at) return "—";
  const late = ["pending", "fetched"].includes(item.state) && new Date(at).getTime() < Date.now();
  return html`<span class=${late ? "overdue" : ""}>${formatTime(at)}${late ? ` (${t("inbox.overdue")})` : ""}</span>`;
}

export function Inbox({ query }) {
  const tab = TABS[query.state] ? query.state : "pending";
  const q = query.q ?? "";
  const [text, setText] = useState(q);
  const [items, error, reload] = useLoad(() => load(tab, q), [tab, q]);
  useDeliveries(() => reload(), [tab, q]);

  const link = (state, search = q) => `#/inbox?${new URLSearchParams({ state, ...(search ? { q: search } : {}) })}`;
  const columns = [
    {
      label: t("inbox.col.title"),
      render: (item) => html`<a href=${`#/documents/${encodeURIComponent(item.document.id)}?delivery=${encodeURIComponent(item.id)}`}>${item.document.title}</a>
        ${item.copy ? html` <span class="badge">${t("inbox.copy")}</span>` : null}`,
    },
    { label: t("inbox.col.number"), render: (item) => item.document.doc_number },
    { label: t("inbox.col.sender"), render: (item) => html`<${DepartmentName} code=${item.document.sender} />` },
    { label: t("inbox.col.urgency"), render: (item) => html`<${Urgency} value=${item.document.urgency} />` },
    { label: t("inbox.col.state"), render: (item) => html`<${StateBadge} state=${item.state} />` },
    { label: t("inbox.col.due"), render: (item) => html`<${Due} item=${item} />` },
    { label: t("inbox.col.received"), render: (item) => formatTime(item.created_at) },
  ];

  return html`<${Page} title=${t("nav.inbox")}>
    <nav class="tabs" aria-label=${t("inbox.tabs")}>
      ${Object.keys(TABS).map(
        (name) => html`<a href=${link(name)} aria-current=${name === tab ? "page" : undefined}>${t(`inbox.tab.${name}`)}</a>`,
      )}
    </nav>
    <form class="search" role="search" onSubmit=${(e) => {
      e.preventDefault();
      navigate(link(tab, text.trim()));
    }}>
      <${Field} label=${t("inbox.search")}>
        <input type="search" name="q" value=${text} onInput=${(e) => setText(e.currentTarget.value)} />
      <//>
      <button type="submit" class="button">${t("common.search")}</button>
    </form>
    <${ErrorNote} error=${error} />
    ${items === undefined && !error
      ? html`<${Loading} />`
      : html`<${Table} columns=${columns} rows=${items ?? []} empty=${t("inbox.empty")} caption=${t(`inbox.tab.${tab}`)} />`}
  <//>`;
}
