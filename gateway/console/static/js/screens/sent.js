// 已发: what my department sent, each recipient's state and time, 撤回 and 补发. A document
// that went through sign-off (签发) reaches new recipients only with a leader's signed
// sealhub-resend+jwt: a leader signs it here; anyone else is told to ask one.
import { html, useState, useEffect, useRef } from "../core/html.js";
import { api } from "../core/api.js";
import { session } from "../core/session.js";
import { b64urlDecode, signJws } from "../core/jws.js";
import { t, addMessages } from "../core/i18n.js";
import { Page, ErrorNote, Loading, CardList, Table, Urgency, StateBadge, formatTime, notify, usePages } from "../core/ui.js";
import { RecipientPicker, useNames } from "./recipients.js";

addMessages({
  zh: {
    "nav.sent": "已发",
    "sent.title": "已发",
    "sent.search": "按标题或文号搜索",
    "sent.refresh": "刷新",
    "sent.empty": "本单位还没有发出的公文",
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
    "sent.withdraw": "撤回",
    "sent.withdrawConfirm": "撤回后各单位将不能再签收此件。确定撤回？",
    "sent.withdrawYes": "确定撤回",
    "sent.withdrawn": "已撤回",
    "sent.resend": "补发",
    "sent.resendTitle": "补发给更多单位",
    "sent.resendSend": "确认补发",
    "sent.resendNeedsLeader": "此件已经签发，补发须由本单位领导签批：请领导在其控制台“已发”中选定补发单位并签批，再把签批粘贴到下面。",
    "sent.approval": "领导的补发签批",
    "sent.approvalHint": "粘贴领导交来的签批；补发单位以签批为准。",
    "sent.approvalFor": "签批的补发单位：{codes}",
    "sent.approvalInvalid": "这不是本件的补发签批",
    "sent.resendHandOver": "您是领导但不能直接补发：签批后把签批交给本单位文书提交。",
    "sent.resendSign": "签批补发",
    "sent.resendClerks": "补发由本单位文书、用印员或单位管理员办理。",
    "sent.signedApproval": "补发签批（请交给本单位文书）",
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
    "sent.withdraw": "Withdraw",
    "sent.withdrawConfirm": "Recipients will no longer be able to sign for it. Withdraw?",
    "sent.withdrawYes": "Withdraw",
    "sent.withdrawn": "Withdrawn",
    "sent.resend": "Resend",
    "sent.resendTitle": "Resend to more units",
    "sent.resendSend": "Resend now",
    "sent.resendNeedsLeader": "This document was signed off: resending needs a leader's approval. The leader chooses the units and signs in their console's Sent list; paste the approval below.",
    "sent.approval": "The leader's resend approval",
    "sent.approvalHint": "Paste the approval a leader handed you; it names the units.",
    "sent.approvalFor": "The approval resends to: {codes}",
    "sent.approvalInvalid": "This is not a resend approval of this document",
    "sent.resendHandOver": "You are a leader but may not resend yourself: sign, then hand the approval to a clerk of your department.",
    "sent.resendSign": "Sign the resend",
    "sent.resendClerks": "A clerk, seal keeper or department admin resends.",
    "sent.signedApproval": "Resend approval (hand it to a clerk)",
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

const FOLLOW_UP_ROLES = ["clerk", "seal_keeper", "dept_admin"];

/** The claims of a compact JWS, unverified (the gateway verifies it): for showing only. */
function claimsOf(token) {
  try {
    return JSON.parse(new TextDecoder().decode(b64urlDecode(token.trim().split(".")[1])));
  } catch {
    return null;
  }
}

/**
 * 补发. After sign-off the gateway wants a leader's sealhub-resend+jwt over exactly these
 * recipients, and only a clerk, seal keeper or dept_admin may send the resend: one person
 * holding both does it alone; else the leader signs here and hands the approval over, and
 * the clerk pastes it (the recipients are then the approval's own).
 */
function Resend({ doc, onDone }) {
  const me = session.me;
  const leader = session.hasRole("leader");
  const mayFollowUp = session.hasRole(...FOLLOW_UP_ROLES);
  const needsLeader = Boolean(doc.workflow);
  const [chosen, setChosen] = useState({ recipients: [], cc: [] });
  const [pasted, setPasted] = useState("");
  const [signed, setSigned] = useState(null);
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const already = doc.deliveries.map((d) => d.recipient);
  const base = `resend-${doc.id}`;
  const handOver = needsLeader && !mayFollowUp; // a leader who cannot send: signs only
  const fromLeader = needsLeader && !leader; // a clerk who cannot sign: pastes
  const approval = fromLeader ? claimsOf(pasted) : null;
  const approvalFits = approval && approval.document === doc.id && Array.isArray(approval.recipients);

  const picked = () => [...new Set([...chosen.recipients, ...chosen.cc])].sort();
  const run = async (work) => {
    setBusy(true);
    setFailure(null);
    try {
      await work();
    } catch (error) {
      setFailure(error);
    } finally {
      setBusy(false);
    }
  };
  const sign = (recipients) => signJws("sealhub-resend+jwt", { document: doc.id, sha256: doc.sha256, recipients });
  const post = async (body) => {
    await api.post(`/v1/documents/${doc.id}/resend`, body, { idempotencyKey: crypto.randomUUID() });
    notify(t("sent.resent", { n: body.recipients.length }));
    onDone();
  };
  if (!needsLeader && !mayFollowUp) return html`<p class="note note-warn" role="note">${t("sent.resendClerks")}</p>`;

  const submit = () =>
    run(async () => {
      if (fromLeader) {
        if (!approvalFits) throw new Error(t("sent.approvalInvalid"));
        await post({ recipients: approval.recipients, approval: pasted.trim() });
        return;
      }
      // The picker's 抄送 choices are resent like the others: 补发 has one list.
      const recipients = picked();
      if (recipients.length === 0) throw new Error(t("sent.resendNone"));
      if (handOver) setSigned(await sign(recipients));
      else await post(needsLeader ? { recipients, approval: await sign(recipients) } : { recipients });
    });

  return html`<section class="resend" aria-labelledby=${base}>
    <h3 id=${base}>${t("sent.resendTitle")}</h3>
    ${needsLeader && leader && mayFollowUp ? html`<p class="hint">${t("sent.resendSigned")}</p>` : null}
    ${handOver ? html`<p class="hint">${t("sent.resendHandOver")}</p>` : null}
    ${fromLeader
      ? html`<p class="note note-warn" role="note">${t("sent.resendNeedsLeader")}</p>
          <div class="field">
            <label for=${`${base}-approval`}>${t("sent.approval")}</label>
            <textarea
              id=${`${base}-approval`}
              rows="3"
              spellcheck="false"
              aria-describedby=${`${base}-approval-hint`}
              value=${pasted}
              onInput=${(e) => setPasted(e.currentTarget.value)}
            ></textarea>
            <p id=${`${base}-approval-hint`} class="hint" aria-live="polite">
              ${approvalFits ? t("sent.approvalFor", { codes: approval.recipients.join("、") }) : t("sent.approvalHint")}
            </p>
          </div>`
      : html`<${RecipientPicker}
          idBase=${`${base}-picker`}
          value=${chosen}
          onChange=${setChosen}
          excluded=${[me.department, ...already]}
          department=${me.department}
        />`}
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    ${signed
      ? html`<div class="field">
          <label for=${`${base}-signed`}>${t("sent.signedApproval")}</label>
          <textarea id=${`${base}-signed`} rows="3" readonly spellcheck="false" value=${signed} onFocus=${(e) => e.currentTarget.select()}></textarea>
        </div>`
      : html`<button type="button" class="button button-primary" disabled=${busy} onClick=${submit}>
          ${handOver ? t("sent.resendSign") : t("sent.resendSend")}
        </button>`}
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
        ${dispatched && counts.received === 0 && session.hasRole(...FOLLOW_UP_ROLES)
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
            <button type="button" class="button" onClick=${() => setMode(null)}>${t("common.cancel")}</button>
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
  const queryRef = useRef(query);
  queryRef.current = query;
  const [items, failure, more, load] = usePages((cursor) => {
    const params = { box: "sent" };
    if (queryRef.current.trim()) params.q = queryRef.current.trim();
    if (cursor) params.cursor = cursor;
    return api.get("/v1/documents", params);
  });

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
    <${CardList}
      items=${items}
      failure=${failure}
      more=${more}
      load=${load}
      empty=${t("sent.empty")}
      card=${(item) => html`<${SentItem} key=${item.id} item=${item} onChanged=${() => load()} />`}
    />
  </${Page}>`;
}
