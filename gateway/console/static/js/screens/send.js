// 发文: the GB/T 9704 metadata, the recipients, the PDF (uploaded with a progress bar) and an
// optional approval chain (核稿 / 会签 / 签发). With a chain the document goes to in_approval;
// without one only a seal keeper may send, and the gateway seals and dispatches it at once.
import { html, useState, useEffect, useRef } from "../core/html.js";
import { api, listAll } from "../core/api.js";
import { session } from "../core/session.js";
import { t, addMessages } from "../core/i18n.js";
import { Page, ErrorNote, TextField, notify } from "../core/ui.js";
import { RecipientPicker } from "./recipients.js";

addMessages({
  zh: {
    "nav.send": "发文",
    "send.title": "发文",
    "send.meta": "公文信息",
    "send.docTitle": "标题",
    "send.docNumber": "发文字号",
    "send.docNumberHint": "例如：玉教发〔2026〕12号",
    "send.urgency": "紧急程度",
    "send.urgency.normal": "平件",
    "send.urgency.urgent": "加急",
    "send.urgency.very_urgent": "特急",
    "send.classification": "公开属性",
    "send.classification.public": "公开",
    "send.classification.internal": "内部",
    "send.classifiedNote": "涉密公文（秘密及以上）不得通过本平台传输。",
    "send.deadline": "办理期限（可选）",
    "send.deadlineHint": "不填则按紧急程度计算签收时限",
    "send.recipients": "主送与抄送",
    "send.file": "正文",
    "send.fileInput": "选择 PDF 文件",
    "send.fileHint": "只接受 PDF 文件",
    "send.chain": "审批流程",
    "send.useChain": "送审批（核稿、会签、签发）后再用印",
    "send.chainRequired": "您没有用印权限，发文须经审批流程，签发后由本单位用印员用印。",
    "send.direct": "不走审批：提交后立即用印并分发。",
    "send.step": "第{n}步",
    "send.stepName": "环节",
    "send.step.核稿": "核稿",
    "send.step.会签": "会签",
    "send.step.签发": "签发",
    "send.mode": "方式",
    "send.mode.any": "任一人同意即可",
    "send.mode.all": "须全部同意",
    "send.assignees": "办理人",
    "send.leadersOnly": "签发只能由本单位领导办理，且不能是拟稿人本人。",
    "send.noCandidates": "本单位没有可选的办理人",
    "send.addStep": "在签发前增加一步",
    "send.removeStep": "删除第{n}步",
    "send.submitChain": "送审批",
    "send.submitDirect": "用印并发送",
    "send.uploading": "正在上传：{pct}%",
    "send.uploaded": "上传完成，正在处理…",
    "send.progress": "上传进度",
    "send.fixErrors": "请先更正以下问题：",
    "send.err.title": "请填写标题",
    "send.err.docNumber": "请填写发文字号",
    "send.err.recipients": "请至少选择一个主送单位",
    "send.err.file": "请选择 PDF 文件",
    "send.err.notPdf": "所选文件不是 PDF",
    "send.err.deadline": "办理期限须晚于现在",
    "send.err.step": "第{n}步须至少选择一位办理人",
    "send.err.chainNeeded": "须设置审批流程",
    "send.done.dispatched": "已用印并分发给 {n} 个单位。",
    "send.done.in_approval": "已送审批。",
    "send.open": "查看公文",
    "send.another": "再发一件",
    "send.loadingOfficials": "正在读取本单位人员…",
  },
  en: {
    "nav.send": "Send",
    "send.title": "Send",
    "send.meta": "Document",
    "send.docTitle": "Title",
    "send.docNumber": "Document number",
    "send.docNumberHint": "e.g. 玉教发〔2026〕12号",
    "send.urgency": "Urgency",
    "send.urgency.normal": "Normal",
    "send.urgency.urgent": "Urgent",
    "send.urgency.very_urgent": "Very urgent",
    "send.classification": "Classification",
    "send.classification.public": "Public",
    "send.classification.internal": "Internal",
    "send.classifiedNote": "Classified documents (secret and above) never travel on this platform.",
    "send.deadline": "Deadline (optional)",
    "send.deadlineHint": "Without one, the time to sign for follows the urgency",
    "send.recipients": "Recipients",
    "send.file": "Document",
    "send.fileInput": "Choose the PDF file",
    "send.fileHint": "PDF files only",
    "send.chain": "Approval",
    "send.useChain": "Send for approval (review, countersign, sign-off) before sealing",
    "send.chainRequired": "You may not seal: the document needs an approval chain, and a seal keeper seals it after sign-off.",
    "send.direct": "No approval: sealed and dispatched as soon as it is submitted.",
    "send.step": "Step {n}",
    "send.stepName": "Step",
    "send.step.核稿": "Review (核稿)",
    "send.step.会签": "Countersign (会签)",
    "send.step.签发": "Sign-off (签发)",
    "send.mode": "Mode",
    "send.mode.any": "Any one approves",
    "send.mode.all": "All must approve",
    "send.assignees": "Assignees",
    "send.leadersOnly": "Only the department's leaders sign off, and never the drafter.",
    "send.noCandidates": "No one in the department can take this step",
    "send.addStep": "Add a step before sign-off",
    "send.removeStep": "Remove step {n}",
    "send.submitChain": "Send for approval",
    "send.submitDirect": "Seal and send",
    "send.uploading": "Uploading: {pct}%",
    "send.uploaded": "Uploaded, processing…",
    "send.progress": "Upload progress",
    "send.fixErrors": "Please correct these first:",
    "send.err.title": "Enter the title",
    "send.err.docNumber": "Enter the document number",
    "send.err.recipients": "Choose at least one recipient",
    "send.err.file": "Choose a PDF file",
    "send.err.notPdf": "The chosen file is not a PDF",
    "send.err.deadline": "The deadline must be in the future",
    "send.err.step": "Step {n} needs at least one assignee",
    "send.err.chainNeeded": "An approval chain is needed",
    "send.done.dispatched": "Sealed and dispatched to {n} units.",
    "send.done.in_approval": "Sent for approval.",
    "send.open": "Open the document",
    "send.another": "Send another",
    "send.loadingOfficials": "Reading the department's officials…",
  },
});

