// The recipient picker of 发文 and 补发: the department tree (read one level at a time with
// GET /v1/departments?parent=), the distribution groups, and a search over both. Every
// choice is a button with aria-pressed, so the picker works with Tab, Enter and Space alone.
import { html, useState, useEffect } from "../core/html.js";
import { api, listAll } from "../core/api.js";
import { t, addMessages } from "../core/i18n.js";
import { Loading } from "../core/ui.js";

addMessages({
  zh: {
    "picker.search": "搜索单位或分发组",
    "picker.searchHint": "输入名称或代码，至少一个字",
    "picker.tree": "单位",
    "picker.groups": "分发组",
    "picker.results": "搜索结果",
    "picker.none": "没有找到",
    "picker.expand": "展开{name}",
    "picker.collapse": "收起{name}",
    "picker.main": "主送",
    "picker.copy": "抄送",
    "picker.addMain": "{name}：主送",
    "picker.addCopy": "{name}：抄送",
    "picker.remove": "移除{name}",
    "picker.chosenMain": "主送单位",
    "picker.chosenCopy": "抄送单位",
    "picker.nothingChosen": "尚未选择",
    "picker.group": "分发组",
  },
  en: {
    "picker.search": "Search units or groups",
    "picker.searchHint": "Type a name or code",
    "picker.tree": "Units",
    "picker.groups": "Distribution groups",
    "picker.results": "Search results",
    "picker.none": "Nothing found",
    "picker.expand": "Expand {name}",
    "picker.collapse": "Collapse {name}",
    "picker.main": "To",
    "picker.copy": "Cc",
    "picker.addMain": "{name}: to",
    "picker.addCopy": "{name}: cc",
    "picker.remove": "Remove {name}",
    "picker.chosenMain": "To",
    "picker.chosenCopy": "Cc",
    "picker.nothingChosen": "None chosen yet",
    "picker.group": "group",
  },
});

const names = new Map(); // code -> {code, name, group}: what the picker has seen so far

function remember(entry) {
  names.set(entry.code, entry);
  return entry;
}

/** The name of a department or group code, read once and kept for the page's life. */
export async function nameOf(code) {
  if (names.has(code)) return names.get(code).name;
  try {
    const unit = await api.get(`/v1/departments/${encodeURIComponent(code)}`);
    return remember({ code, name: unit.name, group: false }).name;
  } catch {
    try {
      const group = await api.get(`/v1/groups/${encodeURIComponent(code)}`);
      return remember({ code, name: group.name, group: true }).name;
    } catch {
      return code;
    }
  }
}

/** A hook: code -> display name for the given codes (the code itself until it is known). */
export function useNames(codes) {
  const key = codes.join(",");
  const [known, setKnown] = useState({});
  useEffect(() => {
    let live = true;
    Promise.all(codes.map(async (code) => [code, await nameOf(code)])).then((pairs) => {
      if (live) setKnown(Object.fromEntries(pairs));
    });
    return () => {
      live = false;
    };
  }, [key]);
  return (code) => known[code] || (names.get(code) && names.get(code).name) || code;
}

/** The top of the tree: the caller's department's topmost ancestor. */
async function rootOf(code) {
  let unit = await api.get(`/v1/departments/${encodeURIComponent(code)}`);
  for (let hops = 0; unit.parent && hops < 20; hops += 1) {
    unit = await api.get(`/v1/departments/${encodeURIComponent(unit.parent)}`);
  }
  return remember({ code: unit.code, name: unit.name, group: false });
}

function ChoiceButtons({ entry, chosen, onToggle }) {
  const inMain = chosen.recipients.includes(entry.code);
  const inCopy = chosen.cc.includes(entry.code);
  return html`<span class="picker-choice">
    <button
      type="button"
      class="button button-toggle"
      aria-pressed=${inMain ? "true" : "false"}
      aria-label=${t("picker.addMain", { name: entry.name })}
      onClick=${() => onToggle(entry, "recipients")}
    >
      ${t("picker.main")}
    </button>
    <button
      type="button"
      class="button button-toggle"
      aria-pressed=${inCopy ? "true" : "false"}
      aria-label=${t("picker.addCopy", { name: entry.name })}
      onClick=${() => onToggle(entry, "cc")}
    >
      ${t("picker.copy")}
    </button>
  </span>`;
}

function TreeNode({ unit, chosen, onToggle, excluded, level }) {
  const [open, setOpen] = useState(level === 0);
  const [children, setChildren] = useState(null);
  useEffect(() => {
    if (!open || children) return;
    listAll("/v1/departments", { parent: unit.code }).then(
      (items) => setChildren(items.map((u) => remember({ code: u.code, name: u.name, group: false }))),
      () => setChildren([]),
    );
  }, [open]);
  const label = open ? "picker.collapse" : "picker.expand";
  return html`<li class="picker-node">
    <div class="picker-row">
      <button
        type="button"
        class="button button-quiet picker-twisty"
        aria-expanded=${open ? "true" : "false"}
        aria-label=${t(label, { name: unit.name })}
        onClick=${() => setOpen(!open)}
      >
        ${open ? "▾" : "▸"}
      </button>
      <span class="picker-name">${unit.name}</span>
      ${excluded.includes(unit.code) ? null : html`<${ChoiceButtons} entry=${unit} chosen=${chosen} onToggle=${onToggle} />`}
    </div>
    ${open &&
    html`<ul class="picker-children">
      ${children === null
        ? html`<li><${Loading} /></li>`
        : children.map(
            (child) =>
              html`<${TreeNode}
                key=${child.code}
                unit=${child}
                chosen=${chosen}
                onToggle=${onToggle}
                excluded=${excluded}
                level=${level + 1}
              />`,
          )}
    </ul>`}
  </li>`;
}

