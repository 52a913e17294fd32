// 管理 · 印章: a unit's seals with their red image, and the two-admin acts on them: one
// admin asks for a seal or its revocation, another finds the request in the pending list and
// approves or declines it; the requester sees its own as waiting and may withdraw it.
import { html, useState, useEffect } from "../core/html.js";
import { api } from "../core/api.js";
import { session } from "../core/session.js";
import { t, addMessages } from "../core/i18n.js";
import { Page, Button, Loading, ErrorNote, formatTime, notify } from "../core/ui.js";
import { AdminNav, useDepartmentChoice } from "./admin.js";
import { useImageUrl } from "./seal.js";

addMessages({
  zh: {
    "seals.list": "本单位印章",
    "seals.none": "还没有印章",
    "seals.image": "{purpose}印章图样",
    "seals.purpose": "用途",
    "seals.status": "状态",
    "seals.status.active": "有效",
    "seals.status.revoked": "已吊销",
    "seals.status.pending": "待批准",
    "seals.valid": "有效期",
    "seals.request": "申请新印章",
    "seals.requestHint": "印章须两位不同的平台管理员：一位申请，另一位批准。",
    "seals.requestSubmit": "提交申请",
    "seals.requested": "已提交申请，等待另一位平台管理员批准。",
    "seals.pending": "待批准的印章申请",
    "seals.pendingHint": "由一位管理员申请、另一位管理员批准；申请人不能批准自己的申请。",
    "seals.noPending": "没有待批准的印章申请",
    "seals.kind.issue": "新印章",
    "seals.kind.revoke": "吊销印章",
    "seals.requestedBy": "申请人：{who}，{time}",
    "seals.reasonIs": "理由：{reason}",
    "seals.waiting": "您提交的申请，等待另一位平台管理员批准。",
    "seals.approveSubmit": "批准",
    "seals.decline": "拒绝",
    "seals.withdraw": "撤回申请",
    "seals.declined": "已拒绝申请",
    "seals.withdrawn": "已撤回申请",
    "seals.more": "加载更多",
    "seals.issued": "印章已生效",
    "seals.revokedOk": "印章已吊销",
    "seals.revoke": "申请吊销",
    "seals.reason": "吊销理由",
    "seals.revokeSubmit": "提交吊销申请",
    "seals.revokeRequested": "已提交吊销申请，须另一位平台管理员批准。",
    "seals.err.reason": "请填写吊销理由",
    "seals.adminOnly": "印章的申请和批准由平台管理员办理。",
  },
  en: {
    "seals.list": "Seals of the unit",
    "seals.none": "No seal yet",
    "seals.image": "Seal image: {purpose}",
    "seals.purpose": "Purpose",
    "seals.status": "Status",
    "seals.status.active": "Active",
    "seals.status.revoked": "Revoked",
    "seals.status.pending": "Pending",
    "seals.valid": "Valid",
    "seals.request": "Ask for a new seal",
    "seals.requestHint": "Seals take two different platform admins: one asks, another approves.",
    "seals.requestSubmit": "Ask",
    "seals.requested": "Asked: another platform admin must approve it.",
    "seals.pending": "Seal requests waiting for approval",
    "seals.pendingHint": "One admin asks, another approves; nobody approves their own request.",
    "seals.noPending": "No seal request is waiting",
    "seals.kind.issue": "New seal",
    "seals.kind.revoke": "Revoke a seal",
    "seals.requestedBy": "Asked by {who}, {time}",
    "seals.reasonIs": "Reason: {reason}",
    "seals.waiting": "Your request: it waits for another platform admin.",
    "seals.approveSubmit": "Approve",
    "seals.decline": "Decline",
    "seals.withdraw": "Withdraw",
    "seals.declined": "Request declined",
    "seals.withdrawn": "Request withdrawn",
    "seals.more": "Load more",
    "seals.issued": "The seal is active",
    "seals.revokedOk": "The seal is revoked",
    "seals.revoke": "Ask to revoke",
    "seals.reason": "Reason",
    "seals.revokeSubmit": "Ask to revoke",
    "seals.revokeRequested": "Revocation asked: another platform admin must approve it.",
    "seals.err.reason": "Enter the reason",
    "seals.adminOnly": "Platform admins ask for and approve seals.",
  },
});

