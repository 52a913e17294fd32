// 待办: the approval steps waiting for me. A decision is a sealhub-approval+jwt signed in
// this browser over exactly the draft bytes shown (their SHA-256 is checked against the one
// the gateway reports before anything is signed); 签发 takes a passkey step-up.
import { html, useState, useEffect } from "../core/html.js";
import { api } from "../core/api.js";
import { sha256Hex, signJws } from "../core/jws.js";
import { stepUp } from "../core/passkey.js";
import { t, addMessages } from "../core/i18n.js";
import { Page, Loading, ErrorNote, CardList, DocumentCard, Urgency, StateBadge, formatTime, notify, usePages } from "../core/ui.js";
import { navigate } from "../core/router.js";
import { PdfView } from "../core/pdf.js";
import { departmentOfficials } from "./send.js";

addMessages({
  zh: {
    "nav.todo": "待办",
    "todo.title": "待办",
    "todo.empty": "没有等待您审批的公文",
    "todo.step": "{name}（第{n}步）",
    "todo.drafter": "拟稿人：{name}",
    "todo.deadline": "期限：{time}",
    "todo.number": "文号：{number}",
    "todo.open": "审批",
    "todo.back": "返回待办",
    "todo.draft": "文稿（第{version}稿）",
    "todo.digestMismatch": "下载的文稿与服务器登记的摘要不一致，不能签署。请刷新后重试。",
    "todo.chain": "审批流程",
    "todo.trail": "已办意见",
    "todo.noTrail": "还没有人办理",
    "todo.opinion": "意见",
    "todo.opinionHint": "退回时必须填写意见",
    "todo.approve": "同意",
    "todo.signOff": "签发",
    "todo.reject": "退回",
    "todo.needOpinion": "退回须填写意见",
    "todo.signing": "正在签署…",
    "todo.approved": "已签署同意",
    "todo.rejected": "已退回拟稿人",
    "todo.passkeyCancelled": "未完成通行密钥验证，未签署。",
    "todo.mode.any": "任一人",
    "todo.mode.all": "全部",
    "todo.stepState.done": "已完成",
    "todo.stepState.open": "办理中",
    "todo.stepState.waiting": "未开始",
    "todo.stepState.rejected": "已退回",
    "todo.decision.approve": "同意",
    "todo.decision.reject": "退回",
    "todo.signOffNote": "签发须用通行密钥确认本人操作。",
  },
  en: {
    "nav.todo": "To do",
    "todo.title": "To do",
    "todo.empty": "Nothing is waiting for your approval",
    "todo.step": "{name} (step {n})",
    "todo.drafter": "Drafter: {name}",
    "todo.deadline": "Deadline: {time}",
    "todo.number": "Number: {number}",
    "todo.open": "Review",
    "todo.back": "Back to the list",
    "todo.draft": "Draft (version {version})",
    "todo.digestMismatch": "The downloaded draft does not match the digest the server reports: nothing was signed. Reload and try again.",
    "todo.chain": "Approval chain",
    "todo.trail": "Decisions so far",
    "todo.noTrail": "No one has decided yet",
    "todo.opinion": "Opinion",
    "todo.opinionHint": "Needed when returning the draft",
    "todo.approve": "Approve",
    "todo.signOff": "Sign off",
    "todo.reject": "Return",
    "todo.needOpinion": "Returning needs an opinion",
    "todo.signing": "Signing…",
    "todo.approved": "Approved and signed",
    "todo.rejected": "Returned to the drafter",
    "todo.passkeyCancelled": "The passkey check was not completed: nothing was signed.",
    "todo.mode.any": "any one",
    "todo.mode.all": "all",
    "todo.stepState.done": "done",
    "todo.stepState.open": "open",
    "todo.stepState.waiting": "waiting",
    "todo.stepState.rejected": "returned",
    "todo.decision.approve": "approved",
    "todo.decision.reject": "returned",
    "todo.signOffNote": "Signing off is confirmed with your passkey.",
  },
});

