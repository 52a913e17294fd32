// 管理 · 印章: a unit's seals with their red image, and the two-admin acts on them (one
// admin asks for a seal or its revocation, another approves by the request's id, which the
// first hands over: the API lists no seal requests, so they travel by id).
import { html, useState, useEffect } from "../core/html.js";
import { api } from "../core/api.js";
import { session } from "../core/session.js";
import { t, addMessages } from "../core/i18n.js";
import { Page, Loading, ErrorNote, formatTime, notify } from "../core/ui.js";
import { AdminNav, useDepartmentChoice } from "./admin.js";
import { useImageUrl } from "./seal.js";
import "./style.js";

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
    "seals.requested": "已提交申请。请将以下申请编号交给另一位平台管理员批准：",
    "seals.approve": "批准申请",
    "seals.approveHint": "输入另一位管理员交来的申请编号。",
    "seals.requestId": "申请编号",
    "seals.approveSubmit": "批准",
    "seals.issued": "印章已生效",
    "seals.revokedOk": "印章已吊销",
    "seals.revoke": "申请吊销",
    "seals.reason": "吊销理由",
    "seals.revokeSubmit": "提交吊销申请",
    "seals.revokeRequested": "已提交吊销申请，编号：{id}。须另一位平台管理员批准。",
    "seals.err.reason": "请填写吊销理由",
    "seals.err.id": "请填写申请编号",
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
    "seals.requested": "Asked. Hand this request id to another platform admin to approve it:",
    "seals.approve": "Approve a request",
    "seals.approveHint": "Enter the request id another admin handed you.",
    "seals.requestId": "Request id",
    "seals.approveSubmit": "Approve",
    "seals.issued": "The seal is active",
    "seals.revokedOk": "The seal is revoked",
    "seals.revoke": "Ask to revoke",
    "seals.reason": "Reason",
    "seals.revokeSubmit": "Ask to revoke",
    "seals.revokeRequested": "Revocation asked: request {id}. Another platform admin must approve it.",
    "seals.err.reason": "Enter the reason",
    "seals.err.id": "Enter the request id",
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
      onChanged();
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
    ${asked ? html`<p class="note" role="status">${t("seals.revokeRequested", { id: asked })}</p>` : null}
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

function RequestSeal({ department }) {
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
    ${asked
      ? html`<p class="note" role="status">
          ${t("seals.requested")} <code class="request-id" data-request=${asked}>${asked}</code>
        </p>`
      : null}
    <button type="submit" class="button button-primary">${t("seals.requestSubmit")}</button>
  </form>`;
}

function ApproveRequest({ onApproved }) {
  const [id, setId] = useState("");
  const [error, setError] = useState(null);
  const [failure, setFailure] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    setFailure(null);
    if (!id.trim()) {
      setError(t("seals.err.id"));
      return;
    }
    setError(null);
    try {
      const seal = await api.post(`/v1/seal-requests/${encodeURIComponent(id.trim())}/approve`, {}, { idempotencyKey: crypto.randomUUID() });
      notify(seal.status === "revoked" ? t("seals.revokedOk") : t("seals.issued"));
      setId("");
      onApproved(seal);
    } catch (failed) {
      setFailure(failed);
    }
  };
  return html`<form class="panel card" novalidate onSubmit=${submit} aria-labelledby="seal-approve-heading">
    <h2 id="seal-approve-heading">${t("seals.approve")}</h2>
    <div class="field">
      <label for="seal-request-id">${t("seals.requestId")}</label>
      <input
        id="seal-request-id"
        type="text"
        autocomplete="off"
        spellcheck="false"
        aria-invalid=${error ? "true" : "false"}
        aria-describedby=${error ? "seal-request-id-hint seal-request-id-error" : "seal-request-id-hint"}
        value=${id}
        onInput=${(e) => setId(e.currentTarget.value)}
      />
      <p id="seal-request-id-hint" class="hint">${t("seals.approveHint")}</p>
      ${error ? html`<p id="seal-request-id-error" class="field-error">${error}</p>` : null}
    </div>
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    <button type="submit" class="button button-primary">${t("seals.approveSubmit")}</button>
  </form>`;
}

export function AdminSealsScreen() {
  const admin = session.hasRole("admin");
  const [department, chooser] = useDepartmentChoice();
  const [seals, setSeals] = useState(null);
  const [failure, setFailure] = useState(null);
  const load = () => api.get(`/v1/departments/${encodeURIComponent(department)}/seals`).then((page) => setSeals(page.items), setFailure);
  useEffect(() => {
    setSeals(null);
    load();
  }, [department]);

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
          : html`<ul class="cards">${seals.map((s) => html`<${SealCard} key=${s.id} seal=${s} admin=${admin} onChanged=${load} />`)}</ul>`}
    </section>
    ${admin
      ? html`<${RequestSeal} department=${department} />
          <${ApproveRequest} onApproved=${load} />`
      : html`<p class="hint">${t("seals.adminOnly")}</p>`}
  </${Page}>`;
}