function SealCard({ seal, admin, onChanged }) {
  const url = useImageUrl(`/v1/seals/${encodeURIComponent(seal.id)}/image.png`);
  const [revoking, setRevoking] = useState(false);
  const [reason, setReason] = useState("");
  const [error, setError] = useState(null);
  const [failure, setFailure] = useState(null);
  const [asked, setAsked] = useState(null);
  const base = `seal-${seal.id}`;

  const revoke = async (event) => {
    event.preventDefault();
    setFailure(null);
    if (!reason.trim()) {
      setError(t("seals.err.reason"));
      return;
    }
    setError(null);
    try {
      const made = await api.post(`/v1/seals/${encodeURIComponent(seal.id)}/revoke`, { reason: reason.trim() }, { idempotencyKey: crypto.randomUUID() });
      setAsked(made.id);
      setRevoking(false);
      onChanged(made);
    } catch (failed) {
      setFailure(failed);
    }
  };

  return html`<li class="panel card seal-card" data-seal=${seal.id}>
    ${url ? html`<img class="seal-image" src=${url} alt=${t("seals.image", { purpose: seal.purpose })} width="120" height="120" />` : null}
    <dl class="facts">
      <dt>${t("seals.purpose")}</dt>
      <dd>${seal.purpose}</dd>
      <dt>${t("seals.status")}</dt>
      <dd>${t(`seals.status.${seal.status}`)}${seal.revoked_at ? ` · ${formatTime(seal.revoked_at)}` : ""}</dd>
      <dt>${t("seals.valid")}</dt>
      <dd>${formatTime(seal.valid_from)} – ${formatTime(seal.valid_to)}</dd>
    </dl>
    ${asked ? html`<p class="note" role="status">${t("seals.revokeRequested")}</p>` : null}
    ${admin && seal.status === "active" && !revoking
      ? html`<button type="button" class="button button-danger" onClick=${() => setRevoking(true)}>${t("seals.revoke")}</button>`
      : null}
    ${revoking
      ? html`<form class="inline-form" novalidate onSubmit=${revoke}>
          <div class="field">
            <label for=${`${base}-reason`}>${t("seals.reason")}</label>
            <textarea
              id=${`${base}-reason`}
              rows="2"
              maxlength="500"
              aria-invalid=${error ? "true" : "false"}
              aria-describedby=${error ? `${base}-error` : undefined}
              value=${reason}
              onInput=${(e) => setReason(e.currentTarget.value)}
            ></textarea>
            ${error ? html`<p id=${`${base}-error`} class="field-error">${error}</p>` : null}
          </div>
          ${failure ? html`<${ErrorNote} error=${failure} />` : null}
          <button type="submit" class="button button-danger">${t("seals.revokeSubmit")}</button>
          <button type="button" class="button" onClick=${() => setRevoking(false)}>${t("admin.cancel")}</button>
        </form>`
      : null}
  </li>`;
}

function RequestSeal({ department, onAsked }) {
  const [purpose, setPurpose] = useState("公文专用章");
  const [asked, setAsked] = useState(null);
  const [failure, setFailure] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    setFailure(null);
    try {
      const made = await api.post(
        `/v1/departments/${encodeURIComponent(department)}/seal-requests`,
        { purpose: purpose.trim() || "公文专用章" },
        { idempotencyKey: crypto.randomUUID() },
      );
      setAsked(made.id);
      onAsked(made);
    } catch (error) {
      setFailure(error);
    }
  };
  return html`<form class="panel card" onSubmit=${submit} aria-labelledby="seal-request-heading">
    <h2 id="seal-request-heading">${t("seals.request")}</h2>
    <p class="hint">${t("seals.requestHint")}</p>
    <div class="field">
      <label for="seal-purpose">${t("seals.purpose")}</label>
      <input id="seal-purpose" type="text" maxlength="40" value=${purpose} onInput=${(e) => setPurpose(e.currentTarget.value)} />
    </div>
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    ${asked ? html`<p class="note" role="status" data-request=${asked}>${t("seals.requested")}</p>` : null}
    <button type="submit" class="button button-primary">${t("seals.requestSubmit")}</button>
  </form>`;
}

function RequestImage({ seal, purpose }) {
  const url = useImageUrl(seal.image_url);
  return url ? html`<img class="seal-image" src=${url} alt=${t("seals.image", { purpose })} width="120" height="120" />` : null;
}

