// Department names for the codes the API answers with, fetched once per code.
import { html, useEffect, useState } from "./html.js";
import { api, listAll } from "./api.js";

const names = new Map();

function departmentName(code) {
  if (!code) return Promise.resolve("");
  if (!names.has(code)) {
    names.set(
      code,
      api.get(`/v1/departments/${encodeURIComponent(code)}`).then(
        (department) => department.name || code,
        () => {
          names.delete(code); // not now (a passkey set-up session, say): ask again later
          return code;
        },
      ),
    );
  }
  return names.get(code);
}

/** The department's name (its code until the name is known). */
export function useDepartmentName(code) {
  const [name, setName] = useState(code ?? "");
  useEffect(() => {
    let alive = true;
    setName(code ?? "");
    departmentName(code).then((found) => alive && setName(found));
    return () => {
      alive = false;
    };
  }, [code]);
  return name;
}

export function DepartmentName({ code }) {
  return useDepartmentName(code);
}

// Officials' names: the caller's own department is listed by GET /v1/officials; anyone
// else is shown by a short form of the id (the full id in the tooltip).
let ownOfficials = null;

function officialNames() {
  if (!ownOfficials) {
    ownOfficials = (async () => {
      try {
        return new Map((await listAll("/v1/officials")).map((item) => [item.id, item.name]));
      } catch {
        return new Map(); // no list for this caller: ids it is
      }
    })();
  }
  return ownOfficials;
}

/** Forget what was looked up (another official logged in). */
export function forgetDirectory() {
  ownOfficials = null;
}

/** An official's name; one of another department shows as that department and a short id. */
export function OfficialName({ id, name, department }) {
  const [shown, setShown] = useState(name || "");
  useEffect(() => {
    let alive = true;
    if (!name && id) officialNames().then((names) => alive && setShown(names.get(id) ?? ""));
    return () => {
      alive = false;
    };
  }, [id, name]);
  if (!id && !name) return "—";
  if (shown) return shown;
  return html`${department ? html`<${DepartmentName} code=${department} /> ` : null}<span title=${id}>${id.slice(0, 8)}</span>`;
}
