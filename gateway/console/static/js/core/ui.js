// Shared building blocks of the screens. Each page has one <h1> that takes the focus when
// the page opens, so keyboard and screen-reader users land on the new content.
import { html, useEffect, useRef, useState } from "./html.js";
import { lang, t } from "./i18n.js";

export function Page({ title, actions, children }) {
  const heading = useRef(null);
  useEffect(() => {
    heading.current?.focus();
    document.title = `${title} · ${t("app.name")}`;
  }, [title]);
  return html`<section class="page" aria-labelledby="page-title">
    <div class="page-head">
      <h1 id="page-title" tabindex="-1" ref=${heading}>${title}</h1>
      ${actions ? html`<div class="page-actions">${actions}</div>` : null}
    </div>
    ${children}
  </section>`;
}

/** The error of a failed call, in words (its machine code kept for support). */
function errorText(error) {
  if (!error) return "";
  const known = error.code && t(`error.${error.code}`);
  if (known && known !== `error.${error.code}`) return known;
  return error.detail || error.title || error.message || t("common.error");
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="note note-error" role="alert">
    ${errorText(error)}${error.code ? html` <span class="code">(${error.code})</span>` : null}
  </p>`;
}

let fieldCount = 0;

/** A one-line text input with its label, hint and error (tied by aria-describedby). */
export function TextField({ id, label, hint, error, value, onInput, required, maxLength }) {
  const described = [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean).join(" ");
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <input
      id=${id}
      type="text"
      value=${value}
      required=${required}
      maxlength=${maxLength}
      aria-invalid=${error ? "true" : "false"}
      aria-describedby=${described || undefined}
      onInput=${(e) => onInput(e.currentTarget.value)}
    />
    ${hint ? html`<p id=${`${id}-hint`} class="hint">${hint}</p>` : null}
    ${error ? html`<p id=${`${id}-error`} class="field-error">${error}</p>` : null}
  </div>`;
}

/** A labelled form control: the child gets the id the <label> points at. */
export function Field({ label, children, hint, id }) {
  const [own] = useState(() => id ?? `field-${(fieldCount += 1)}`);
  const hintId = hint ? `${own}-hint` : undefined;
  const child = Array.isArray(children) ? children[0] : children;
  if (child && child.props) {
    child.props.id = child.props.id ?? own;
    if (hintId) child.props["aria-describedby"] = hintId;
  }
  return html`<div class="field">
    <label for=${child?.props?.id ?? own}>${label}</label>
    ${children}
    ${hint ? html`<p class="hint" id=${hintId}>${hint}</p>` : null}
  </div>`;
}

export function Button({ kind = "secondary", busy = false, type = "button", children, ...props }) {
  return html`<button
    type=${type}
    class=${`button button-${kind}`}
    aria-busy=${busy ? "true" : undefined}
    disabled=${busy || props.disabled}
    ...${props}
  >
    ${children}
  </button>`;
}

