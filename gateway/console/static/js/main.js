// The console shell: header with the official's department and name, the navigation
// built from screens/index.js for the official's roles, the language switch, logout, and
// the page the hash route names. No session: the login (or enrollment) page.
import { html, render, useEffect, useState } from "./core/html.js";
import { addMessages, lang, loadLang, onLangChange, setLang, t } from "./core/i18n.js";
import { match, navigate, useRoute } from "./core/router.js";
import { session } from "./core/session.js";
import { useDepartmentName } from "./core/directory.js";
import { Notices } from "./core/ui.js";
import "./core/live.js";
import { screens } from "./screens/index.js";

addMessages({
  zh: {
    "nav.dashboard": "工作台",
    "nav.inbox": "收文",
    "shell.notfound": "页面不存在",
  },
  en: {
    "nav.dashboard": "Dashboard",
    "nav.inbox": "Inbox",
    "shell.notfound": "No such page",
  },
});

function find(path) {
  for (const screen of screens) {
    const params = match(screen.path, path);
    if (params) return { screen, params };
  }
  return null;
}

function allowed(screen) {
  return screen.public || !screen.roles.length || session.hasRole(...screen.roles);
}

function Header({ me, path }) {
  // A session that must first set up a passkey may call nothing but /v1/me and passkeys.
  const settingUp = session.passkey === "setup_required";
  const department = useDepartmentName(settingUp ? null : me?.department);
  const items = me && !settingUp ? screens.filter((s) => s.nav && allowed(s)) : [];
  const other = lang() === "zh" ? "en" : "zh"; // the button names the language it switches to
  return html`<header class="shell-header">
    <div class="shell-bar">
      <p class="shell-brand">${t("app.name")}</p>
      <div class="shell-tools">
        ${me
          ? html`<p class="shell-who">
              <span class="shell-department">${department || me.department}</span>
              <span class="shell-name">${me.name}</span>
            </p>`
          : null}
        <button
          type="button"
          class="button button-quiet"
          lang=${other === "en" ? "en" : "zh-CN"}
          onClick=${() => setLang(other)}
        >
          ${t("lang.switch")}
        </button>
        ${me
          ? html`<button type="button" class="button button-quiet" onClick=${() => session.logout()}>
              ${t("session.logout")}
            </button>`
          : null}
      </div>
    </div>
    ${items.length
      ? html`<nav class="shell-nav" aria-label=${t("nav.label")}>
          <ul>
            ${items.map(
              (s) => html`<li key=${s.path}>
                <a
                  href=${s.path}
                  aria-current=${(s.path === "#/" ? path === "/" : `#${path}`.startsWith(s.path))
                    ? "page"
                    : undefined}
                  >${t(s.title)}</a
                >
              </li>`,
            )}
          </ul>
        </nav>`
      : null}
  </header>`;
}

function App({ ready }) {
  const [, setTick] = useState(0);
  const current = useRoute();
  useEffect(() => session.subscribe(() => setTick((n) => n + 1)), []);
  useEffect(() => onLangChange(() => setTick((n) => n + 1)), []);
  const found = find(current.path);
  const me = session.me;
  useEffect(() => {
    if (!ready) return;
    if (!me && !(found && found.screen.public)) navigate("#/login");
    else if (me && session.passkey === "setup_required" && current.path !== "/passkey-setup") {
      navigate("#/passkey-setup");
    }
  }, [ready, me, found?.screen, current.path]);
  let page;
  if (!ready) page = html`<p class="loading" role="status">${t("common.loading")}</p>`;
  else if (!found || !allowed(found.screen) || (!me && !found.screen.public)) {
    page = me || !found
      ? html`<section class="page"><h1 tabindex="-1">${t("shell.notfound")}</h1></section>`
      : null;
  } else {
    const Screen = found.screen.component;
    page = html`<${Screen} key=${found.screen.path} params=${found.params} query=${current.query} />`;
  }
  return html`<a class="skip" href="#main" onClick=${skip}>${t("app.skip")}</a>
    <${Header} me=${me} path=${current.path} />
    <main id="main" class="shell-main" tabindex="-1">${page}</main>
    <${Notices} />`;
}

function skip(event) {
  event.preventDefault();
  document.getElementById("main")?.focus();
}

async function start() {
  const root = document.getElementById("app");
  render(html`<${App} ready=${false} />`, root);
  await loadLang();
  await session.resume();
  render(html`<${App} ready=${true} />`, root);
}

start();
