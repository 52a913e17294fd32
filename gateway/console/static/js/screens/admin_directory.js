// 管理 · 单位与分发组: the organisation units (search; an admin adds one), the distribution
// groups (an admin adds one), and a unit's passkey setting (its dept_admin, or an admin).
import { html, useState, useEffect } from "../core/html.js";
import { api, listAll } from "../core/api.js";
import { session } from "../core/session.js";
import { t, addMessages } from "../core/i18n.js";
import { Page, Loading, ErrorNote, Table, TextField, notify, useLoad } from "../core/ui.js";
import { AdminNav, useDepartmentChoice } from "./admin.js";

addMessages({
  zh: {
    "dir.settings": "通行密钥设置",
    "dir.passkeyRequired": "平台管理员、监察、领导和用印员在控制台登录时必须使用通行密钥",
    "dir.passkeyHint": "默认开启。关闭后这些角色只凭设备密钥即可登录；签发、用印、签收时已注册的通行密钥仍须确认。",
    "dir.save": "保存",
    "dir.saved": "已保存",
    "dir.units": "单位",
    "dir.search": "按名称或代码搜索",
    "dir.code": "代码",
    "dir.name": "名称",
    "dir.nameEn": "英文名称",
    "dir.parent": "上级单位代码",
    "dir.kind": "类别",
    "dir.none": "没有符合条件的单位",
    "dir.addUnit": "新增单位",
    "dir.add": "添加",
    "dir.added": "已添加 {name}",
    "dir.err.code": "代码只能由小写字母、数字、点和连字符组成",
    "dir.err.name": "请填写名称",
    "dir.err.kind": "类别只能由小写字母和下划线组成，例如 department",
    "dir.groups": "分发组",
    "dir.noGroups": "没有分发组",
    "dir.members": "成员单位代码",
    "dir.membersHint": "用逗号或空格分隔，例如 yl-jyj, yl-fgw",
    "dir.memberCount": "{n} 个成员",
    "dir.addGroup": "新增分发组",
    "dir.err.members": "请至少填写一个成员单位代码",
    "dir.adminOnly": "单位和分发组由平台管理员添加。",
  },
  en: {
    "dir.settings": "Passkey setting",
    "dir.passkeyRequired": "Admins, inspectors, leaders and seal keepers need a passkey to log in to the console",
    "dir.passkeyHint": "On by default. When off, these roles log in with their device key alone; a registered passkey is still asked at sign-off, sealing and signing for.",
    "dir.save": "Save",
    "dir.saved": "Saved",
    "dir.units": "Units",
    "dir.search": "Search by name or code",
    "dir.code": "Code",
    "dir.name": "Name",
    "dir.nameEn": "English name",
    "dir.parent": "Parent unit code",
    "dir.kind": "Kind",
    "dir.none": "No unit matches",
    "dir.addUnit": "New unit",
    "dir.add": "Add",
    "dir.added": "{name} added",
    "dir.err.code": "Lowercase letters, digits, dots and hyphens only",
    "dir.err.name": "Enter the name",
    "dir.err.kind": "Lowercase letters and underscores only, e.g. department",
    "dir.groups": "Distribution groups",
    "dir.noGroups": "No groups",
    "dir.members": "Member unit codes",
    "dir.membersHint": "Separated by commas or spaces, e.g. yl-jyj, yl-fgw",
    "dir.memberCount": "{n} members",
    "dir.addGroup": "New group",
    "dir.err.members": "Enter at least one member code",
    "dir.adminOnly": "Platform admins add units and groups.",
  },
});

const CODE = /^[a-z0-9][a-z0-9.-]{0,62}$/;
const KIND = /^[a-z_]{1,32}$/;
const key = () => ({ idempotencyKey: crypto.randomUUID() });