function Chosen({ title, codes, field, onRemove }) {
  const label = (code) => (names.get(code) ? names.get(code).name : code);
  return html`<div class="picker-chosen">
    <p class="picker-title">${title}</p>
    ${codes.length === 0
      ? html`<p class="hint">${t("picker.nothingChosen")}</p>`
      : html`<ul class="chips">
          ${codes.map(
            (code) => html`<li key=${code} class="chip">
              <span>${label(code)}</span>
              <button
                type="button"
                class="button button-quiet chip-remove"
                aria-label=${t("picker.remove", { name: label(code) })}
                onClick=${() => onRemove(code, field)}
              >
                ×
              </button>
            </li>`,
          )}
        </ul>`}
  </div>`;
}

/**
 * value: {recipients: [codes], cc: [codes]}; onChange gets the next value. A code is in at
 * most one of the two lists (the server drops a cc that is also a recipient). `excluded`
 * codes (the sender's own department) can be seen in the tree but not chosen.
 */
export function RecipientPicker({ value, onChange, excluded = [], department, idBase = "picker" }) {
  const [root, setRoot] = useState(null);
  const [groups, setGroups] = useState([]);
  const [query, setQuery] = useState("");
  const [results, setResults] = useState(null);

  useEffect(() => {
    if (department) rootOf(department).then(setRoot, () => setRoot(null));
    listAll("/v1/groups").then(
      (items) => setGroups(items.map((g) => remember({ code: g.code, name: g.name, group: true }))),
      () => setGroups([]),
    );
  }, [department]);

  useEffect(() => {
    const text = query.trim();
    if (!text) {
      setResults(null);
      return undefined;
    }
    let live = true;
    const timer = setTimeout(async () => {
      const units = await api.get("/v1/departments", { q: text, limit: "50" }).catch(() => ({ items: [] }));
      const lower = text.toLowerCase();
      const found = [
        ...units.items.map((u) => remember({ code: u.code, name: u.name, group: false })),
        ...groups.filter((g) => g.name.includes(text) || g.code.toLowerCase().includes(lower)),
      ];
      if (live) setResults(found);
    }, 200);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [query, groups]);

  const toggle = (entry, field) => {
    const other = field === "recipients" ? "cc" : "recipients";
    const has = value[field].includes(entry.code);
    onChange({
      [field]: has ? value[field].filter((c) => c !== entry.code) : [...value[field], entry.code],
      [other]: value[other].filter((c) => c !== entry.code),
    });
  };
  const remove = (code, field) => onChange({ ...value, [field]: value[field].filter((c) => c !== code) });
  const searchId = `${idBase}-search`;

  const flatList = (entries) =>
    html`<ul class="picker-list">
      ${entries.map(
        (entry) => html`<li key=${entry.code} class="picker-row">
          <span class="picker-name">
            ${entry.name}${entry.group ? html` <span class="hint">(${t("picker.group")})</span>` : null}
          </span>
          ${excluded.includes(entry.code) ? null : html`<${ChoiceButtons} entry=${entry} chosen=${value} onToggle=${toggle} />`}
        </li>`,
      )}
    </ul>`;

  return html`<div class="picker">
    <div class="picker-selected">
      <${Chosen} title=${t("picker.chosenMain")} codes=${value.recipients} field="recipients" onRemove=${remove} />
      <${Chosen} title=${t("picker.chosenCopy")} codes=${value.cc} field="cc" onRemove=${remove} />
    </div>
    <label for=${searchId}>${t("picker.search")}</label>
    <input
      id=${searchId}
      type="search"
      autocomplete="off"
      aria-describedby=${`${searchId}-hint`}
      value=${query}
      onInput=${(e) => setQuery(e.currentTarget.value)}
    />
    <p id=${`${searchId}-hint`} class="hint">${t("picker.searchHint")}</p>
    ${results !== null
      ? html`<section aria-label=${t("picker.results")} aria-live="polite">
          <p class="picker-title">${t("picker.results")}</p>
          ${results.length ? flatList(results) : html`<p class="hint">${t("picker.none")}</p>`}
        </section>`
      : html`<div class="picker-browse">
          ${groups.length > 0 &&
          html`<section aria-label=${t("picker.groups")}>
            <p class="picker-title">${t("picker.groups")}</p>
            ${flatList(groups)}
          </section>`}
          <section aria-label=${t("picker.tree")}>
            <p class="picker-title">${t("picker.tree")}</p>
            ${root
              ? html`<ul class="picker-tree">
                  <${TreeNode} unit=${root} chosen=${value} onToggle=${toggle} excluded=${excluded} level=${0} />
                </ul>`
              : html`<${Loading} />`}
          </section>
        </div>`}
  </div>`;
}
