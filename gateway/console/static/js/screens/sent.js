// 已发: what my department sent, each recipient's state and time, 撤回 and 补发. A document
// that went through sign-off (签发) reaches new recipients only with a leader's signed
// sealhub-resend+jwt: a leader signs it here; anyone else is told to ask one.
import { html, useState, useEffect, useRef } from "../core/html.js";
import { api } from "../core/api.js";
import { session } from "../core/session.js";
import { signJws } from "../core/jws.js";
import { t, addMessages } from "../core/i18n.js";
import { Page, ErrorNote, Loading, Table, Urgency, StateBadge, formatTime, notify } from "../core/ui.js";
import { RecipientPicker, useNames } from "./recipients.js";
import "./style.js";

addMessages({
  zh: {
    "nav.sent": "已发",
    "sent.title": "已发",
    "sent.search": "按标题或文号搜索",
    "sent.refresh": "刷新",
    "sent.empty": "本单位还没有发出的公文",
    "sent.more": "加载更多",
    "sent.number": "文号",
    "sent.created": "发出时间",
    "sent.progress": "签收情况：{received}/{total} 已签收，{pending} 待签收，{rejected} 退回",
    "sent.details": "各单位状态",
    "sent.hide": "收起",
    "sent.recipient": "单位",
    "sent.kind": "类别",
    "sent.main": "主送",
    "sent.copy": "抄送",
    "sent.state": "状态",
    "sent.time": "时间",
    "sent.reason": "退回理由：{reason}",
    "sent.open": "查看公文",
    "sent.withdraw": "撤回",
    "sent.withdrawConfirm": "撤回后各单位将不能再签收此件。确定撤回？",
    "sent.withdrawYes": "确定撤回",
    "sent.cancel": "取消",
    "sent.withdrawn": "已撤回",
    "sent.withdrawNotAllowed": "已有单位签收，不能撤回。",
    "sent.resend": "补发",
    "sent.resendTitle": "补发给更多单位",
    "sent.resendSend": "补发",
    "sent.resendNeedsLeader": "此件已经签发，补发须由本单位领导签批。请领导登录控制台，在“已发”中补发。",
    "sent.resendSigned": "您是领导：补发时将用您的密钥签批。",
    "sent.resendNone": "请选择要补发的单位",
    "sent.resent": "已补发给 {n} 个单位",
  },
  en: {
    "nav.sent": "Sent",
    "sent.title": "Sent",
    "sent.search": "Search by title or number",
    "sent.refresh": "Refresh",
    "sent.empty": "Your department has sent nothing yet",
    "sent.more": "Load more",
    "sent.number": "Number",
    "sent.created": "Sent",
    "sent.progress": "Receipts: {received}/{total} signed for, {pending} pending, {rejected} returned",
    "sent.details": "Recipients",
    "sent.hide": "Hide",
    "sent.recipient": "Unit",
    "sent.kind": "As",
    "sent.main": "To",
    "sent.copy": "Cc",
    "sent.state": "State",
    "sent.time": "Time",
    "sent.reason": "Reason: {reason}",
    "sent.open": "Open",
    "sent.withdraw": "Withdraw",
    "sent.withdrawConfirm": "Recipients will no longer be able to sign for it. Withdraw?",
    "sent.withdrawYes": "Withdraw",
    "sent.cancel": "Cancel",
    "sent.withdrawn": "Withdrawn",
    "sent.withdrawNotAllowed": "Someone signed for it already: it cannot be withdrawn.",
    "sent.resend": "Resend",
    "sent.resendTitle": "Resend to more units",
    "sent.resendSend": "Resend",
    "sent.resendNeedsLeader": "This document was signed off: resending needs a leader's signature. Ask a leader to resend it from their console's Sent list.",
    "sent.resendSigned": "You are a leader: the resend is signed with your key.",
    "sent.resendNone": "Choose the units to resend to",
    "sent.resent": "Resent to {n} units",
  },
});

const REFRESH_MS = 10000;