function PasskeySetting({ department }) {
  const path = `/v1/departments/${encodeURIComponent(department)}/settings`;
  const [settings, error] = useLoad(() => api.get(path), [department]);
  const [required, setRequired] = useState(true);
  const [failure, setFailure] = useState(null);
  useEffect(() => {
    if (settings) setRequired(settings.passkey_required);
  }, [settings]);
  const save = async (event) => {
    event.preventDefault();
    setFailure(null);
    try {
      await api.put(path, { passkey_required: required });
      notify(t("dir.saved"));
    } catch (failed) {
      setFailure(failed);
    }
  };
  return html`<form class="panel" onSubmit=${save} aria-labelledby="settings-heading">
    <h2 id="settings-heading">${t("dir.settings")}</h2>
    <${ErrorNote} error=${error || failure} />
    ${settings === undefined && !error
      ? html`<${Loading} />`
      : html`<div class="check">
            <input id="passkey-required" type="checkbox" checked=${required} aria-describedby="passkey-required-hint" onChange=${(e) => setRequired(e.currentTarget.checked)} />
            <label for="passkey-required">${t("dir.passkeyRequired")}</label>
          </div>
          <p id="passkey-required-hint" class="hint">${t("dir.passkeyHint")}</p>
          <div class="form-actions"><button type="submit" class="button button-primary">${t("dir.save")}</button></div>`}
  </form>`;
}

function Units({ admin }) {
  const [query, setQuery] = useState("");
  const [text, setText] = useState("");
  const [units, error, reload] = useLoad(() => api.get("/v1/departments", { q: query || undefined, limit: 100 }).then((p) => p.items), [query]);
  const [form, setForm] = useState({ code: "", name: "", name_en: "", parent: session.me.department, kind: "department" });
  const [errors, setErrors] = useState({});
  const [failure, setFailure] = useState(null);
  const set = (name) => (value) => setForm({ ...form, [name]: value });

  const add = async (event) => {
    event.preventDefault();
    const found = {};
    if (!CODE.test(form.code.trim())) found.code = t("dir.err.code");
    if (!form.name.trim()) found.name = t("dir.err.name");
    if (!KIND.test(form.kind.trim())) found.kind = t("dir.err.kind");
    if (form.parent.trim() && !CODE.test(form.parent.trim())) found.parent = t("dir.err.code");
    setErrors(found);
    setFailure(null);
    if (Object.keys(found).length) return;
    try {
      const made = await api.post(
        "/v1/departments",
        { code: form.code.trim(), name: form.name.trim(), name_en: form.name_en.trim(), parent: form.parent.trim() || null, kind: form.kind.trim() },
        key(),
      );
      notify(t("dir.added", { name: made.name }));
      setForm({ ...form, code: "", name: "", name_en: "" });
      reload();
    } catch (failed) {
      setFailure(failed);
    }
  };

  const columns = [
    { label: t("dir.code"), render: (u) => html`<code>${u.code}</code>` },
    { label: t("dir.name"), render: (u) => u.name },
    { label: t("dir.parent"), render: (u) => u.parent || "—" },
    { label: t("dir.kind"), render: (u) => u.kind },
  ];
  return html`<section aria-labelledby="units-heading">
    <h2 id="units-heading">${t("dir.units")}</h2>
    <form class="search" role="search" onSubmit=${(e) => {
      e.preventDefault();
      setQuery(text.trim());
    }}>
      <div class="field">
        <label for="units-search">${t("dir.search")}</label>
        <input id="units-search" type="search" value=${text} onInput=${(e) => setText(e.currentTarget.value)} />
      </div>
      <button type="submit" class="button">${t("common.search")}</button>
    </form>
    <${ErrorNote} error=${error} />
    ${units === undefined && !error ? html`<${Loading} />` : html`<${Table} columns=${columns} rows=${units ?? []} rowKey=${(u) => u.code} empty=${t("dir.none")} caption=${t("dir.units")} />`}
    ${admin
      ? html`<form class="panel" novalidate onSubmit=${add} aria-labelledby="unit-add-heading">
          <h3 id="unit-add-heading">${t("dir.addUnit")}</h3>
          <div class="row">
            <${TextField} id="unit-code" label=${t("dir.code")} value=${form.code} onInput=${set("code")} error=${errors.code} maxLength="63" />
            <${TextField} id="unit-kind" label=${t("dir.kind")} value=${form.kind} onInput=${set("kind")} error=${errors.kind} maxLength="32" />
          </div>
          <${TextField} id="unit-name" label=${t("dir.name")} value=${form.name} onInput=${set("name")} error=${errors.name} maxLength="200" />
          <${TextField} id="unit-name-en" label=${t("dir.nameEn")} value=${form.name_en} onInput=${set("name_en")} maxLength="300" />
          <${TextField} id="unit-parent" label=${t("dir.parent")} value=${form.parent} onInput=${set("parent")} error=${errors.parent} maxLength="63" />
          <${ErrorNote} error=${failure} />
          <button type="submit" class="button button-primary">${t("dir.add")}</button>
        </form>`
      : null}
  </section>`;
}