/** A table that becomes a list of cards on narrow screens (labels from data-label). */
export function Table({ columns, rows, empty, caption, rowKey = (row) => row.id }) {
  if (!rows.length) return html`<p class="empty">${empty ?? t("common.empty")}</p>`;
  return html`<table class="table">
    ${caption ? html`<caption class="visually-hidden">${caption}</caption>` : null}
    <thead>
      <tr>
        ${columns.map((c) => html`<th scope="col">${c.label}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (row) => html`<tr key=${rowKey(row)}>
          ${columns.map(
            (c) => html`<td data-label=${c.label}>${c.render ? c.render(row) : row[c.key]}</td>`,
          )}
        </tr>`,
      )}
    </tbody>
  </table>`;
}

export function Urgency({ value }) {
  if (!value) return null;
  return html`<span class=${`urgency urgency-${value}`}>${t(`urgency.${value}`)}</span>`;
}

export function StateBadge({ state }) {
  if (!state) return null;
  return html`<span class=${`badge badge-${state}`}>${t(`state.${state}`)}</span>`;
}

export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat(lang() === "zh" ? "zh-CN" : "en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
  }).format(date);
}

// --- notices: one polite live region for the whole console -------------------------------

const noticeListeners = new Set();
let notices = [];
let noticeId = 0;

const MAX_NOTICES = 2; // on a phone more would cover the page

export function notify(message, { kind = "info", timeout = 5000 } = {}) {
  const id = (noticeId += 1);
  notices = [...notices, { id, message, kind }].slice(-MAX_NOTICES);
  noticeListeners.forEach((fn) => fn(notices));
  if (timeout) setTimeout(() => dismiss(id), timeout);
}

function dismiss(id) {
  notices = notices.filter((n) => n.id !== id);
  noticeListeners.forEach((fn) => fn(notices));
}

export function Notices() {
  const [list, setList] = useState(notices);
  useEffect(() => {
    noticeListeners.add(setList);
    return () => noticeListeners.delete(setList);
  }, []);
  return html`<div class="notices" aria-live="polite" aria-atomic="false">
    ${list.map((n) => html`<p key=${n.id} class=${`notice notice-${n.kind}`}>${n.message}</p>`)}
  </div>`;
}

/** Load data for a screen: `[value, error, reload]`, reloading when *deps* change. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ value: undefined, error: null });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let alive = true;
    setState((s) => ({ value: s.value, error: null }));
    load().then(
      (value) => alive && setState({ value, error: null }),
      (error) => alive && setState({ value: undefined, error }),
    );
    return () => {
      alive = false;
    };
  }, [...deps, round]);
  return [state.value, state.error, () => setRound((r) => r + 1)];
}

/**
 * A list endpoint read page by page, for a screen with a "load more" button: answers
 * `[items, failure, hasMore, load]`; `load()` reads the first page afresh, `load(true)`
 * appends the next one. *fetchPage(cursor)* answers one page (`cursor` null: the first).
 */
export function usePages(fetchPage) {
  const [state, setState] = useState({ items: null, cursor: null, failure: null });
  const current = useRef(state);
  current.current = state;
  const load = async (more = false) => {
    const { items, cursor } = current.current;
    try {
      const page = await fetchPage(more ? cursor : null);
      setState({ items: more && items ? [...items, ...page.items] : page.items, cursor: page.next_cursor, failure: null });
    } catch (error) {
      setState((s) => ({ ...s, failure: error }));
    }
  };
  return [state.items, state.failure, Boolean(state.cursor), load];
}

/**
 * One document of a list as a card: its title, a line of facts (the urgency, then
 * *children*) and the button *open* that leads to *href*; *idPrefix* keeps heading ids apart.
 */
export function DocumentCard({ doc, idPrefix, href, open, children }) {
  const headingId = `${idPrefix}-${doc.id}`;
  return html`<li class="panel card" data-document=${doc.id}>
    <article aria-labelledby=${headingId}>
      <h2 id=${headingId}>${doc.title}</h2>
      <p class="doc-line">
        <${Urgency} value=${doc.urgency} />
        ${children}
      </p>
      <a class="button button-primary" href=${href} aria-describedby=${headingId}>${open}</a>
    </article>
  </li>`;
}

/**
 * A list from usePages as cards: its failure, then loading, the *empty* text or one card per
 * item (*card(item)* answers its <li>), then "load more" while there is more.
 */
export function CardList({ items, failure, more, load, empty, card }) {
  return html`${failure ? html`<${ErrorNote} error=${failure} />` : null}
    ${items === null
      ? failure ? null : html`<${Loading} />`
      : items.length === 0
        ? html`<p class="empty">${empty}</p>`
        : html`<ul class="cards">
            ${items.map(card)}
          </ul>`}
    ${more ? html`<button type="button" class="button" onClick=${() => load(true)}>${t("common.more")}</button>` : null}`;
}

export function Loading() {
  return html`<p class="loading" role="status" aria-busy="true">${t("common.loading")}</p>`;
}