function deliveryTime(d) {
  return d.decided_at || d.fetched_at || d.created_at;
}

function Deliveries({ doc, nameOf }) {
  const columns = [
    { label: t("sent.recipient"), render: (d) => html`<span data-recipient=${d.recipient} data-state=${d.state}>${nameOf(d.recipient)}</span>` },
    { label: t("sent.kind"), render: (d) => (d.copy ? t("sent.copy") : t("sent.main")) },
    {
      label: t("sent.state"),
      render: (d) => html`<${StateBadge} state=${d.state} />
        ${d.reason ? html`<span class="hint">${t("sent.reason", { reason: d.reason })}</span>` : null}`,
    },
    { label: t("sent.time"), render: (d) => html`<time datetime=${deliveryTime(d)}>${formatTime(deliveryTime(d))}</time>` },
  ];
  return html`<${Table} columns=${columns} rows=${doc.deliveries} caption=${t("sent.details")} />`;
}

function Resend({ doc, onDone }) {
  const me = session.me;
  const leader = session.hasRole("leader");
  const needsLeader = Boolean(doc.workflow);
  const [chosen, setChosen] = useState({ recipients: [], cc: [] });
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const already = doc.deliveries.map((d) => d.recipient);
  if (needsLeader && !leader) return html`<p class="note note-warn" role="note">${t("sent.resendNeedsLeader")}</p>`;

  const send = async () => {
    // The picker's 抄送 choices are resent like the others: 补发 has one list.
    const recipients = [...new Set([...chosen.recipients, ...chosen.cc])].sort();
    if (recipients.length === 0) {
      setFailure(new Error(t("sent.resendNone")));
      return;
    }
    setBusy(true);
    setFailure(null);
    try {
      const body = { recipients };
      if (needsLeader) {
        body.approval = await signJws("sealhub-resend+jwt", { document: doc.id, sha256: doc.sha256, recipients });
      }
      await api.post(`/v1/documents/${doc.id}/resend`, body, { idempotencyKey: crypto.randomUUID() });
      notify(t("sent.resent", { n: recipients.length }));
      onDone();
    } catch (error) {
      setFailure(error);
    } finally {
      setBusy(false);
    }
  };
  return html`<section class="resend" aria-labelledby=${`resend-${doc.id}`}>
    <h3 id=${`resend-${doc.id}`}>${t("sent.resendTitle")}</h3>
    ${needsLeader ? html`<p class="hint">${t("sent.resendSigned")}</p>` : null}
    <${RecipientPicker}
      idBase=${`resend-picker-${doc.id}`}
      value=${chosen}
      onChange=${setChosen}
      excluded=${[me.department, ...already]}
      department=${me.department}
    />
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    <button type="button" class="button button-primary" disabled=${busy} onClick=${send}>${t("sent.resendSend")}</button>
  </section>`;
}

