// 登录: the key enrolled in this browser logs in (with a passkey when the gateway asks
// for one). An official who must use a passkey and has none yet is sent to register one,
// then logs in again with it.
import { html, useEffect, useState } from "../core/html.js";
import { addMessages, t } from "../core/i18n.js";
import { currentIdentity, deviceLabel } from "../core/keys.js";
import { registerPasskey } from "../core/passkey.js";
import { navigate } from "../core/router.js";
import { session } from "../core/session.js";
import { Button, ErrorNote, Page, notify } from "../core/ui.js";

addMessages({
  zh: {
    "login.title": "登录",
    "login.as": "本设备已启用的人员：{official}",
    "login.submit": "使用本设备密钥登录",
    "login.passkey": "使用通行密钥登录",
    "login.none": "本浏览器还没有启用密钥。",
    "login.enroll": "启用本设备",
    "login.ended": "会话已结束：{reason}",
    "login.revoked": "本设备的密钥已被吊销，会话已结束。如需继续使用，请向部门管理员申请新的启用码。",
    "passkey.setup.title": "设置通行密钥",
    "passkey.setup.intro": "您的角色需要在登录和签收、签发、用印时使用通行密钥（指纹、面容或设备 PIN）确认。请为本设备设置一个通行密钥。",
    "passkey.setup.submit": "设置通行密钥",
    "passkey.setup.done": "通行密钥已设置，请再次确认登录。",
  },
  en: {
    "login.title": "Log in",
    "login.as": "Enrolled on this device: {official}",
    "login.submit": "Log in with this device's key",
    "login.passkey": "Log in with a passkey",
    "login.none": "No key is enrolled in this browser yet.",
    "login.enroll": "Enroll this device",
    "login.ended": "The session ended: {reason}",
    "login.revoked": "This device's key was revoked and the session ended. Ask your department admin for a new enrollment code to go on.",
    "passkey.setup.title": "Set up a passkey",
    "passkey.setup.intro": "Your role needs a passkey (fingerprint, face or device PIN) at login and before signing for, signing off and sealing. Set one up for this device.",
    "passkey.setup.submit": "Set up a passkey",
    "passkey.setup.done": "The passkey is set up; confirm the login once more.",
  },
});

export function Login() {
  const [identity, setIdentity] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  useEffect(() => {
    currentIdentity().then(setIdentity);
  }, []);
  useEffect(() => {
    if (session.me) navigate("#/");
  }, []);

  async function login(withPasskey) {
    setBusy(true);
    setError(null);
    try {
      await session.login({ passkey: withPasskey });
      navigate(session.passkey === "setup_required" ? "#/passkey-setup" : "#/");
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  }

  const ended = session.ended;
  return html`<${Page} title=${t("login.title")}>
    <div class="panel narrow">
      ${ended
        ? html`<p class="note note-warn" role="alert">
            ${ended.revoked ? t("login.revoked") : t("login.ended", { reason: ended.reason })}
          </p>`
        : null}
      ${identity === undefined
        ? null
        : identity
          ? html`<p>${t("login.as", { official: identity.official })}</p>
              <${ErrorNote} error=${error} />
              <div class="form-actions">
                <${Button} kind="primary" busy=${busy} onClick=${() => login(false)}>${t("login.submit")}<//>
                <${Button} disabled=${busy} onClick=${() => login(true)}>${t("login.passkey")}<//>
                <a class="button button-quiet" href="#/enroll">${t("login.enroll")}</a>
              </div>`
          : html`<p>${t("login.none")}</p>
              <div class="form-actions"><a class="button button-primary" href="#/enroll">${t("login.enroll")}</a></div>`}
    </div>
  <//>`;
}

export function PasskeySetup() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  async function setup() {
    setBusy(true);
    setError(null);
    try {
      await registerPasskey(deviceLabel());
      notify(t("passkey.setup.done"));
      await session.login({ passkey: true });
      navigate("#/");
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  }
  return html`<${Page} title=${t("passkey.setup.title")}>
    <div class="panel narrow">
      <p>${t("passkey.setup.intro")}</p>
      <${ErrorNote} error=${error} />
      <div class="form-actions">
        <${Button} kind="primary" busy=${busy} onClick=${setup}>${t("passkey.setup.submit")}<//>
      </div>
    </div>
  <//>`;
}
