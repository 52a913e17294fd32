// 管理 · 推送: a department's webhooks (dept_admin: add, with the secret shown once; stop;
// dead letters and their replay) and the platform's allow-list of target hosts (admin).
import { html, useState } from "../core/html.js";
import { api } from "../core/api.js";
import { session } from "../core/session.js";
import { t, addMessages } from "../core/i18n.js";
import { Page, Loading, ErrorNote, Table, formatTime, notify, useLoad } from "../core/ui.js";
import { AdminNav } from "./admin.js";

addMessages({
  zh: {
    "hooks.list": "本单位推送地址",
    "hooks.none": "没有推送地址",
    "hooks.url": "地址（https://）",
    "hooks.description": "说明",
    "hooks.created": "添加时间",
    "hooks.add": "添加推送地址",
    "hooks.addSubmit": "添加",
    "hooks.secret": "签名密钥（只显示这一次，请立即保存到接收系统）",
    "hooks.stop": "停用",
    "hooks.stopLabel": "停用 {url}",
    "hooks.stopped": "已停用推送地址",
    "hooks.dead": "投递失败的推送",
    "hooks.noDead": "没有投递失败的推送",
    "hooks.attempts": "尝试次数",
    "hooks.lastError": "最后错误",
    "hooks.deadAt": "失败时间",
    "hooks.replay": "重新投递",
    "hooks.replayed": "已重新排队",
    "hooks.err.url": "请填写以 https:// 开头的地址",
    "hooks.allowlist": "允许的目标主机（平台）",
    "hooks.noAllow": "允许列表为空",
    "hooks.host": "主机",
    "hooks.port": "端口",
    "hooks.note": "备注",
    "hooks.private": "允许内网地址",
    "hooks.addedBy": "添加人",
    "hooks.allow": "加入允许列表",
    "hooks.remove": "移除",
    "hooks.removeLabel": "从允许列表移除 {host}",
    "hooks.removed": "已移除",
    "hooks.err.host": "请填写主机名",
    "hooks.deptAdminOnly": "推送地址由本单位管理员维护。",
  },
  en: {
    "hooks.list": "Webhooks of the department",
    "hooks.none": "No webhooks",
    "hooks.url": "URL (https://)",
    "hooks.description": "Description",
    "hooks.created": "Added",
    "hooks.add": "Add a webhook",
    "hooks.addSubmit": "Add",
    "hooks.secret": "Signing secret (shown only now: store it in the receiving system)",
    "hooks.stop": "Stop",
    "hooks.stopLabel": "Stop {url}",
    "hooks.stopped": "Webhook stopped",
    "hooks.dead": "Dead letters",
    "hooks.noDead": "No dead letters",
    "hooks.attempts": "Attempts",
    "hooks.lastError": "Last error",
    "hooks.deadAt": "Failed",
    "hooks.replay": "Replay",
    "hooks.replayed": "Queued again",
    "hooks.err.url": "Enter an https:// URL",
    "hooks.allowlist": "Allowed target hosts (platform)",
    "hooks.noAllow": "The allow-list is empty",
    "hooks.host": "Host",
    "hooks.port": "Port",
    "hooks.note": "Note",
    "hooks.private": "Allow private addresses",
    "hooks.addedBy": "Added by",
    "hooks.allow": "Allow",
    "hooks.remove": "Remove",
    "hooks.removeLabel": "Remove {host} from the allow-list",
    "hooks.removed": "Removed",
    "hooks.err.host": "Enter the host name",
    "hooks.deptAdminOnly": "The department's admin keeps its webhooks.",
  },
});

const key = () => ({ idempotencyKey: crypto.randomUUID() });

