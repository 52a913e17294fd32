// Hash routes (#/inbox?state=pending): the server only ever sees /console/, so document
// ids and enrollment links in the fragment never reach a server log.
import { useEffect, useState } from "./html.js";

export function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = hash.split("?");
  return { path: path || "/", params: {}, query: Object.fromEntries(new URLSearchParams(search)) };
}

export function navigate(hash) {
  if (location.hash === hash) {
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    location.hash = hash;
  }
}

/** Match "#/documents/:id" patterns against a path; answers the params or null. */
export function match(pattern, path) {
  const want = pattern.replace(/^#/, "").split("/");
  const have = path.split("/");
  if (want.length !== have.length) return null;
  const params = {};
  for (let i = 0; i < want.length; i += 1) {
    if (want[i].startsWith(":")) params[want[i].slice(1)] = decodeURIComponent(have[i]);
    else if (want[i] !== have[i]) return null;
  }
  return params;
}

export function useRoute() {
  const [current, setCurrent] = useState(route);
  useEffect(() => {
    const changed = () => setCurrent(route());
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return current;
}