/** The draft's bytes, with their digest checked against the one the gateway reports. */
export async function checkedDraft(documentId, expectedSha256) {
  const bytes = await api.bytes(`/v1/documents/${documentId}/draft`);
  const actual = await sha256Hex(bytes);
  return { bytes, intact: actual === expectedSha256 };
}

function TodoList() {
  const [items, failure, more, load] = usePages((cursor) => api.get("/v1/approvals", cursor ? { cursor } : undefined));
  useEffect(() => {
    load();
  }, []);
  return html`<${Page} title=${t("todo.title")}>
    <${CardList}
      items=${items}
      failure=${failure}
      more=${more}
      load=${load}
      empty=${t("todo.empty")}
      card=${({ document: doc, step }) => html`<${DocumentCard} key=${doc.id} doc=${doc} idPrefix="todo" href=${`#/todo/${doc.id}`} open=${t("todo.open")}>
        <span>${t("todo.number", { number: doc.doc_number })}</span>
        <span>${t("todo.step", { name: step.name, n: step.index + 1 })}</span>
        <span>${t("todo.drafter", { name: doc.drafter.name })}</span>
        ${doc.deadline ? html`<span>${t("todo.deadline", { time: formatTime(doc.deadline) })}</span>` : null}
      </${DocumentCard}>`}
    />
  </${Page}>`;
}

/** The chain: each step, who may act, its state; then every decision with its opinion. */
export function Chain({ doc, nameOf }) {
  const flow = doc.workflow;
  if (!flow) return null;
  const trail = doc.approvals.filter((a) => a.version === flow.version);
  return html`<section class="chain-view" aria-labelledby="chain-heading">
    <h2 id="chain-heading">${t("todo.chain")}</h2>
    <ol class="steps">
      ${flow.steps.map(
        (step) => html`<li key=${step.step} class=${`step-state-${step.state}`}>
          <strong>${step.name}</strong>
          <span class="hint"> (${t(`todo.mode.${step.mode}`)}) · ${t(`todo.stepState.${step.state}`)}</span>
          <div>${step.assignees.map(nameOf).join("、")}</div>
        </li>`,
      )}
    </ol>
    <h2>${t("todo.trail")}</h2>
    ${trail.length === 0
      ? html`<p class="hint">${t("todo.noTrail")}</p>`
      : html`<ol class="trail">
          ${trail.map(
            (a) => html`<li key=${a.id}>
              <strong>${a.step_name}</strong> · ${a.official_name} · ${t(`todo.decision.${a.decision}`)} ·
              <time datetime=${a.at}>${formatTime(a.at)}</time>
              ${a.opinion ? html`<blockquote>${a.opinion}</blockquote>` : null}
            </li>`,
          )}
        </ol>`}
  </section>`;
}

/** Assignee ids of the department as names (ids until they are known). */
export function useOfficialNames(department) {
  const [names, setNames] = useState({});
  useEffect(() => {
    if (!department) return;
    departmentOfficials(department).then(
      (found) => setNames(Object.fromEntries(found.map((o) => [o.id, o.name]))),
      () => setNames({}),
    );
  }, [department]);
  return (id) => names[id] || id;
}

