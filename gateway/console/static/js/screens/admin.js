// 管理 (dept_admin, admin): officials and their enrollment links, roles, disabling, devices,
// and the four-eyes requests on them. The other admin pages (seals, webhooks, directory) are
// in admin_seals.js, admin_webhooks.js and admin_directory.js; they share AdminNav from here.
import { html, useState, useEffect } from "../core/html.js";
import { api, listAll, origin } from "../core/api.js";
import { session } from "../core/session.js";
import { t, addMessages } from "../core/i18n.js";
import { Page, Loading, ErrorNote, formatTime, notify } from "../core/ui.js";
import { useRoute } from "../core/router.js";
import { qrcode } from "../../vendor/qrcode.mjs";
import { KeyList, Passkeys } from "./devices.js";
import { departmentOfficials } from "./send.js";

addMessages({
  zh: {
    "nav.admin": "管理",
    "admin.nav": "管理",
    "admin.officials": "人员",
    "admin.seals": "印章",
    "admin.webhooks": "推送",
    "admin.departments": "单位与分发组",
    "admin.department": "单位",
    "admin.role.admin": "平台管理员",
    "admin.role.dept_admin": "单位管理员",
    "admin.role.clerk": "文书",
    "admin.role.leader": "领导",
    "admin.role.seal_keeper": "用印员",
    "admin.role.inspector": "监察",
    "admin.role.system": "业务系统",
    "admin.create": "新增人员",
    "admin.name": "姓名",
    "admin.roles": "角色",
    "admin.createSubmit": "创建",
    "admin.err.name": "请填写姓名",
    "admin.err.roles": "请至少选择一个角色",
    "admin.pending": "该人员含须双人审批的角色，已提交申请（编号 {id}），须另一位管理员批准。",
    "admin.handover": "登记链接",
    "admin.handoverHint": "请当面或通过可靠渠道交给 {name}。链接 72 小时内有效，只能使用一次；不要通过公开渠道发送。",
    "admin.link": "登记链接",
    "admin.copy": "复制链接",
    "admin.copied": "已复制",
    "admin.qr": "登记链接二维码",
    "admin.close": "关闭",
    "admin.list": "本单位人员",
    "admin.search": "按姓名搜索",
    "admin.status.active": "在用",
    "admin.status.disabled": "已停用",
    "admin.hasKey": "已登记密钥",
    "admin.noKey": "未登记密钥",
    "admin.devices": "设备",
    "admin.newCode": "新登记码",
    "admin.codePending": "须另一位管理员批准（申请编号 {id}）",
    "admin.disable": "停用",
    "admin.disableConfirm": "停用后 {name} 立即不能登录。确定停用？",
    "admin.disableYes": "确定停用",
    "admin.disabled": "已停用 {name}",
    "admin.none": "没有人员",
    "admin.requests": "待审批申请（双人审批）",
    "admin.noRequests": "没有待审批的申请",
    "admin.kind.create_official": "新增人员",
    "admin.kind.enrollment_code": "发放登记码",
    "admin.kind.transfer": "调动",
    "admin.requestedBy": "申请人：{who}，{time}",
    "admin.approve": "批准",
    "admin.decline": "拒绝",
    "admin.approved": "已批准",
    "admin.declined": "已拒绝",
  },
  en: {
    "nav.admin": "Admin",
    "admin.nav": "Administration",
    "admin.officials": "Officials",
    "admin.seals": "Seals",
    "admin.webhooks": "Webhooks",
    "admin.departments": "Units and groups",
    "admin.department": "Unit",
    "admin.role.admin": "Platform admin",
    "admin.role.dept_admin": "Department admin",
    "admin.role.clerk": "Clerk",
    "admin.role.leader": "Leader",
    "admin.role.seal_keeper": "Seal keeper",
    "admin.role.inspector": "Inspector",
    "admin.role.system": "System",
    "admin.create": "New official",
    "admin.name": "Name",
    "admin.roles": "Roles",
    "admin.createSubmit": "Create",
    "admin.err.name": "Enter the name",
    "admin.err.roles": "Choose at least one role",
    "admin.pending": "These roles take two managers: request {id} waits for another manager's approval.",
    "admin.handover": "Enrollment link",
    "admin.handoverHint": "Hand it to {name} in person or over a trusted channel. It works once, for 72 hours; never post it anywhere public.",
    "admin.link": "Enrollment link",
    "admin.copy": "Copy the link",
    "admin.copied": "Copied",
    "admin.qr": "QR code of the enrollment link",
    "admin.close": "Close",
    "admin.list": "Officials of the unit",
    "admin.search": "Search by name",
    "admin.status.active": "Active",
    "admin.status.disabled": "Disabled",
    "admin.hasKey": "Has a key",
    "admin.noKey": "No key yet",
    "admin.devices": "Devices",
    "admin.newCode": "New enrollment code",
    "admin.codePending": "Another manager must approve (request {id})",
    "admin.disable": "Disable",
    "admin.disableConfirm": "{name} can no longer log in. Disable?",
    "admin.disableYes": "Disable",
    "admin.disabled": "{name} disabled",
    "admin.none": "No officials",
    "admin.requests": "Requests waiting for a second manager",
    "admin.noRequests": "No pending requests",
    "admin.kind.create_official": "New official",
    "admin.kind.enrollment_code": "Enrollment code",
    "admin.kind.transfer": "Transfer",
    "admin.requestedBy": "Asked by {who}, {time}",
    "admin.approve": "Approve",
    "admin.decline": "Decline",
    "admin.approved": "Approved",
    "admin.declined": "Declined",
  },
});