const URGENCIES = ["normal", "urgent", "very_urgent"];
const CLASSIFICATIONS = ["internal", "public"];
const MIDDLE_STEPS = ["核稿", "会签"];
const SIGN_OFF = "签发";
const APPROVER_ROLES = ["clerk", "leader", "dept_admin", "seal_keeper"];

/** Every official of the department (GET /v1/officials?department=). */
export function departmentOfficials(department) {
  return listAll("/v1/officials", { department });
}

async function looksLikePdf(file) {
  const head = new Uint8Array(await file.slice(0, 1024).arrayBuffer());
  const text = String.fromCharCode(...head);
  return text.includes("%PDF-");
}

function emptyForm() {
  return {
    title: "",
    doc_number: "",
    urgency: "normal",
    classification: "internal",
    deadline: "",
    chosen: { recipients: [], cc: [] },
  };
}

function canApprove(official, me) {
  return official.status === "active" && official.id !== me.id && official.roles.some((r) => APPROVER_ROLES.includes(r));
}

function StepEditor({ step, index, last, candidates, onChange, onRemove, error }) {
  const base = `step-${index}`;
  const toggle = (id) =>
    onChange({
      ...step,
      assignees: step.assignees.includes(id) ? step.assignees.filter((a) => a !== id) : [...step.assignees, id],
    });
  return html`<fieldset class="step" aria-describedby=${error ? `${base}-error` : undefined}>
    <legend>${t("send.step", { n: index + 1 })}: ${t(`send.step.${step.name}`)}</legend>
    <div class="row">
      ${last
        ? null
        : html`<div class="field">
            <label for=${`${base}-name`}>${t("send.stepName")}</label>
            <select id=${`${base}-name`} value=${step.name} onChange=${(e) => onChange({ ...step, name: e.currentTarget.value })}>
              ${MIDDLE_STEPS.map((name) => html`<option value=${name}>${t(`send.step.${name}`)}</option>`)}
            </select>
          </div>`}
      <div class="field">
        <label for=${`${base}-mode`}>${t("send.mode")}</label>
        <select id=${`${base}-mode`} value=${step.mode} onChange=${(e) => onChange({ ...step, mode: e.currentTarget.value })}>
          <option value="any">${t("send.mode.any")}</option>
          <option value="all">${t("send.mode.all")}</option>
        </select>
      </div>
    </div>
    ${last ? html`<p class="hint">${t("send.leadersOnly")}</p>` : null}
    <fieldset class="assignees">
      <legend>${t("send.assignees")}</legend>
      ${candidates.length === 0
        ? html`<p class="hint">${t("send.noCandidates")}</p>`
        : candidates.map(
            (o) => html`<div class="check" key=${o.id}>
              <input
                type="checkbox"
                id=${`${base}-${o.id}`}
                checked=${step.assignees.includes(o.id)}
                onChange=${() => toggle(o.id)}
              />
              <label for=${`${base}-${o.id}`}>${o.name}</label>
            </div>`,
          )}
    </fieldset>
    ${error ? html`<p id=${`${base}-error`} class="field-error">${error}</p>` : null}
    ${last
      ? null
      : html`<button type="button" class="button" onClick=${onRemove}>${t("send.removeStep", { n: index + 1 })}</button>`}
  </fieldset>`;
}