function Decide({ doc, step, draftSha256, onDone }) {
  const [opinion, setOpinion] = useState("");
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const [hint, setHint] = useState(null);
  const last = step.step === doc.workflow.steps.length - 1;

  const decide = async (decision) => {
    setFailure(null);
    setHint(null);
    if (decision === "reject" && !opinion.trim()) {
      setHint(t("todo.needOpinion"));
      return;
    }
    setBusy(true);
    try {
      const signature = await signJws("sealhub-approval+jwt", {
        document: doc.id,
        draft_sha256: draftSha256,
        step: step.step,
        decision,
        opinion: opinion.trim(),
      });
      const body = { signature };
      if (last && decision === "approve") {
        const assertion = await stepUp(signature);
        if (assertion) body.passkey = assertion;
      }
      await api.post(`/v1/documents/${doc.id}/approvals`, body, { idempotencyKey: crypto.randomUUID() });
      notify(decision === "approve" ? t("todo.approved") : t("todo.rejected"));
      onDone();
    } catch (error) {
      if (error && error.name === "NotAllowedError") setHint(t("todo.passkeyCancelled"));
      else setFailure(error);
    } finally {
      setBusy(false);
    }
  };

  return html`<section class="decide" aria-labelledby="decide-heading">
    <h2 id="decide-heading">${step.name}</h2>
    <div class="field">
      <label for="todo-opinion">${t("todo.opinion")}</label>
      <textarea
        id="todo-opinion"
        rows="3"
        maxlength="2000"
        aria-describedby=${hint ? "todo-opinion-hint todo-opinion-error" : "todo-opinion-hint"}
        value=${opinion}
        onInput=${(e) => setOpinion(e.currentTarget.value)}
      ></textarea>
      <p id="todo-opinion-hint" class="hint">${t("todo.opinionHint")}</p>
      ${hint ? html`<p id="todo-opinion-error" class="field-error" role="alert">${hint}</p>` : null}
    </div>
    ${last ? html`<p class="hint">${t("todo.signOffNote")}</p>` : null}
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    <div class="form-actions">
      <button type="button" class="button button-primary" disabled=${busy} onClick=${() => decide("approve")}>
        ${last ? t("todo.signOff") : t("todo.approve")}
      </button>
      <button type="button" class="button button-danger" disabled=${busy} onClick=${() => decide("reject")}>${t("todo.reject")}</button>
    </div>
    ${busy ? html`<p aria-live="polite">${t("todo.signing")}</p>` : null}
  </section>`;
}

function TodoDocument({ id }) {
  const [doc, setDoc] = useState(null);
  const [draft, setDraft] = useState(null);
  const [failure, setFailure] = useState(null);
  const nameOf = useOfficialNames(doc ? doc.sender : null);

  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const found = await api.get(`/v1/documents/${id}`);
        if (!live) return;
        setDoc(found);
        const version = found.workflow.versions[found.workflow.versions.length - 1];
        const checked = await checkedDraft(id, version.draft_sha256);
        if (live) setDraft({ ...checked, version });
      } catch (error) {
        if (live) setFailure(error);
      }
    })();
    return () => {
      live = false;
    };
  }, [id]);

  const flow = doc && doc.workflow;
  const open = flow && flow.current_step !== null ? flow.steps[flow.current_step] : null;
  const back = html`<a class="button" href="#/todo">${t("todo.back")}</a>`;
  return html`<${Page} title=${doc ? doc.title : t("todo.title")} actions=${back}>
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    ${doc
      ? html`<p class="doc-line">
          <${Urgency} value=${doc.urgency} />
          <span>${t("todo.number", { number: doc.doc_number })}</span>
          <${StateBadge} state=${doc.status} />
        </p>`
      : null}
    <div class="doc-layout">
      <section class="draft" aria-label=${draft ? t("todo.draft", { version: draft.version.version }) : t("common.loading")}>
        ${draft === null
          ? failure ? null : html`<${Loading} />`
          : draft.intact
            ? html`<${PdfView} bytes=${draft.bytes} label=${t("todo.draft", { version: draft.version.version })} />`
            : html`<p class="note note-error" role="alert">${t("todo.digestMismatch")}</p>`}
      </section>
      <aside class="doc-side">
        ${open && draft && draft.intact
          ? html`<${Decide}
              doc=${doc}
              step=${open}
              draftSha256=${draft.version.draft_sha256}
              onDone=${() => navigate("#/todo")}
            />`
          : null}
        ${doc ? html`<${Chain} doc=${doc} nameOf=${nameOf} />` : null}
      </aside>
    </div>
  </${Page}>`;
}

export function TodoScreen({ params }) {
  return params.document ? html`<${TodoDocument} id=${params.document} />` : html`<${TodoList} />`;
}