const DEPT_ADMIN_GRANTS = ["clerk", "leader", "seal_keeper", "system"];
const ADMIN_GRANTS = [...DEPT_ADMIN_GRANTS, "dept_admin", "inspector", "admin"];
const PAGES = [
  ["#/admin/officials", "admin.officials", ["dept_admin", "admin"]],
  ["#/admin/seals", "admin.seals", ["dept_admin", "admin"]],
  ["#/admin/webhooks", "admin.webhooks", ["dept_admin", "admin"]],
  ["#/admin/departments", "admin.departments", ["dept_admin", "admin"]],
];

function roleName(role) {
  return t(`admin.role.${role}`);
}

/** The tabs between the admin pages (links, with aria-current on the open one). */
export function AdminNav() {
  const { path } = useRoute();
  return html`<nav class="tabs" aria-label=${t("admin.nav")}>
    ${PAGES.filter(([, , roles]) => session.hasRole(...roles)).map(
      ([href, key]) => html`<a key=${href} href=${href} aria-current=${`#${path}` === href ? "page" : undefined}>${t(key)}</a>`,
    )}
  </nav>`;
}

/** A unit chooser: an admin may manage any unit, a dept_admin only its own. */
export function useDepartmentChoice() {
  const me = session.me;
  const [department, setDepartment] = useState(me.department);
  const [units, setUnits] = useState([]);
  const admin = session.hasRole("admin");
  useEffect(() => {
    if (admin) listAll("/v1/departments").then(setUnits, () => setUnits([]));
  }, []);
  const chooser = admin
    ? html`<div class="field">
        <label for="admin-department">${t("admin.department")}</label>
        <select id="admin-department" value=${department} onChange=${(e) => setDepartment(e.currentTarget.value)}>
          ${units.length === 0 ? html`<option value=${department}>${department}</option>` : null}
          ${units.map((u) => html`<option value=${u.code}>${u.name} (${u.code})</option>`)}
        </select>
      </div>`
    : null;
  return [department, chooser];
}

/** The link handed over: the console at the public origin (SEALHUB_PUBLIC_URL). */
function enrollmentLink(official, code) {
  return `${origin}/console/#/enroll/${encodeURIComponent(official)}/${encodeURIComponent(code)}`;
}