/** One pending request: the second admin approves or declines it, its requester withdraws it. */
function PendingRequest({ request, onDecided }) {
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const mine = request.requested_by.id === session.me.id;
  const decide = async (verb) => {
    setFailure(null);
    setBusy(true);
    try {
      const answer = await api.post(`/v1/seal-requests/${encodeURIComponent(request.id)}/${verb}`, {}, { idempotencyKey: crypto.randomUUID() });
      if (verb === "approve") notify(answer.status === "revoked" ? t("seals.revokedOk") : t("seals.issued"));
      else notify(mine ? t("seals.withdrawn") : t("seals.declined"));
      onDecided(request);
    } catch (error) {
      setFailure(error); // e.g. 403 same_person: the server says why in its own words
    } finally {
      setBusy(false);
    }
  };
  return html`<li class=${`panel card${request.seal ? " seal-card" : ""}`} data-seal-request=${request.id}>
    ${request.seal ? html`<${RequestImage} seal=${request.seal} purpose=${request.purpose} />` : null}
    <h3>${t(`seals.kind.${request.kind}`)}：${request.department_name} · ${request.purpose}</h3>
    <p class="doc-line">
      <span>${t("seals.requestedBy", { who: request.requested_by.name || request.requested_by.id, time: formatTime(request.requested_at) })}</span>
      ${request.reason ? html`<span>${t("seals.reasonIs", { reason: request.reason })}</span>` : null}
    </p>
    ${mine ? html`<p class="note">${t("seals.waiting")}</p>` : null}
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    <div class="form-actions">
      ${mine
        ? html`<${Button} busy=${busy} onClick=${() => decide("decline")}>${t("seals.withdraw")}</${Button}>`
        : html`<${Button} kind="primary" busy=${busy} onClick=${() => decide("approve")}>${t("seals.approveSubmit")}</${Button}>
            <${Button} busy=${busy} onClick=${() => decide("decline")}>${t("seals.decline")}</${Button}>`}
    </div>
  </li>`;
}

/** Every unit's pending seal requests, newest first: what waits for a second admin. */
function PendingRequests({ version, onDecided }) {
  const [items, setItems] = useState(null);
  const [next, setNext] = useState(null);
  const [failure, setFailure] = useState(null);
  const load = (cursor) =>
    api.get("/v1/seal-requests", cursor ? { status: "pending", cursor } : { status: "pending" }).then((page) => {
      setItems((shown) => (cursor ? [...(shown || []), ...page.items] : page.items));
      setNext(page.next_cursor);
    }, setFailure);
  useEffect(() => {
    setFailure(null);
    load(null);
  }, [version]);
  const decided = (request) => {
    setItems((shown) => (shown || []).filter((r) => r.id !== request.id));
    onDecided(request);
  };
  return html`<section aria-labelledby="seal-requests-heading">
    <h2 id="seal-requests-heading">${t("seals.pending")}</h2>
    <p class="hint">${t("seals.pendingHint")}</p>
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    ${items === null
      ? failure ? null : html`<${Loading} />`
      : items.length === 0
        ? html`<p class="hint">${t("seals.noPending")}</p>`
        : html`<ul class="cards">${items.map((r) => html`<${PendingRequest} key=${r.id} request=${r} onDecided=${decided} />`)}</ul>`}
    ${next ? html`<${Button} onClick=${() => load(next)}>${t("seals.more")}</${Button}>` : null}
  </section>`;
}

export function AdminSealsScreen() {
  const admin = session.hasRole("admin");
  const [department, chooser] = useDepartmentChoice();
  const [seals, setSeals] = useState(null);
  const [failure, setFailure] = useState(null);
  // Bumped when this admin asks for something, so the pending list shows it at once.
  const [asked, setAsked] = useState(0);
  const load = () => api.get(`/v1/departments/${encodeURIComponent(department)}/seals`).then((page) => setSeals(page.items), setFailure);
  useEffect(() => {
    setSeals(null);
    load();
  }, [department]);
  const changed = () => setAsked((n) => n + 1);

  return html`<${Page} title=${t("admin.seals")}>
    <${AdminNav} />
    ${chooser}
    <section aria-labelledby="seals-heading">
      <h2 id="seals-heading">${t("seals.list")}</h2>
      ${failure ? html`<${ErrorNote} error=${failure} />` : null}
      ${seals === null
        ? failure ? null : html`<${Loading} />`
        : seals.length === 0
          ? html`<p class="hint">${t("seals.none")}</p>`
          : html`<ul class="cards">${seals.map((s) => html`<${SealCard} key=${s.id} seal=${s} admin=${admin} onChanged=${changed} />`)}</ul>`}
    </section>
    ${admin
      ? html`<${PendingRequests} version=${asked} onDecided=${load} />
          <${RequestSeal} department=${department} onAsked=${changed} />`
      : html`<p class="hint">${t("seals.adminOnly")}</p>`}
  </${Page}>`;
}
