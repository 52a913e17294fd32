// Department names for the codes the API answers with, fetched once per code.
import { useEffect, useState } from "./html.js";
import { api } from "./api.js";

const names = new Map();

export function departmentName(code) {
  if (!code) return Promise.resolve("");
  if (!names.has(code)) {
    names.set(
      code,
      api.get(`/v1/departments/${encodeURIComponent(code)}`).then(
        (department) => department.name || code,
        () => code,
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