function ChainEditor({ steps, onChange, officials, me, errors }) {
  if (officials === null) return html`<p class="hint">${t("send.loadingOfficials")}</p>`;
  const approvers = officials.filter((o) => canApprove(o, me));
  const leaders = approvers.filter((o) => o.roles.includes("leader"));
  const update = (i, step) => onChange(steps.map((s, j) => (i === j ? step : s)));
  const remove = (i) => onChange(steps.filter((_, j) => j !== i));
  const addStep = () => onChange([...steps.slice(0, -1), { name: "核稿", mode: "any", assignees: [] }, steps[steps.length - 1]]);
  return html`<div class="chain">
    <ol class="steps">
      ${steps.map((step, i) => {
        const last = i === steps.length - 1;
        return html`<li key=${i}>
          <${StepEditor}
            step=${step}
            index=${i}
            last=${last}
            candidates=${last ? leaders : approvers}
            onChange=${(s) => update(i, s)}
            onRemove=${() => remove(i)}
            error=${errors[`step${i}`]}
          />
        </li>`;
      })}
    </ol>
    ${steps.length < 10 ? html`<button type="button" class="button" onClick=${addStep}>${t("send.addStep")}</button>` : null}
  </div>`;
}

function validate(form, file, useChain, steps, mayDirect) {
  const errors = {};
  if (!form.title.trim()) errors.title = t("send.err.title");
  if (!form.doc_number.trim()) errors.doc_number = t("send.err.docNumber");
  if (form.chosen.recipients.length === 0) errors.recipients = t("send.err.recipients");
  if (!file) errors.file = t("send.err.file");
  if (form.deadline && !(new Date(form.deadline).getTime() > Date.now())) errors.deadline = t("send.err.deadline");
  if (!useChain && !mayDirect) errors.chain = t("send.err.chainNeeded");
  if (useChain) {
    steps.forEach((step, i) => {
      if (step.assignees.length === 0) errors[`step${i}`] = t("send.err.step", { n: i + 1 });
    });
  }
  return errors;
}

function metaOf(form, useChain, steps) {
  const meta = {
    title: form.title.trim(),
    doc_number: form.doc_number.trim(),
    urgency: form.urgency,
    classification: form.classification,
    recipients: form.chosen.recipients,
    cc: form.chosen.cc,
  };
  if (form.deadline) meta.deadline = new Date(form.deadline).toISOString();
  if (useChain) meta.workflow = { steps: steps.map(({ name, mode, assignees }) => ({ name, mode, assignees })) };
  return meta;
}