function Webhooks({ department }) {
  const base = `/v1/departments/${encodeURIComponent(department)}/webhooks`;
  const [hooks, hooksError, reload] = useLoad(() => api.get(base).then((p) => p.items), [department]);
  const [dead, deadError, reloadDead] = useLoad(() => api.get(`${base}/dead`).then((p) => p.items), [department]);
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [error, setError] = useState(null);
  const [failure, setFailure] = useState(null);
  const [secret, setSecret] = useState(null);

  const add = async (event) => {
    event.preventDefault();
    setFailure(null);
    setSecret(null);
    if (!/^https:\/\/\S+$/.test(url.trim())) {
      setError(t("hooks.err.url"));
      return;
    }
    setError(null);
    try {
      const made = await api.post(base, { url: url.trim(), description: description.trim() }, key());
      setSecret(made.secret);
      setUrl("");
      setDescription("");
      reload();
    } catch (failed) {
      setFailure(failed);
    }
  };
  const act = async (run, message) => {
    setFailure(null);
    try {
      await run();
      notify(message);
      reload();
      reloadDead();
    } catch (failed) {
      setFailure(failed);
    }
  };

  const hookColumns = [
    { label: t("hooks.url"), render: (h) => html`<code>${h.url}</code>` },
    { label: t("hooks.description"), render: (h) => h.description || "—" },
    { label: t("hooks.created"), render: (h) => formatTime(h.created_at) },
    {
      label: t("hooks.stop"),
      render: (h) => html`<button
        type="button"
        class="button button-danger"
        aria-label=${t("hooks.stopLabel", { url: h.url })}
        onClick=${() => act(() => api.del(`${base}/${encodeURIComponent(h.id)}`), t("hooks.stopped"))}
      >
        ${t("hooks.stop")}
      </button>`,
    },
  ];
  const deadColumns = [
    { label: t("hooks.url"), render: (d) => html`<code>${d.url}</code>` },
    { label: t("hooks.attempts"), render: (d) => String(d.attempts) },
    { label: t("hooks.lastError"), render: (d) => d.last_error || (d.last_status ? `HTTP ${d.last_status}` : "—") },
    { label: t("hooks.deadAt"), render: (d) => formatTime(d.dead_at) },
    {
      label: t("hooks.replay"),
      render: (d) => html`<button
        type="button"
        class="button"
        onClick=${() => act(() => api.post(`${base}/dead/${encodeURIComponent(d.id)}/replay`, {}, key()), t("hooks.replayed"))}
      >
        ${t("hooks.replay")}
      </button>`,
    },
  ];

  return html`<section aria-labelledby="hooks-heading">
      <h2 id="hooks-heading">${t("hooks.list")}</h2>
      <${ErrorNote} error=${hooksError || failure} />
      ${hooks === undefined && !hooksError ? html`<${Loading} />` : html`<${Table} columns=${hookColumns} rows=${hooks ?? []} empty=${t("hooks.none")} caption=${t("hooks.list")} />`}
      <form class="panel" novalidate onSubmit=${add} aria-labelledby="hooks-add-heading">
        <h3 id="hooks-add-heading">${t("hooks.add")}</h3>
        <div class="field">
          <label for="hook-url">${t("hooks.url")}</label>
          <input
            id="hook-url"
            type="url"
            inputmode="url"
            maxlength="2000"
            value=${url}
            aria-invalid=${error ? "true" : "false"}
            aria-describedby=${error ? "hook-url-error" : undefined}
            onInput=${(e) => setUrl(e.currentTarget.value)}
          />
          ${error ? html`<p id="hook-url-error" class="field-error">${error}</p>` : null}
        </div>
        <div class="field">
          <label for="hook-description">${t("hooks.description")}</label>
          <input id="hook-description" type="text" maxlength="200" value=${description} onInput=${(e) => setDescription(e.currentTarget.value)} />
        </div>
        ${secret
          ? html`<div class="field">
              <label for="hook-secret">${t("hooks.secret")}</label>
              <input id="hook-secret" type="text" readonly value=${secret} onFocus=${(e) => e.currentTarget.select()} />
            </div>`
          : null}
        <button type="submit" class="button button-primary">${t("hooks.addSubmit")}</button>
      </form>
    </section>
    <section aria-labelledby="dead-heading">
      <h2 id="dead-heading">${t("hooks.dead")}</h2>
      <${ErrorNote} error=${deadError} />
      ${dead === undefined && !deadError ? html`<${Loading} />` : html`<${Table} columns=${deadColumns} rows=${dead ?? []} empty=${t("hooks.noDead")} caption=${t("hooks.dead")} />`}
    </section>`;
}