/** The link as a QR code: one SVG path of the dark modules, drawn from qrcode-generator. */
function QrCode({ text, label }) {
  const qr = qrcode(0, "M");
  qr.addData(text, "Byte");
  qr.make();
  const count = qr.getModuleCount();
  let d = "";
  for (let row = 0; row < count; row += 1) {
    for (let col = 0; col < count; col += 1) {
      if (qr.isDark(row, col)) d += `M${col + 4} ${row + 4}h1v1h-1z`;
    }
  }
  const size = count + 8;
  return html`<svg class="qr" viewBox=${`0 0 ${size} ${size}`} width="240" height="240" role="img" aria-label=${label} shape-rendering="crispEdges">
    <rect width=${size} height=${size} fill="#ffffff" />
    <path d=${d} fill="#000000" />
  </svg>`;
}

/** The enrollment link and its QR code, shown once after a code is issued. */
function Handover({ official, name, code, onClose }) {
  const link = enrollmentLink(official, code);
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    await navigator.clipboard.writeText(link);
    setCopied(true);
    notify(t("admin.copied"));
  };
  return html`<section class="panel handover" aria-labelledby="handover-heading" data-official=${official}>
    <h2 id="handover-heading" tabindex="-1">${t("admin.handover")}: ${name}</h2>
    <p class="hint">${t("admin.handoverHint", { name })}</p>
    <div class="field">
      <label for="handover-link">${t("admin.link")}</label>
      <input id="handover-link" type="text" readonly value=${link} onFocus=${(e) => e.currentTarget.select()} />
    </div>
    <${QrCode} text=${link} label=${t("admin.qr")} />
    <div class="form-actions">
      <button type="button" class="button" onClick=${copy}>${copied ? t("admin.copied") : t("admin.copy")}</button>
      <button type="button" class="button" onClick=${onClose}>${t("admin.close")}</button>
    </div>
  </section>`;
}

function CreateOfficial({ department, onCreated, onHandover }) {
  const grants = session.hasRole("admin") ? ADMIN_GRANTS : DEPT_ADMIN_GRANTS;
  const [name, setName] = useState("");
  const [roles, setRoles] = useState(["clerk"]);
  const [errors, setErrors] = useState({});
  const [failure, setFailure] = useState(null);
  const [pending, setPending] = useState(null);
  const [busy, setBusy] = useState(false);
  const toggle = (role) => setRoles(roles.includes(role) ? roles.filter((r) => r !== role) : [...roles, role]);

  const submit = async (event) => {
    event.preventDefault();
    const found = {};
    if (!name.trim()) found.name = t("admin.err.name");
    if (roles.length === 0) found.roles = t("admin.err.roles");
    setErrors(found);
    setFailure(null);
    setPending(null);
    if (Object.keys(found).length) return;
    setBusy(true);
    try {
      const made = await api.post("/v1/officials", { name: name.trim(), department, roles }, { idempotencyKey: crypto.randomUUID() });
      if (made.status === "pending_approval") setPending(made.request.id);
      else onHandover({ official: made.id, name: made.name, code: made.enrollment_code });
      setName("");
      setRoles(["clerk"]);
      onCreated();
    } catch (error) {
      setFailure(error);
    } finally {
      setBusy(false);
    }
  };

  return html`<form class="panel card" novalidate onSubmit=${submit} aria-labelledby="create-heading">
    <h2 id="create-heading">${t("admin.create")}</h2>
    <div class="field">
      <label for="create-name">${t("admin.name")}</label>
      <input
        id="create-name"
        type="text"
        maxlength="200"
        value=${name}
        aria-invalid=${errors.name ? "true" : "false"}
        aria-describedby=${errors.name ? "create-name-error" : undefined}
        onInput=${(e) => setName(e.currentTarget.value)}
      />
      ${errors.name ? html`<p id="create-name-error" class="field-error">${errors.name}</p>` : null}
    </div>
    <fieldset aria-describedby=${errors.roles ? "create-roles-error" : undefined}>
      <legend>${t("admin.roles")}</legend>
      ${grants.map(
        (role) => html`<div class="check" key=${role}>
          <input id=${`create-role-${role}`} type="checkbox" checked=${roles.includes(role)} onChange=${() => toggle(role)} />
          <label for=${`create-role-${role}`}>${roleName(role)}</label>
        </div>`,
      )}
      ${errors.roles ? html`<p id="create-roles-error" class="field-error">${errors.roles}</p>` : null}
    </fieldset>
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    ${pending ? html`<p class="note" role="status">${t("admin.pending", { id: pending })}</p>` : null}
    <button type="submit" class="button button-primary" disabled=${busy}>${t("admin.createSubmit")}</button>
  </form>`;
}