function SentItem({ item, onChanged }) {
  const [open, setOpen] = useState(false);
  const [doc, setDoc] = useState(null);
  const [mode, setMode] = useState(null); // null | "withdraw" | "resend"
  const [failure, setFailure] = useState(null);
  const nameOf = useNames(doc ? doc.deliveries.map((d) => d.recipient) : []);
  const load = () => api.get(`/v1/documents/${item.id}`).then(setDoc, setFailure);

  useEffect(() => {
    if (!open) return undefined;
    load();
    const timer = setInterval(load, REFRESH_MS);
    return () => clearInterval(timer);
  }, [open]);

  const withdraw = async () => {
    setFailure(null);
    try {
      await api.post(`/v1/documents/${item.id}/withdraw`, {}, { idempotencyKey: crypto.randomUUID() });
      notify(t("sent.withdrawn"));
      setMode(null);
      onChanged();
      load();
    } catch (error) {
      setFailure(error);
    }
  };

  const counts = item.deliveries;
  const dispatched = item.status === "dispatched";
  const headingId = `sent-${item.id}`;
  return html`<li class="panel card" data-document=${item.id}>
    <article aria-labelledby=${headingId}>
      <h2 id=${headingId}><a href=${`#/documents/${item.id}`}>${item.title}</a></h2>
      <p class="doc-line">
        <${Urgency} value=${item.urgency} />
        <span>${t("sent.number")}：${item.doc_number}</span>
        <span>${t("sent.created")}：<time datetime=${item.created_at}>${formatTime(item.created_at)}</time></span>
        <${StateBadge} state=${item.status} />
      </p>
      <p class="delivery-counts">${t("sent.progress", counts)}</p>
      <div class="form-actions">
        <button type="button" class="button" aria-expanded=${open ? "true" : "false"} onClick=${() => setOpen(!open)}>
          ${open ? t("sent.hide") : t("sent.details")}
        </button>
        ${dispatched && counts.received === 0
          ? html`<button type="button" class="button" onClick=${() => setMode(mode === "withdraw" ? null : "withdraw")}>
              ${t("sent.withdraw")}
            </button>`
          : null}
        ${dispatched
          ? html`<button
              type="button"
              class="button"
              aria-expanded=${mode === "resend" ? "true" : "false"}
              onClick=${() => {
                setMode(mode === "resend" ? null : "resend");
                if (!doc) load();
              }}
            >
              ${t("sent.resend")}
            </button>`
          : null}
      </div>
      ${mode === "withdraw"
        ? html`<div class="confirm" role="group" aria-label=${t("sent.withdraw")}>
            <p>${t("sent.withdrawConfirm")}</p>
            <button type="button" class="button button-danger" onClick=${withdraw}>${t("sent.withdrawYes")}</button>
            <button type="button" class="button" onClick=${() => setMode(null)}>${t("sent.cancel")}</button>
          </div>`
        : null}
      ${failure ? html`<${ErrorNote} error=${failure} />` : null}
      ${mode === "resend" && doc
        ? html`<${Resend}
            doc=${doc}
            onDone=${() => {
              setMode(null);
              onChanged();
              load();
            }}
          />`
        : null}
      ${open && doc ? html`<${Deliveries} doc=${doc} nameOf=${nameOf} />` : null}
      ${open && !doc && !failure ? html`<${Loading} />` : null}
    </article>
  </li>`;
}

export function SentScreen() {
  const [query, setQuery] = useState("");
  const [items, setItems] = useState(null);
  const [cursor, setCursor] = useState(null);
  const [failure, setFailure] = useState(null);
  const queryRef = useRef(query);
  queryRef.current = query;

  const load = async (more = false) => {
    try {
      const params = { box: "sent" };
      if (queryRef.current.trim()) params.q = queryRef.current.trim();
      if (more && cursor) params.cursor = cursor;
      const page = await api.get("/v1/documents", params);
      setItems(more && items ? [...items, ...page.items] : page.items);
      setCursor(page.next_cursor);
      setFailure(null);
    } catch (error) {
      setFailure(error);
    }
  };

  useEffect(() => {
    const timer = setTimeout(() => load(), 250);
    return () => clearTimeout(timer);
  }, [query]);

  useEffect(() => {
    const timer = setInterval(() => load(), REFRESH_MS);
    return () => clearInterval(timer);
  }, []);

  const actions = html`<button type="button" class="button" onClick=${() => load()}>${t("sent.refresh")}</button>`;
  return html`<${Page} title=${t("sent.title")} actions=${actions}>
    <div class="field">
      <label for="sent-search">${t("sent.search")}</label>
      <input id="sent-search" type="search" value=${query} onInput=${(e) => setQuery(e.currentTarget.value)} />
    </div>
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    ${items === null
      ? failure ? null : html`<${Loading} />`
      : items.length === 0
        ? html`<p class="empty">${t("sent.empty")}</p>`
        : html`<ul class="cards">
            ${items.map((item) => html`<${SentItem} key=${item.id} item=${item} onChanged=${() => load()} />`)}
          </ul>`}
    ${cursor ? html`<button type="button" class="button" onClick=${() => load(true)}>${t("sent.more")}</button>` : null}
  </${Page}>`;
}
