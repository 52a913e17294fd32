// 我的设备: every key enrolled for me (each browser, phone or key file is its own), with
// revocation, and my passkeys. Revoking the key of this browser ends this session at once.
import { html, useState, useEffect } from "../core/html.js";
import { api } from "../core/api.js";
import { session } from "../core/session.js";
import { registerPasskey, removePasskey } from "../core/passkey.js";
import { t, addMessages } from "../core/i18n.js";
import { Page, Loading, ErrorNote, formatTime, notify } from "../core/ui.js";

addMessages({
  zh: {
    "nav.devices": "我的设备",
    "devices.title": "我的设备",
    "devices.keys": "密钥",
    "devices.keysHint": "每个浏览器、手机或密钥文件都是单独登记的密钥。丢失设备时请立即吊销。",
    "devices.kind": "类型",
    "devices.kind.browser": "浏览器",
    "devices.kind.file": "密钥文件",
    "devices.created": "登记时间",
    "devices.lastUsed": "最近使用",
    "devices.status": "状态",
    "devices.status.active": "有效",
    "devices.status.revoked": "已吊销",
    "devices.this": "（本设备）",
    "devices.byOther": "由他人发放的登记码登记",
    "devices.revoke": "吊销",
    "devices.revokeLabel": "吊销 {label}",
    "devices.revokeConfirm": "吊销后该设备立即不能再登录。确定吊销 {label}？",
    "devices.revokeThis": "这是本设备的密钥：吊销后您将立即退出。确定吊销？",
    "devices.yes": "确定吊销",
    "devices.revoked": "已吊销",
    "devices.none": "没有密钥",
    "devices.passkeys": "通行密钥",
    "devices.passkeysHint": "通行密钥用于登录和签发、签收、用印时确认本人操作。",
    "devices.noPasskeys": "尚未添加通行密钥",
    "devices.passkeyLabel": "通行密钥名称",
    "devices.passkeyLabelHint": "例如：办公室电脑指纹",
    "devices.addPasskey": "添加通行密钥",
    "devices.added": "已添加通行密钥",
    "devices.remove": "删除",
    "devices.removeLabel": "删除通行密钥 {label}",
    "devices.removed": "已删除通行密钥",
    "devices.removeCancelled": "未完成通行密钥确认，未删除。",
    "devices.passkeyCancelled": "未完成通行密钥注册。",
    "devices.setupRequired": "您的角色须使用通行密钥：请先添加一个，才能使用其他功能。",
  },
  en: {
    "nav.devices": "My devices",
    "devices.title": "My devices",
    "devices.keys": "Keys",
    "devices.keysHint": "Each browser, phone or key file is its own enrolled key. Revoke a lost device at once.",
    "devices.kind": "Kind",
    "devices.kind.browser": "Browser",
    "devices.kind.file": "Key file",
    "devices.created": "Enrolled",
    "devices.lastUsed": "Last used",
    "devices.status": "Status",
    "devices.status.active": "Active",
    "devices.status.revoked": "Revoked",
    "devices.this": " (this device)",
    "devices.byOther": "Enrolled with a code someone else handed out",
    "devices.revoke": "Revoke",
    "devices.revokeLabel": "Revoke {label}",
    "devices.revokeConfirm": "The device can no longer log in. Revoke {label}?",
    "devices.revokeThis": "This is this browser's key: you are logged out at once. Revoke it?",
    "devices.yes": "Revoke",
    "devices.revoked": "Revoked",
    "devices.none": "No keys",
    "devices.passkeys": "Passkeys",
    "devices.passkeysHint": "Passkeys confirm it is you at login and when signing off, signing for and sealing.",
    "devices.noPasskeys": "No passkey yet",
    "devices.passkeyLabel": "Passkey name",
    "devices.passkeyLabelHint": "e.g. office laptop fingerprint",
    "devices.addPasskey": "Add a passkey",
    "devices.added": "Passkey added",
    "devices.remove": "Remove",
    "devices.removeLabel": "Remove passkey {label}",
    "devices.removed": "Passkey removed",
    "devices.removeCancelled": "The passkey check was not completed: nothing was removed.",
    "devices.passkeyCancelled": "The passkey was not registered.",
    "devices.setupRequired": "Your roles need a passkey: add one before anything else.",
  },
});

function keyLabel(key) {
  return key.label || `${key.kid.slice(0, 12)}…`;
}

function keyKind(key) {
  return t(`devices.kind.${key.device_kind === "browser" ? "browser" : "file"}`);
}