function OfficialRow({ official, onChanged, onHandover }) {
  const [showKeys, setShowKeys] = useState(false);
  const [asking, setAsking] = useState(false);
  const [failure, setFailure] = useState(null);
  const [note, setNote] = useState(null);
  const id = encodeURIComponent(official.id);

  const newCode = async () => {
    setFailure(null);
    try {
      const made = await api.post(`/v1/officials/${id}/enrollment-code`, {}, { idempotencyKey: crypto.randomUUID() });
      if (made.status === "pending_approval") setNote(t("admin.codePending", { id: made.request.id }));
      else onHandover({ official: official.id, name: official.name, code: made.enrollment_code });
    } catch (error) {
      setFailure(error);
    }
  };
  const disable = async () => {
    setFailure(null);
    try {
      await api.post(`/v1/officials/${id}/disable`, {}, { idempotencyKey: crypto.randomUUID() });
      notify(t("admin.disabled", { name: official.name }));
      setAsking(false);
      onChanged();
    } catch (error) {
      setFailure(error);
    }
  };

  const active = official.status === "active";
  return html`<li class="panel card" data-official=${official.id}>
    <h3>${official.name}</h3>
    <p class="doc-line">
      <span>${official.roles.map(roleName).join("、")}</span>
      <span>${t(`admin.status.${official.status}`)}</span>
      <span>${official.has_key ? t("admin.hasKey") : t("admin.noKey")}</span>
    </p>
    <div class="form-actions">
      <button type="button" class="button" aria-expanded=${showKeys ? "true" : "false"} onClick=${() => setShowKeys(!showKeys)}>
        ${t("admin.devices")}
      </button>
      ${active ? html`<button type="button" class="button" onClick=${newCode}>${t("admin.newCode")}</button>` : null}
      ${active && !asking && official.id !== session.me.id
        ? html`<button type="button" class="button button-danger" onClick=${() => setAsking(true)}>${t("admin.disable")}</button>`
        : null}
    </div>
    ${asking
      ? html`<div class="confirm" role="group" aria-label=${t("admin.disable")}>
          <p>${t("admin.disableConfirm", { name: official.name })}</p>
          <button type="button" class="button button-danger" onClick=${disable}>${t("admin.disableYes")}</button>
          <button type="button" class="button" onClick=${() => setAsking(false)}>${t("common.cancel")}</button>
        </div>`
      : null}
    ${note ? html`<p class="note" role="status">${note}</p>` : null}
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    ${showKeys
      ? html`<${KeyList} official=${official.id} />
          <${Passkeys} official=${official.id} />`
      : null}
  </li>`;
}

