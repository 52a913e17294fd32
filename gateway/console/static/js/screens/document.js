// One document (received or sent): the sealed PDF drawn in the page with a download, the
// GB/T 9704 metadata, each seal as POST /v1/verify judges the very bytes shown, the trail
// of who did what and when, and — for a delivery to my department — 签收 and 退回 signed
// in the browser as the SDK signs them (`sealhub-receipt+jwt`), with a passkey step-up
// when the session needs one.
import { html, useEffect, useMemo, useState } from "../core/html.js";
import { addMessages, t } from "../core/i18n.js";
import { api } from "../core/api.js";
import { DepartmentName, OfficialName } from "../core/directory.js";
import { sha256Hex, signJws } from "../core/jws.js";
import { stepUp } from "../core/passkey.js";
import { PdfView } from "../core/pdf.js";
import { session } from "../core/session.js";
import { Button, ErrorNote, Field, Loading, Page, StateBadge, Urgency, formatTime, notify, useLoad } from "../core/ui.js";

addMessages({
  zh: {
    "document.title": "公文",
    "document.pdf": "正式文件",
    "document.download": "下载 PDF",
    "document.hash.ok": "文件 SHA-256 与平台记录一致。",
    "document.hash.bad": "文件 SHA-256 与平台记录不一致，请勿签收。",
    "document.notsealed": "此公文尚未用印分发。",
    "document.meta": "版头信息（GB/T 9704）",
    "meta.sender": "发文机关",
    "meta.number": "发文字号",
    "meta.title": "标题",
    "meta.urgency": "紧急程度",
    "meta.classification": "密级",
    "meta.main": "主送",
    "meta.cc": "抄送",
    "meta.date": "印发日期",
    "meta.deadline": "办理期限",
    "meta.status": "状态",
    "meta.sha256": "SHA-256",
    "classification.public": "公开",
    "classification.internal": "内部",
    "document.seals": "印章核验",
    "seal.valid": "有效",
    "seal.invalid": "无效",
    "seal.department": "用印单位",
    "seal.signer": "签章者",
    "seal.time": "用印时间",
    "seal.timestamp": "时间戳",
    "seal.intact": "文件未被篡改",
    "seal.trusted": "证书可信",
    "seal.revoked": "印章已吊销",
    "seal.none": "文件中没有印章。",
    "seal.checking": "正在核验印章…",
    "document.trail": "流转记录",
    "trail.created": "起草",
    "trail.approve": "同意",
    "trail.reject": "不同意",
    "trail.sealed": "用印并分发",
    "trail.withdrawn": "撤回",
    "trail.delivered": "送达",
    "trail.fetched": "已查阅",
    "trail.received": "签收",
    "trail.rejected": "退回",
    "document.decide": "签收办理",
    "document.receive": "签收",
    "document.reject": "退回",
    "document.reason": "退回理由",
    "document.reason.hint": "退回必须填写理由，理由将写入回执并通知来文单位。",
    "document.received": "已签收。",
    "document.rejected": "已退回。",
    "document.decided": "本单位已办理：{state}",
  },
  en: {
    "document.title": "Document",
    "document.pdf": "The sealed document",
    "document.download": "Download PDF",
    "document.hash.ok": "The file's SHA-256 matches the platform's record.",
    "document.hash.bad": "The file's SHA-256 does not match the record: do not sign for it.",
    "document.notsealed": "This document is not sealed and dispatched yet.",
    "document.meta": "Header data (GB/T 9704)",
    "meta.sender": "Issued by",
    "meta.number": "Document number",
    "meta.title": "Title",
    "meta.urgency": "Urgency",
    "meta.classification": "Classification",
    "meta.main": "To",
    "meta.cc": "Cc",
    "meta.date": "Issued",
    "meta.deadline": "Deadline",
    "meta.status": "Status",
    "meta.sha256": "SHA-256",
    "classification.public": "Public",
    "classification.internal": "Internal",
    "document.seals": "Seal verification",
    "seal.valid": "Valid",
    "seal.invalid": "Not valid",
    "seal.department": "Department",
    "seal.signer": "Signer",
    "seal.time": "Sealed at",
    "seal.timestamp": "Time stamp",
    "seal.intact": "Unchanged",
    "seal.trusted": "Trusted certificate",
    "seal.revoked": "Seal revoked",
    "seal.none": "The file carries no seal.",
    "seal.checking": "Verifying the seals…",
    "document.trail": "Trail",
    "trail.created": "drafted",
    "trail.approve": "approved",
    "trail.reject": "rejected",
    "trail.sealed": "sealed and dispatched",
    "trail.withdrawn": "Withdrawn",
    "trail.delivered": "Delivered to",
    "trail.fetched": "opened it",
    "trail.received": "signed for it",
    "trail.rejected": "returned it",
    "document.decide": "Sign for",
    "document.receive": "Sign for",
    "document.reject": "Return",
    "document.reason": "Reason for returning",
    "document.reason.hint": "A return needs a reason; it goes into the receipt and to the sender.",
    "document.received": "Signed for.",
    "document.rejected": "Returned.",
    "document.decided": "Handled by my department: {state}",
  },
});