/** One official's keys with revocation (also used by the admin screen for any official). */
export function KeyList({ official, currentKid, onRevokedCurrent }) {
  const [keys, setKeys] = useState(null);
  const [asking, setAsking] = useState(null);
  const [failure, setFailure] = useState(null);
  const path = `/v1/officials/${encodeURIComponent(official)}/keys`;
  const load = () => api.get(path).then((page) => setKeys(page.items), setFailure);
  useEffect(() => {
    load();
  }, [official]);

  const revoke = async (key) => {
    setFailure(null);
    try {
      await api.del(`${path}/${encodeURIComponent(key.kid)}`);
      notify(t("devices.revoked"));
      setAsking(null);
      if (key.kid === currentKid && onRevokedCurrent) onRevokedCurrent();
      else load();
    } catch (error) {
      setFailure(error);
    }
  };

  if (keys === null) return failure ? html`<${ErrorNote} error=${failure} />` : html`<${Loading} />`;
  return html`<div>
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    ${keys.length === 0
      ? html`<p class="hint">${t("devices.none")}</p>`
      : html`<ul class="cards">
          ${keys.map((key) => {
            const label = keyLabel(key);
            const current = key.kid === currentKid;
            return html`<li class="panel card" key=${key.kid} data-kid=${key.kid} data-status=${key.status}>
              <h3>${label}${current ? t("devices.this") : ""}</h3>
              <dl class="facts">
                <dt>${t("devices.kind")}</dt>
                <dd>${keyKind(key)}</dd>
                <dt>${t("devices.created")}</dt>
                <dd><time datetime=${key.created_at}>${formatTime(key.created_at)}</time></dd>
                <dt>${t("devices.lastUsed")}</dt>
                <dd>${formatTime(key.last_used_at)}</dd>
                <dt>${t("devices.status")}</dt>
                <dd>${t(`devices.status.${key.status}`)}${key.revoked_at ? ` · ${formatTime(key.revoked_at)}` : ""}</dd>
              </dl>
              ${key.added_by_other ? html`<p class="note">${t("devices.byOther")}</p>` : null}
              ${key.status === "active" && asking !== key.kid
                ? html`<button type="button" class="button button-danger" aria-label=${t("devices.revokeLabel", { label })} onClick=${() => setAsking(key.kid)}>
                    ${t("devices.revoke")}
                  </button>`
                : null}
              ${asking === key.kid
                ? html`<div class="confirm" role="group" aria-label=${t("devices.revokeLabel", { label })}>
                    <p>${current ? t("devices.revokeThis") : t("devices.revokeConfirm", { label })}</p>
                    <button type="button" class="button button-danger" onClick=${() => revoke(key)}>${t("devices.yes")}</button>
                    <button type="button" class="button" onClick=${() => setAsking(null)}>${t("common.cancel")}</button>
                  </div>`
                : null}
            </li>`;
          })}
        </ul>`}
  </div>`;
}

/** One official's passkeys with removal; `own`: also the form that registers a new one. */
export function Passkeys({ official, own = false }) {
  const [items, setItems] = useState(null);
  const [label, setLabel] = useState("");
  const [failure, setFailure] = useState(null);
  const [hint, setHint] = useState(null);
  const [busy, setBusy] = useState(false);
  const path = `/v1/officials/${encodeURIComponent(official)}/passkeys`;
  const load = () => api.get(path).then((page) => setItems(page.items.filter((p) => p.status === "active")), setFailure);
  useEffect(() => {
    load();
  }, [official]);

  const add = async (event) => {
    event.preventDefault();
    setFailure(null);
    setHint(null);
    setBusy(true);
    try {
      await registerPasskey(label.trim() || session.me?.device?.label || t("devices.passkeys"));
      notify(t("devices.added"));
      setLabel("");
      load();
    } catch (error) {
      if (error && error.name === "NotAllowedError") setHint(t("devices.passkeyCancelled"));
      else setFailure(error);
    } finally {
      setBusy(false);
    }
  };

  const remove = async (passkey) => {
    setFailure(null);
    setHint(null);
    try {
      // One's own passkey, from a console key older than it, is confirmed by a current
      // passkey (the core asks for it when the server wants it); managers need none.
      await removePasskey(official, passkey.id);
      notify(t("devices.removed"));
      load();
    } catch (error) {
      if (error && error.name === "NotAllowedError") setHint(t("devices.removeCancelled"));
      else setFailure(error);
    }
  };

  return html`<div>
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    ${items === null
      ? failure ? null : html`<${Loading} />`
      : items.length === 0
        ? html`<p class="hint">${t("devices.noPasskeys")}</p>`
        : html`<ul class="cards">
            ${items.map(
              (p) => html`<li class="panel card" key=${p.id} data-passkey=${p.id}>
                <h3>${p.label}</h3>
                <p><time datetime=${p.created_at}>${formatTime(p.created_at)}</time></p>
                <button type="button" class="button button-danger" aria-label=${t("devices.removeLabel", { label: p.label })} onClick=${() => remove(p)}>
                  ${t("devices.remove")}
                </button>
              </li>`,
            )}
          </ul>`}
    ${own
      ? html`<form class="inline-form" onSubmit=${add}>
          <div class="field">
            <label for="passkey-label">${t("devices.passkeyLabel")}</label>
            <input
              id="passkey-label"
              type="text"
              maxlength="100"
              aria-describedby="passkey-label-hint"
              value=${label}
              onInput=${(e) => setLabel(e.currentTarget.value)}
            />
            <p id="passkey-label-hint" class="hint">${t("devices.passkeyLabelHint")}</p>
          </div>
          ${hint ? html`<p class="field-error" role="alert">${hint}</p>` : null}
          <button type="submit" class="button button-primary" disabled=${busy}>${t("devices.addPasskey")}</button>
        </form>`
      : hint ? html`<p class="field-error" role="alert">${hint}</p>` : null}
  </div>`;
}

export function DevicesScreen() {
  const me = session.me;
  return html`<${Page} title=${t("devices.title")}>
    ${me.passkey === "setup_required" ? html`<p class="note note-warn" role="note">${t("devices.setupRequired")}</p>` : null}
    <section aria-labelledby="devices-passkeys">
      <h2 id="devices-passkeys">${t("devices.passkeys")}</h2>
      <p class="hint">${t("devices.passkeysHint")}</p>
      <${Passkeys} official=${me.id} own />
    </section>
    <section aria-labelledby="devices-keys">
      <h2 id="devices-keys">${t("devices.keys")}</h2>
      <p class="hint">${t("devices.keysHint")}</p>
      <${KeyList} official=${me.id} currentKid=${me.kid} onRevokedCurrent=${() => session.logout()} />
    </section>
  </${Page}>`;
}
