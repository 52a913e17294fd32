// 工作台: how much is waiting for me — 待签收, 待审批, 待用印 (seal keepers) and 即将超期 —
// counted from the list endpoints and again whenever the live inbox stream brings a
// delivery. A count this official has no list for is left out.
import { html, useCallback, useEffect, useState } from "../core/html.js";
import { addMessages, t } from "../core/i18n.js";
import { listAll } from "../core/api.js";
import { useDeliveries } from "../core/live.js";
import { session } from "../core/session.js";
import { ErrorNote, Page, formatTime, notify } from "../core/ui.js";

addMessages({
  zh: {
    "dashboard.pending": "待签收",
    "dashboard.approvals": "待审批",
    "dashboard.seal": "待用印",
    "dashboard.due": "即将超期",
    "dashboard.due.hint": "24 小时内到期未签收",
    "dashboard.arrived": "新收文：{title}",
    "dashboard.updated": "更新于 {time}",
    "dashboard.welcome": "{name}，您好。",
  },
  en: {
    "dashboard.pending": "To sign for",
    "dashboard.approvals": "To approve",
    "dashboard.seal": "To seal",
    "dashboard.due": "Due soon",
    "dashboard.due.hint": "due within 24 hours, not signed for",
    "dashboard.arrived": "New document: {title}",
    "dashboard.updated": "Updated {time}",
    "dashboard.welcome": "Hello, {name}.",
  },
});

const DUE_SOON_MS = 24 * 3600 * 1000;

/** When a delivery is due: the document's deadline, else the delivery's own due time. */
export function dueAt(item) {
  return item.document?.deadline ?? item.due_at ?? null;
}

async function optionalCount(path, query) {
  try {
    return (await listAll(path, query)).length;
  } catch (error) {
    if (error.status === 403 || error.status === 404 || error.status === 405) return null;
    throw error;
  }
}

async function counts() {
  const open = [
    ...(await listAll("/v1/inbox", { state: "pending" })),
    ...(await listAll("/v1/inbox", { state: "fetched" })),
  ];
  const soon = Date.now() + DUE_SOON_MS;
  const due = open.filter((item) => {
    const at = dueAt(item);
    return at && new Date(at).getTime() <= soon;
  }).length;
  const approvals = await optionalCount("/v1/approvals");
  const seal = session.hasRole("seal_keeper")
    ? await optionalCount("/v1/documents", { box: "awaiting_seal" })
    : null;
  return { pending: open.length, approvals, seal, due, at: new Date().toISOString() };
}

function Count({ value, label, href, hint }) {
  return html`<li>
    <a class="count" href=${href}>
      <span class="count-value" data-count=${label}>${value ?? "—"}</span>
      <span class="count-label">${label}</span>
      ${hint ? html`<span class="hint">${hint}</span>` : null}
    </a>
  </li>`;
}

export function Dashboard() {
  const [state, setState] = useState(null);
  const [error, setError] = useState(null);
  const reload = useCallback(() => {
    counts().then(
      (value) => {
        setState(value);
        setError(null);
      },
      setError,
    );
  }, []);
  useEffect(reload, []);
  useDeliveries((item) => {
    if (item) notify(t("dashboard.arrived", { title: item.document?.title ?? "" }));
    reload();
  });

  const me = session.me;
  return html`<${Page} title=${t("nav.dashboard")}>
    <p>${t("dashboard.welcome", { name: me?.name ?? "" })}</p>
    <${ErrorNote} error=${error} />
    <ul class="counts" aria-live="polite">
      <${Count} value=${state?.pending} label=${t("dashboard.pending")} href="#/inbox?state=pending" />
      ${state?.approvals === null ? null : html`<${Count} value=${state?.approvals} label=${t("dashboard.approvals")} href="#/todo" />`}
      ${state?.seal === null ? null : html`<${Count} value=${state?.seal} label=${t("dashboard.seal")} href="#/seal" />`}
      <${Count} value=${state?.due} label=${t("dashboard.due")} href="#/inbox?state=pending"
        hint=${t("dashboard.due.hint")} />
    </ul>
    ${state ? html`<p class="live">${t("dashboard.updated", { time: formatTime(state.at) })}</p>` : null}
  <//>`;
}