const yesNo = (value) => (value ? t("common.yes") : t("common.no"));

function Meta({ doc }) {
  const main = doc.deliveries.filter((d) => !d.copy);
  const cc = doc.deliveries.filter((d) => d.copy);
  const names = (list) =>
    list.length ? list.map((d, i) => html`${i ? "、" : ""}<${DepartmentName} code=${d.recipient} />`) : "—";
  return html`<dl class="meta">
    <dt>${t("meta.sender")}</dt><dd><${DepartmentName} code=${doc.sender} /></dd>
    <dt>${t("meta.number")}</dt><dd>${doc.doc_number}</dd>
    <dt>${t("meta.title")}</dt><dd>${doc.title}</dd>
    <dt>${t("meta.urgency")}</dt><dd><${Urgency} value=${doc.urgency} /></dd>
    <dt>${t("meta.classification")}</dt><dd>${t(`classification.${doc.classification}`)}</dd>
    <dt>${t("meta.main")}</dt><dd>${names(main)}</dd>
    <dt>${t("meta.cc")}</dt><dd>${names(cc)}</dd>
    <dt>${t("meta.date")}</dt><dd>${formatTime(doc.dispatched_at)}</dd>
    <dt>${t("meta.deadline")}</dt><dd>${formatTime(doc.deadline)}</dd>
    <dt>${t("meta.status")}</dt><dd><${StateBadge} state=${doc.status} /></dd>
    <dt>${t("meta.sha256")}</dt><dd><code>${doc.sha256 ?? "—"}</code></dd>
  </dl>`;
}

/** The certificate subject's common name (the seal's name), else the whole subject. */
function commonName(subject) {
  return /Common Name: ([^,]+)/.exec(subject ?? "")?.[1] ?? subject;
}

function Seal({ seal }) {
  const ok = seal.intact && seal.trusted && !seal.revoked && seal.modifications_allowed !== false;
  return html`<div class=${ok ? "seal" : "seal seal-bad"} data-seal-valid=${ok ? "true" : "false"}>
    <p><span class=${ok ? "badge badge-ok" : "badge badge-bad"}>${ok ? t("seal.valid") : t("seal.invalid")}</span></p>
    <dl class="meta">
      <dt>${t("seal.department")}</dt><dd>${seal.department ? html`<${DepartmentName} code=${seal.department} />` : "—"}</dd>
      <dt>${t("seal.signer")}</dt><dd title=${seal.signer_subject}>${commonName(seal.signer_subject) || "—"}</dd>
      <dt>${t("seal.time")}</dt><dd>${formatTime(seal.signed_at)}</dd>
      <dt>${t("seal.timestamp")}</dt><dd>${formatTime(seal.timestamp)}</dd>
      <dt>${t("seal.intact")}</dt><dd>${yesNo(seal.intact)}</dd>
      <dt>${t("seal.trusted")}</dt><dd>${yesNo(seal.trusted)}</dd>
      <dt>${t("seal.revoked")}</dt><dd>${yesNo(seal.revoked)}</dd>
    </dl>
    ${(seal.problems ?? []).map((p) => html`<p class="note note-warn">${p}</p>`)}
  </div>`;
}