function Groups({ admin }) {
  const [groups, error, reload] = useLoad(() => listAll("/v1/groups"), []);
  const [form, setForm] = useState({ code: "", name: "", members: "" });
  const [errors, setErrors] = useState({});
  const [failure, setFailure] = useState(null);
  const set = (name) => (value) => setForm({ ...form, [name]: value });

  const add = async (event) => {
    event.preventDefault();
    const members = [...new Set(form.members.split(/[\s,，、]+/).filter(Boolean))];
    const found = {};
    if (!CODE.test(form.code.trim())) found.code = t("dir.err.code");
    if (!form.name.trim()) found.name = t("dir.err.name");
    if (members.length === 0) found.members = t("dir.err.members");
    else if (!members.every((m) => CODE.test(m))) found.members = t("dir.err.code");
    setErrors(found);
    setFailure(null);
    if (Object.keys(found).length) return;
    try {
      const made = await api.post("/v1/groups", { code: form.code.trim(), name: form.name.trim(), members }, key());
      notify(t("dir.added", { name: made.name }));
      setForm({ code: "", name: "", members: "" });
      reload();
    } catch (failed) {
      setFailure(failed);
    }
  };

  const columns = [
    { label: t("dir.code"), render: (g) => html`<code>${g.code}</code>` },
    { label: t("dir.name"), render: (g) => g.name },
    { label: t("dir.members"), render: (g) => html`<span title=${g.members.join(", ")}>${t("dir.memberCount", { n: g.members.length })}</span>` },
  ];
  return html`<section aria-labelledby="groups-heading">
    <h2 id="groups-heading">${t("dir.groups")}</h2>
    <${ErrorNote} error=${error} />
    ${groups === undefined && !error ? html`<${Loading} />` : html`<${Table} columns=${columns} rows=${groups ?? []} rowKey=${(g) => g.code} empty=${t("dir.noGroups")} caption=${t("dir.groups")} />`}
    ${admin
      ? html`<form class="panel" novalidate onSubmit=${add} aria-labelledby="group-add-heading">
          <h3 id="group-add-heading">${t("dir.addGroup")}</h3>
          <${TextField} id="group-code" label=${t("dir.code")} value=${form.code} onInput=${set("code")} error=${errors.code} maxLength="63" />
          <${TextField} id="group-name" label=${t("dir.name")} value=${form.name} onInput=${set("name")} error=${errors.name} maxLength="200" />
          <${TextField}
            id="group-members"
            label=${t("dir.members")}
            hint=${t("dir.membersHint")}
            value=${form.members}
            onInput=${set("members")}
            error=${errors.members}
            maxLength="100000"
          />
          <${ErrorNote} error=${failure} />
          <button type="submit" class="button button-primary">${t("dir.add")}</button>
        </form>`
      : html`<p class="hint">${t("dir.adminOnly")}</p>`}
  </section>`;
}

export function AdminDepartmentsScreen() {
  const admin = session.hasRole("admin");
  const [department, chooser] = useDepartmentChoice();
  return html`<${Page} title=${t("admin.departments")}>
    <${AdminNav} />
    ${chooser}
    <${PasskeySetting} department=${department} />
    <${Units} admin=${admin} />
    <${Groups} admin=${admin} />
  </${Page}>`;
}
