// 启用本设备: the official's id and one-time enrollment code (typed in, or from the link
// #/enroll/{official}/{code} a dept_admin hands over, taken out of the address bar at
// once). The browser makes a non-extractable P-256 key and proves it with the SDK's
// `sealhub-enroll+jwt`; the gateway lists it as a "browser" device.
import { html, useEffect, useState } from "../core/html.js";
import { addMessages, t } from "../core/i18n.js";
import { api } from "../core/api.js";
import { currentIdentity, deviceLabel, newIdentity, saveIdentity } from "../core/keys.js";
import { newJti, now, signWith } from "../core/jws.js";
import { navigate } from "../core/router.js";
import { session } from "../core/session.js";
import { Button, ErrorNote, Field, Page, notify } from "../core/ui.js";

addMessages({
  zh: {
    "enroll.title": "启用本设备",
    "enroll.intro": "请输入部门管理员提供的人员编号和一次性启用码。本浏览器将生成不可导出的签名密钥，仅保存在本设备上。",
    "enroll.official": "人员编号",
    "enroll.code": "启用码",
    "enroll.code.hint": "启用码只能使用一次，72 小时内有效。",
    "enroll.label": "设备名称",
    "enroll.label.hint": "显示在“我的设备”中，便于识别。",
    "enroll.submit": "启用并登录",
    "enroll.replace": "本浏览器已为 {official} 启用过密钥；继续将替换它。",
    "enroll.done": "本设备已启用。",
    "enroll.login": "已启用？去登录",
  },
  en: {
    "enroll.title": "Enroll this device",
    "enroll.intro": "Enter the official id and the one-time enrollment code your department admin gave you. This browser makes a signing key that cannot be exported and stays on this device.",
    "enroll.official": "Official id",
    "enroll.code": "Enrollment code",
    "enroll.code.hint": "The code works once and for 72 hours.",
    "enroll.label": "Device name",
    "enroll.label.hint": "Shown under “My devices”.",
    "enroll.submit": "Enroll and log in",
    "enroll.replace": "This browser already holds a key of {official}; going on replaces it.",
    "enroll.done": "This device is enrolled.",
    "enroll.login": "Already enrolled? Log in",
  },
});

async function enrollmentProof(identity, code) {
  const header = { alg: "ES256", typ: "sealhub-enroll+jwt", jwk: identity.publicJwk };
  const claims = { official: identity.official, enrollment_code: code, iat: now(), jti: newJti() };
  return signWith(identity.privateKey, header, claims);
}

export function Enroll({ params }) {
  const [official, setOfficial] = useState(params.official ?? "");
  const [code, setCode] = useState(params.code ?? "");
  const [label, setLabel] = useState(deviceLabel);
  const [existing, setExisting] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  useEffect(() => {
    // The code must not stay in the address bar or the history.
    if (params.code) history.replaceState(null, "", `${location.pathname}#/enroll`);
    currentIdentity().then(setExisting);
  }, []);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const identity = await newIdentity(official.trim(), label.trim() || deviceLabel());
      const proof = await enrollmentProof(identity, code.trim());
      const answer = await api.post(`/v1/officials/${encodeURIComponent(identity.official)}/keys`, {
        proof,
        device: { kind: "browser", label: identity.label },
      });
      await session.logout();
      await saveIdentity({ ...identity, kid: answer.kid ?? identity.kid, enrolled_at: new Date().toISOString() });
      notify(t("enroll.done"));
      await session.login();
      navigate(session.passkey === "setup_required" ? "#/passkey-setup" : "#/");
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  }

  return html`<${Page} title=${t("enroll.title")}>
    <form class="panel narrow" onSubmit=${submit} novalidate=${false}>
      <p>${t("enroll.intro")}</p>
      ${existing ? html`<p class="note note-warn">${t("enroll.replace", { official: existing.official })}</p>` : null}
      <${Field} label=${t("enroll.official")}>
        <input name="official" autocomplete="username" required value=${official}
          onInput=${(e) => setOfficial(e.currentTarget.value)} />
      <//>
      <${Field} label=${t("enroll.code")} hint=${t("enroll.code.hint")}>
        <input name="code" autocomplete="one-time-code" required spellcheck="false" value=${code}
          onInput=${(e) => setCode(e.currentTarget.value)} />
      <//>
      <${Field} label=${t("enroll.label")} hint=${t("enroll.label.hint")}>
        <input name="label" maxlength="100" value=${label} onInput=${(e) => setLabel(e.currentTarget.value)} />
      <//>
      <${ErrorNote} error=${error} />
      <div class="form-actions">
        <${Button} kind="primary" type="submit" busy=${busy}>${t("enroll.submit")}<//>
        <a class="button button-quiet" href="#/login">${t("enroll.login")}</a>
      </div>
    </form>
  <//>`;
}