function Seals({ bytes }) {
  const [report, error] = useLoad(() => api.postBytes("/v1/verify", bytes), [bytes]);
  return html`<section class="panel" aria-labelledby="seals-title">
    <h2 id="seals-title">${t("document.seals")}</h2>
    <${ErrorNote} error=${error} />
    ${report === undefined && !error
      ? html`<p class="loading" role="status" aria-busy="true">${t("seal.checking")}</p>`
      : report && !report.seals.length
        ? html`<p>${t("seal.none")}</p>`
        : (report?.seals ?? []).map((seal) => html`<${Seal} key=${seal.field} seal=${seal} />`)}
  </section>`;
}

/** Every step of the document, oldest first, as [time, what, note] with names resolved. */
function trailOf(doc) {
  const who = (id, name, department) => html`<${OfficialName} id=${id} name=${name} department=${department} />`;
  const to = (code) => html`<${DepartmentName} code=${code} />`;
  const events = [{ at: doc.created_at, what: html`${who(doc.created_by, null, doc.sender)} ${t("trail.created")}` }];
  for (const a of doc.approvals) {
    events.push({
      at: a.at,
      what: html`${a.step_name}：${who(a.official, a.official_name)} ${t(`trail.${a.decision}`)}`,
      note: a.opinion,
    });
  }
  if (doc.dispatched_at) {
    events.push({ at: doc.dispatched_at, what: html`${doc.sealed_by ? who(doc.sealed_by, null, doc.sender) : null} ${t("trail.sealed")}` });
  }
  for (const d of doc.deliveries) {
    events.push({ at: d.created_at, what: html`${t("trail.delivered")} ${to(d.recipient)}${d.copy ? ` (${t("meta.cc")})` : ""}` });
    if (d.fetched_at) events.push({ at: d.fetched_at, what: html`${to(d.recipient)} ${t("trail.fetched")}` });
    if (d.decided_at && d.state === "received") {
      events.push({ at: d.decided_at, what: html`${who(d.decided_by, null, d.recipient)} ${t("trail.received")}` });
    }
    if (d.decided_at && d.state === "rejected") {
      events.push({ at: d.decided_at, what: html`${who(d.decided_by, null, d.recipient)} ${t("trail.rejected")}`, note: d.reason });
    }
  }
  if (doc.withdrawn_at) events.push({ at: doc.withdrawn_at, what: t("trail.withdrawn") });
  return events.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
}

function Trail({ doc }) {
  const events = useMemo(() => trailOf(doc), [doc]);
  return html`<section class="panel" aria-labelledby="trail-title">
    <h2 id="trail-title">${t("document.trail")}</h2>
    <ol class="trail">
      ${events.map((e) => html`<li>
        <time datetime=${e.at}>${formatTime(e.at)}</time>
        <span>${e.what}</span>
        ${e.note ? html`<p class="hint">${e.note}</p>` : null}
      </li>`)}
    </ol>
  </section>`;
}

/** 签收 / 退回: the receipt JWS over the delivered bytes, a passkey when needed. */
async function decide(delivery, sha256, action, reason) {
  const jws = await signJws("sealhub-receipt+jwt", { delivery: delivery.id, sha256, action, reason });
  const path = `/v1/deliveries/${encodeURIComponent(delivery.id)}/${action === "receive" ? "receipt" : "reject"}`;
  const body = { signature: jws };
  const passkey = await stepUp(jws);
  if (passkey) body.passkey = passkey;
  try {
    return await api.post(path, body, { idempotencyKey: crypto.randomUUID() });
  } catch (error) {
    if (error.code !== "passkey_required" || passkey) throw error;
    return api.post(path, { ...body, passkey: await stepUp(jws, { force: true }) }, { idempotencyKey: crypto.randomUUID() });
  }
}