function Requests({ onHandover, onDecided, nameOf }) {
  const [items, setItems] = useState(null);
  const [failure, setFailure] = useState(null);
  const load = () => api.get("/v1/official-requests", { status: "pending" }).then((page) => setItems(page.items), setFailure);
  useEffect(() => {
    load();
  }, []);

  const decide = async (request, verb) => {
    setFailure(null);
    try {
      const answer = await api.post(`/v1/official-requests/${request.id}/${verb}`, {}, { idempotencyKey: crypto.randomUUID() });
      notify(verb === "approve" ? t("admin.approved") : t("admin.declined"));
      if (verb === "approve" && answer && answer.enrollment_code) {
        const official = answer.id && answer.name ? answer.id : request.official;
        const name = answer.name || (request.payload && request.payload.name) || nameOf(official);
        onHandover({ official, name, code: answer.enrollment_code });
      }
      load();
      onDecided();
    } catch (error) {
      setFailure(error);
    }
  };

  return html`<section aria-labelledby="requests-heading">
    <h2 id="requests-heading">${t("admin.requests")}</h2>
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    ${items === null
      ? failure ? null : html`<${Loading} />`
      : items.length === 0
        ? html`<p class="hint">${t("admin.noRequests")}</p>`
        : html`<ul class="cards">
            ${items.map(
              (r) => html`<li class="panel card" key=${r.id} data-request=${r.id}>
                <h3>${t(`admin.kind.${r.kind}`)}：${(r.payload && r.payload.name) || nameOf(r.official)}</h3>
                <p class="doc-line">
                  <span>${r.department}${r.target_department ? ` → ${r.target_department}` : ""}</span>
                  ${r.payload && r.payload.roles ? html`<span>${r.payload.roles.map(roleName).join("、")}</span>` : null}
                  <span>${t("admin.requestedBy", { who: r.requested_by, time: formatTime(r.requested_at) })}</span>
                </p>
                <div class="form-actions">
                  <button type="button" class="button button-primary" onClick=${() => decide(r, "approve")}>${t("admin.approve")}</button>
                  <button type="button" class="button" onClick=${() => decide(r, "decline")}>${t("admin.decline")}</button>
                </div>
              </li>`,
            )}
          </ul>`}
  </section>`;
}

export function AdminOfficialsScreen() {
  const [department, chooser] = useDepartmentChoice();
  const [officials, setOfficials] = useState(null);
  const [failure, setFailure] = useState(null);
  const [handover, setHandover] = useState(null);
  const [query, setQuery] = useState("");
  const load = () => departmentOfficials(department).then(setOfficials, setFailure);
  useEffect(() => {
    setOfficials(null);
    load();
  }, [department]);
  useEffect(() => {
    if (handover) requestAnimationFrame(() => document.getElementById("handover-heading")?.focus());
  }, [handover]);

  const nameOf = (id) => (officials || []).find((o) => o.id === id)?.name || id || "";
  const shown = officials && officials.filter((o) => !query.trim() || o.name.includes(query.trim()));
  return html`<${Page} title=${t("admin.officials")}>
    <${AdminNav} />
    ${chooser}
    ${handover ? html`<${Handover} ...${handover} onClose=${() => setHandover(null)} />` : null}
    <${CreateOfficial} department=${department} onCreated=${load} onHandover=${setHandover} />
    <${Requests} onHandover=${setHandover} onDecided=${load} nameOf=${nameOf} />
    <section aria-labelledby="officials-heading">
      <h2 id="officials-heading">${t("admin.list")}</h2>
      <div class="field">
        <label for="officials-search">${t("admin.search")}</label>
        <input id="officials-search" type="search" value=${query} onInput=${(e) => setQuery(e.currentTarget.value)} />
      </div>
      ${failure ? html`<${ErrorNote} error=${failure} />` : null}
      ${shown === null
        ? failure ? null : html`<${Loading} />`
        : shown.length === 0
          ? html`<p class="hint">${t("admin.none")}</p>`
          : html`<ul class="cards">
              ${shown.map((o) => html`<${OfficialRow} key=${o.id} official=${o} onChanged=${load} onHandover=${setHandover} />`)}
            </ul>`}
    </section>
  </${Page}>`;
}