function Done({ result, onAgain }) {
  const message =
    result.status === "dispatched" ? t("send.done.dispatched", { n: result.deliveries }) : t("send.done.in_approval");
  return html`<div class="done" role="status">
    <p>${message}</p>
    <p>
      <a href=${`#/documents/${result.id}`}>${t("send.open")}</a>
      ${" "}
      <button type="button" class="button" onClick=${onAgain}>${t("send.another")}</button>
    </p>
  </div>`;
}

export function SendScreen() {
  const me = session.me;
  const mayDirect = session.hasRole("seal_keeper");
  const [form, setForm] = useState(emptyForm);
  const [file, setFile] = useState(null);
  const [useChain, setUseChain] = useState(!mayDirect);
  const [steps, setSteps] = useState([{ name: SIGN_OFF, mode: "all", assignees: [] }]);
  const [officials, setOfficials] = useState(null);
  const [errors, setErrors] = useState({});
  const [progress, setProgress] = useState(null);
  const [failure, setFailure] = useState(null);
  const [result, setResult] = useState(null);
  const summary = useRef(null);
  const fileInput = useRef(null);

  useEffect(() => {
    if (!useChain || officials !== null) return;
    departmentOfficials(me.department).then(setOfficials, (error) => {
      setOfficials([]);
      setFailure(error);
    });
  }, [useChain]);

  const set = (name) => (value) => setForm({ ...form, [name]: value });

  const chooseFile = async (event) => {
    const chosen = event.currentTarget.files[0] || null;
    setFile(chosen);
    const next = { ...errors };
    delete next.file;
    if (chosen && !(await looksLikePdf(chosen))) next.file = t("send.err.notPdf");
    setErrors(next);
  };

  const submit = async (event) => {
    event.preventDefault();
    const found = validate(form, file, useChain, steps, mayDirect);
    if (errors.file) found.file = errors.file;
    setErrors(found);
    setFailure(null);
    if (Object.keys(found).length > 0) {
      requestAnimationFrame(() => summary.current && summary.current.focus());
      return;
    }
    const body = new FormData();
    body.append("meta", JSON.stringify(metaOf(form, useChain, steps)));
    body.append("file", file, file.name);
    setProgress(0);
    try {
      const sent = await api.upload("/v1/documents", body, (fraction) => setProgress(fraction));
      setResult(sent);
      notify(sent.status === "dispatched" ? t("send.done.dispatched", { n: sent.deliveries }) : t("send.done.in_approval"));
    } catch (error) {
      setFailure(error);
      requestAnimationFrame(() => summary.current && summary.current.focus());
    } finally {
      setProgress(null);
    }
  };

  const again = () => {
    setForm(emptyForm());
    setFile(null);
    setResult(null);
    setSteps([{ name: SIGN_OFF, mode: "all", assignees: [] }]);
    if (fileInput.current) fileInput.current.value = "";
  };

  if (result) {
    return html`<${Page} title=${t("send.title")}><${Done} result=${result} onAgain=${again} /></${Page}>`;
  }

  const errorList = Object.values(errors);
  const busy = progress !== null;
  const pct = busy ? Math.round(progress * 100) : 0;
  return html`<${Page} title=${t("send.title")}>
    <form class="send-form" novalidate onSubmit=${submit}>
      <div ref=${summary} tabindex="-1" class="form-summary">
        ${errorList.length > 0
          ? html`<div class="error-summary" role="alert">
              <p>${t("send.fixErrors")}</p>
              <ul>${errorList.map((message) => html`<li>${message}</li>`)}</ul>
            </div>`
          : null}
        ${failure ? html`<${ErrorNote} error=${failure} />` : null}
      </div>

      <fieldset>
        <legend>${t("send.meta")}</legend>
        <${TextField} id="send-title" label=${t("send.docTitle")} value=${form.title} onInput=${set("title")} error=${errors.title} required maxLength="500" />
        <${TextField}
          id="send-number"
          label=${t("send.docNumber")}
          hint=${t("send.docNumberHint")}
          value=${form.doc_number}
          onInput=${set("doc_number")}
          error=${errors.doc_number}
          required
          maxLength="100"
        />
        <div class="row">
          <div class="field">
            <label for="send-urgency">${t("send.urgency")}</label>
            <select id="send-urgency" value=${form.urgency} onChange=${(e) => set("urgency")(e.currentTarget.value)}>
              ${URGENCIES.map((u) => html`<option value=${u}>${t(`send.urgency.${u}`)}</option>`)}
            </select>
          </div>
          <div class="field">
            <label for="send-classification">${t("send.classification")}</label>
            <select
              id="send-classification"
              value=${form.classification}
              aria-describedby="send-classification-hint"
              onChange=${(e) => set("classification")(e.currentTarget.value)}
            >
              ${CLASSIFICATIONS.map((c) => html`<option value=${c}>${t(`send.classification.${c}`)}</option>`)}
            </select>
            <p id="send-classification-hint" class="hint">${t("send.classifiedNote")}</p>
          </div>
        </div>
        <div class="field">
          <label for="send-deadline">${t("send.deadline")}</label>
          <input
            id="send-deadline"
            type="datetime-local"
            value=${form.deadline}
            aria-invalid=${errors.deadline ? "true" : "false"}
            aria-describedby=${errors.deadline ? "send-deadline-hint send-deadline-error" : "send-deadline-hint"}
            onInput=${(e) => set("deadline")(e.currentTarget.value)}
          />
          <p id="send-deadline-hint" class="hint">${t("send.deadlineHint")}</p>
          ${errors.deadline ? html`<p id="send-deadline-error" class="field-error">${errors.deadline}</p>` : null}
        </div>
      </fieldset>

      <fieldset aria-describedby=${errors.recipients ? "send-recipients-error" : undefined}>
        <legend>${t("send.recipients")}</legend>
        <${RecipientPicker}
          idBase="send-picker"
          value=${form.chosen}
          onChange=${set("chosen")}
          excluded=${[me.department]}
          department=${me.department}
        />
        ${errors.recipients ? html`<p id="send-recipients-error" class="field-error">${errors.recipients}</p>` : null}
      </fieldset>

      <fieldset>
        <legend>${t("send.file")}</legend>
        <div class="field">
          <label for="send-file">${t("send.fileInput")}</label>
          <input
            id="send-file"
            ref=${fileInput}
            type="file"
            accept="application/pdf,.pdf"
            aria-invalid=${errors.file ? "true" : "false"}
            aria-describedby=${errors.file ? "send-file-hint send-file-error" : "send-file-hint"}
            onChange=${chooseFile}
          />
          <p id="send-file-hint" class="hint">${t("send.fileHint")}</p>
          ${errors.file ? html`<p id="send-file-error" class="field-error">${errors.file}</p>` : null}
        </div>
      </fieldset>

      <fieldset>
        <legend>${t("send.chain")}</legend>
        ${mayDirect
          ? html`<div class="check">
              <input id="send-use-chain" type="checkbox" checked=${useChain} onChange=${(e) => setUseChain(e.currentTarget.checked)} />
              <label for="send-use-chain">${t("send.useChain")}</label>
            </div>`
          : html`<p class="hint">${t("send.chainRequired")}</p>`}
        ${useChain
          ? html`<${ChainEditor} steps=${steps} onChange=${setSteps} officials=${officials} me=${me} errors=${errors} />`
          : html`<p class="hint">${t("send.direct")}</p>`}
        ${errors.chain ? html`<p class="field-error">${errors.chain}</p>` : null}
      </fieldset>

      ${busy
        ? html`<div class="upload-progress">
            <label for="send-progress">${t("send.progress")}</label>
            <progress id="send-progress" max="100" value=${pct}>${pct}%</progress>
            <p aria-live="polite">${pct < 100 ? t("send.uploading", { pct }) : t("send.uploaded")}</p>
          </div>`
        : null}
      <div class="form-actions">
        <button type="submit" class="button button-primary" disabled=${busy}>
          ${useChain ? t("send.submitChain") : t("send.submitDirect")}
        </button>
      </div>
    </form>
  </${Page}>`;
}