function Decision({ delivery, sha256, onDone }) {
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  if (!["pending", "fetched"].includes(delivery.state)) {
    return html`<p class="note note-ok">${t("document.decided", { state: t(`state.${delivery.state}`) })}</p>`;
  }
  async function run(action) {
    setBusy(action);
    setError(null);
    try {
      await decide(delivery, sha256, action, action === "reject" ? reason.trim() : "");
      notify(t(action === "receive" ? "document.received" : "document.rejected"));
      onDone();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(null);
    }
  }
  return html`<section class="panel decision" aria-labelledby="decide-title">
    <h2 id="decide-title">${t("document.decide")}</h2>
    <${ErrorNote} error=${error} />
    <div class="form-actions">
      <${Button} kind="primary" busy=${busy === "receive"} disabled=${Boolean(busy)} onClick=${() => run("receive")}>
        ${t("document.receive")}
      <//>
    </div>
    <${Field} label=${t("document.reason")} hint=${t("document.reason.hint")}>
      <textarea name="reason" maxlength="2000" value=${reason} onInput=${(e) => setReason(e.currentTarget.value)}></textarea>
    <//>
    <div class="form-actions">
      <${Button} kind="danger" busy=${busy === "reject"} disabled=${Boolean(busy) || !reason.trim()} onClick=${() => run("reject")}>
        ${t("document.reject")}
      <//>
    </div>
  </section>`;
}

function Download({ bytes, name }) {
  const url = useMemo(() => URL.createObjectURL(new Blob([bytes], { type: "application/pdf" })), [bytes]);
  useEffect(() => () => URL.revokeObjectURL(url), [url]);
  return html`<a class="button" href=${url} download=${name}>${t("document.download")}</a>`;
}

async function loadDocument(id) {
  const doc = await api.get(`/v1/documents/${encodeURIComponent(id)}`);
  if (!doc.sha256) return { doc, bytes: null, hash: null };
  const bytes = await api.bytes(`/v1/documents/${encodeURIComponent(id)}/content`);
  return { doc, bytes, hash: await sha256Hex(bytes) };
}

export function DocumentView({ params, query }) {
  const [value, error] = useLoad(() => loadDocument(params.id), [params.id]);
  // After 签收 or 退回 only the record is read again: the bytes and their seals are the same.
  const [fresh, setFresh] = useState(null);
  const doc = fresh?.id === params.id ? fresh : value?.doc;
  const reload = () => api.get(`/v1/documents/${encodeURIComponent(params.id)}`).then(setFresh, () => {});
  const mine = doc?.deliveries.find((d) =>
    query.delivery ? d.id === query.delivery : d.recipient === session.me?.department && !d.copy,
  ) ?? doc?.deliveries.find((d) => d.recipient === session.me?.department);
  const hashOk = value?.hash && value.hash === doc.sha256;
  const file = `${(doc?.doc_number || doc?.title || "document").replace(/[\\/:*?"<>|]/g, "_")}.pdf`;
  return html`<${Page}
    title=${doc ? doc.title : t("document.title")}
    actions=${value?.bytes ? html`<${Download} bytes=${value.bytes} name=${file} />` : null}
  >
    <${ErrorNote} error=${error} />
    ${!value && !error ? html`<${Loading} />` : null}
    ${doc
      ? html`<div class="doc-layout">
          <div>
            ${value.bytes
              ? html`<p class=${hashOk ? "note note-ok" : "note note-error"}>${t(hashOk ? "document.hash.ok" : "document.hash.bad")}</p>
                  <${PdfView} bytes=${value.bytes} label=${t("document.pdf")} />`
              : html`<p class="note">${t("document.notsealed")}</p>`}
          </div>
          <div>
            ${mine && hashOk ? html`<${Decision} delivery=${mine} sha256=${value.hash} onDone=${reload} />` : null}
            <section class="panel" aria-labelledby="meta-title">
              <h2 id="meta-title">${t("document.meta")}</h2>
              <${Meta} doc=${doc} />
            </section>
            ${value.bytes ? html`<${Seals} bytes=${value.bytes} />` : null}
            <${Trail} doc=${doc} />
          </div>
        </div>`
      : null}
  <//>`;
}