function AllowList() {
  const [items, error, reload] = useLoad(() => api.get("/v1/webhooks/allowlist").then((p) => p.items), []);
  const [host, setHost] = useState("");
  const [port, setPort] = useState("443");
  const [note, setNote] = useState("");
  const [allowPrivate, setAllowPrivate] = useState(false);
  const [hostError, setHostError] = useState(null);
  const [failure, setFailure] = useState(null);

  const add = async (event) => {
    event.preventDefault();
    setFailure(null);
    if (!host.trim()) {
      setHostError(t("hooks.err.host"));
      return;
    }
    setHostError(null);
    try {
      await api.post("/v1/webhooks/allowlist", { host: host.trim(), port: Number(port) || 443, allow_private: allowPrivate, note: note.trim() }, key());
      setHost("");
      setNote("");
      reload();
    } catch (failed) {
      setFailure(failed);
    }
  };
  const remove = async (entry) => {
    setFailure(null);
    try {
      await api.del(`/v1/webhooks/allowlist/${encodeURIComponent(entry.id)}`);
      notify(t("hooks.removed"));
      reload();
    } catch (failed) {
      setFailure(failed);
    }
  };
  const columns = [
    { label: t("hooks.host"), render: (e) => html`<code>${e.host}:${e.port}</code>` },
    { label: t("hooks.private"), render: (e) => (e.allow_private ? "✓" : "—") },
    { label: t("hooks.note"), render: (e) => e.note || "—" },
    { label: t("hooks.addedBy"), render: (e) => `${e.added_by} · ${formatTime(e.added_at)}` },
    {
      label: t("hooks.remove"),
      render: (e) => html`<button type="button" class="button button-danger" aria-label=${t("hooks.removeLabel", { host: e.host })} onClick=${() => remove(e)}>
        ${t("hooks.remove")}
      </button>`,
    },
  ];
  return html`<section aria-labelledby="allow-heading">
    <h2 id="allow-heading">${t("hooks.allowlist")}</h2>
    <${ErrorNote} error=${error || failure} />
    ${items === undefined && !error ? html`<${Loading} />` : html`<${Table} columns=${columns} rows=${items ?? []} empty=${t("hooks.noAllow")} caption=${t("hooks.allowlist")} />`}
    <form class="panel" novalidate onSubmit=${add} aria-label=${t("hooks.allow")}>
      <div class="row">
        <div class="field">
          <label for="allow-host">${t("hooks.host")}</label>
          <input
            id="allow-host"
            type="text"
            maxlength="253"
            value=${host}
            aria-invalid=${hostError ? "true" : "false"}
            aria-describedby=${hostError ? "allow-host-error" : undefined}
            onInput=${(e) => setHost(e.currentTarget.value)}
          />
          ${hostError ? html`<p id="allow-host-error" class="field-error">${hostError}</p>` : null}
        </div>
        <div class="field">
          <label for="allow-port">${t("hooks.port")}</label>
          <input id="allow-port" type="number" min="1" max="65535" value=${port} onInput=${(e) => setPort(e.currentTarget.value)} />
        </div>
      </div>
      <div class="field">
        <label for="allow-note">${t("hooks.note")}</label>
        <input id="allow-note" type="text" maxlength="200" value=${note} onInput=${(e) => setNote(e.currentTarget.value)} />
      </div>
      <div class="check">
        <input id="allow-private" type="checkbox" checked=${allowPrivate} onChange=${(e) => setAllowPrivate(e.currentTarget.checked)} />
        <label for="allow-private">${t("hooks.private")}</label>
      </div>
      <button type="submit" class="button button-primary">${t("hooks.allow")}</button>
    </form>
  </section>`;
}

export function AdminWebhooksScreen() {
  const me = session.me;
  return html`<${Page} title=${t("admin.webhooks")}>
    <${AdminNav} />
    ${session.hasRole("dept_admin") ? html`<${Webhooks} department=${me.department} />` : html`<p class="hint">${t("hooks.deptAdminOnly")}</p>`}
    ${session.hasRole("admin") ? html`<${AllowList} />` : null}
  </${Page}>`;
}
