// The gateway's HTTP API as the console calls it: every request carries a fresh DPoP proof
// signed by the browser's key (htu = public origin + path, no query) and the access token,
// kept in memory only. A 401 `use_dpop_nonce` is retried once with the server's nonce, a
// 401 `invalid_token` once after refreshing the token; the rotated refresh token lives in
// IndexedDB. When the session cannot be renewed (key revoked, official disabled) the
// handler set with `onSessionLost` is told, and the caller gets the error.
import { currentIdentity } from "./keys.js";
import { b64url, newJti, now, sha256, signWith } from "./jws.js";
import { idb } from "./store.js";

const TOKEN_PATH = "/v1/auth/token";
const REFRESH_MARGIN_MS = 30_000;

export class ApiError extends Error {
  constructor(status, problem = {}) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || (status === 0 ? "network_error" : "http_error");
    this.title = problem.title || "";
    this.detail = problem.detail || "";
    this.problem = problem;
  }
}

function publicOrigin() {
  const meta = document.querySelector('meta[name="sealhub-origin"]')?.content ?? "";
  return /^https?:\/\//.test(meta) ? meta.replace(/\/$/, "") : location.origin;
}

export const origin = publicOrigin();

const state = { access: null, expiresAt: 0, margin: 0, nonce: null, refreshing: null, lost: null };

/** *fn(error)* is called once a session cannot be renewed any more. */
export function onSessionLost(fn) {
  state.lost = fn;
}

export function hasAccessToken() {
  return state.access !== null;
}

export async function clearTokens() {
  state.access = null;
  state.expiresAt = 0;
  await idb.delete("tokens", "refresh");
}

async function dpopProof(method, path, accessToken) {
  const identity = await currentIdentity();
  if (!identity) return null;
  const claims = { htm: method, htu: origin + path, iat: now(), jti: newJti() };
  if (accessToken) claims.ath = b64url(await sha256(accessToken));
  if (state.nonce) claims.nonce = state.nonce;
  const header = { alg: "ES256", typ: "dpop+jwt", jwk: identity.publicJwk };
  return signWith(identity.privateKey, header, claims);
}

function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== undefined && one !== null && one !== "") params.append(name, String(one));
    }
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return {};
  }
}

/** One HTTP exchange with the nonce and token retries; answers the Response when ok. */
async function send(method, path, options = {}) {
  const { query, body, headers = {}, auth = true, signal } = options;
  let nonceRetried = false;
  let refreshed = false;
  for (;;) {
    if (auth && path !== TOKEN_PATH) await freshToken();
    const token = auth && path !== TOKEN_PATH ? state.access : null;
    const all = { Accept: "application/json", ...headers };
    const proof = token || path === TOKEN_PATH ? await dpopProof(method, path, token) : null;
    if (proof) all.DPoP = proof;
    if (token) all.Authorization = `DPoP ${token}`;
    let response;
    try {
      response = await fetch(withQuery(path, query), {
        method,
        headers: all,
        body: typeof body === "function" ? body() : body,
        signal,
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new ApiError(0, { detail: String(error?.message ?? error) });
    }
    const nonce = response.headers.get("DPoP-Nonce");
    const nonceChanged = Boolean(nonce) && nonce !== state.nonce;
    if (nonce) state.nonce = nonce;
    if (response.ok) return response;
    const problem = await problemOf(response);
    if (problem.code === "use_dpop_nonce" && nonceChanged && !nonceRetried) {
      nonceRetried = true;
      continue;
    }
    if (response.status === 401 && problem.code === "invalid_token" && token && !refreshed) {
      refreshed = true;
      await refresh();
      continue;
    }
    throw new ApiError(response.status, problem);
  }
}

async function storeTokens(answer) {
  const lifetime = (answer.expires_in ?? 900) * 1000;
  state.access = answer.access_token;
  state.expiresAt = Date.now() + lifetime;
  state.margin = Math.min(REFRESH_MARGIN_MS, lifetime / 3); // short-lived tokens too
  if (answer.refresh_token) await idb.put("tokens", "refresh", answer.refresh_token);
}

/** POST the token endpoint with *form* (a login or refresh grant) and keep the tokens. */
export async function tokenRequest(form) {
  const response = await send("POST", TOKEN_PATH, {
    auth: false,
    body: new URLSearchParams(form),
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
  const answer = await response.json();
  await storeTokens(answer);
  return answer;
}

/** Renew the access token with the stored refresh token (one refresh at a time). */
export function refresh() {
  if (!state.refreshing) {
    state.refreshing = (async () => {
      const refreshToken = await idb.get("tokens", "refresh");
      if (!refreshToken) throw new ApiError(401, { code: "invalid_token", detail: "no session" });
      try {
        return await tokenRequest({ grant_type: "refresh_token", refresh_token: refreshToken });
      } catch (error) {
        if (error.status === 400 || error.status === 401 || error.status === 403) {
          await clearTokens();
          state.lost?.(error);
        }
        throw error;
      }
    })().finally(() => {
      state.refreshing = null;
    });
  }
  return state.refreshing;
}

async function freshToken() {
  if (state.refreshing) await state.refreshing;
  if (state.access && Date.now() > state.expiresAt - state.margin) await refresh();
}

async function json(response) {
  return response.status === 204 ? null : response.json();
}

const jsonHeaders = (extra = {}) => ({ "Content-Type": "application/json", ...extra });

/** Split a text/event-stream body into messages `{id, event, data}`. */
async function readEvents(body, onMessage) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let message = { id: null, event: "message", data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.search(/\r?\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer[newline] === "\r" ? 2 : 1));
      if (line === "") {
        if (message.data.length || message.event !== "message") {
          onMessage({ ...message, data: message.data.join("\n") });
        }
        message = { id: null, event: "message", data: [] };
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") message.data.push(value);
        else if (field === "event") message.event = value;
        else if (field === "id") message.id = value;
      }
    }
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

const LIST_PAGE = 200;
const LIST_MAX_PAGES = 10;

/** Every item of a list endpoint (a few pages at most: these are working lists). */
export async function listAll(path, query = {}) {
  const items = [];
  let cursor;
  for (let page = 0; page < LIST_MAX_PAGES; page += 1) {
    const answer = await api.get(path, { ...query, limit: LIST_PAGE, cursor });
    items.push(...answer.items);
    if (!answer.next_cursor || answer.items.length < LIST_PAGE) break;
    cursor = answer.next_cursor;
  }
  return items;
}

export const api = {
  async get(path, query) {
    return json(await send("GET", path, { query }));
  },
  async post(path, body, { idempotencyKey } = {}) {
    const headers = jsonHeaders(idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {});
    return json(await send("POST", path, { body: JSON.stringify(body ?? {}), headers }));
  },
  async put(path, body) {
    return json(await send("PUT", path, { body: JSON.stringify(body ?? {}), headers: jsonHeaders() }));
  },
  /** DELETE, with a JSON body when given (a passkey step-up confirming the removal). */
  async del(path, body) {
    if (body === undefined) return json(await send("DELETE", path));
    return json(await send("DELETE", path, { body: JSON.stringify(body), headers: jsonHeaders() }));
  },
  /** POST raw bytes (a PDF to /v1/verify) and read the JSON answer. */
  async postBytes(path, bytes, contentType = "application/pdf") {
    return json(await send("POST", path, { body: bytes, headers: { "Content-Type": contentType } }));
  },
  async bytes(path) {
    const response = await send("GET", path, { headers: { Accept: "*/*" } });
    return response.arrayBuffer();
  },

  /** multipart upload with progress: XMLHttpRequest, since fetch reports no upload progress. */
  async upload(path, formData, onProgress) {
    const attempt = async () => {
      await freshToken();
      const proof = await dpopProof("POST", path, state.access);
      return new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open("POST", path);
        xhr.setRequestHeader("Accept", "application/json");
        xhr.setRequestHeader("Authorization", `DPoP ${state.access}`);
        xhr.setRequestHeader("DPoP", proof);
        xhr.upload.onprogress = (event) => {
          if (event.lengthComputable) onProgress?.(event.loaded / event.total);
        };
        xhr.onload = () => {
          const nonce = xhr.getResponseHeader("DPoP-Nonce");
          if (nonce) state.nonce = nonce;
          let answer = {};
          try {
            answer = JSON.parse(xhr.responseText || "{}");
          } catch {
            answer = {};
          }
          if (xhr.status >= 200 && xhr.status < 300) resolve(answer);
          else reject(new ApiError(xhr.status, answer));
        };
        xhr.onerror = () => reject(new ApiError(0, { detail: "network error" }));
        xhr.send(formData);
      });
    };
    try {
      return await attempt();
    } catch (error) {
      if (error.code === "use_dpop_nonce") return attempt();
      if (error.code === "invalid_token") {
        await refresh();
        return attempt();
      }
      throw error;
    }
  },

  /**
   * Read a text/event-stream with DPoP (EventSource cannot send it) until *signal* aborts.
   * On `event: end` the token is refreshed and the stream reopened after the last id; an
   * end saying the key was revoked, or a refused refresh, ends the session at once. A
   * reopened stream that had no id yet may have missed something: `{event: "reconnect"}`
   * tells the caller to read its lists again.
   */
  async events(path, { cursor, onEvent, signal } = {}) {
    let last = cursor ?? null;
    let failures = 0;
    let opened = false;
    while (!signal?.aborted) {
      let ended = null;
      try {
        const resumed = last;
        const response = await send("GET", path, {
          query: resumed ? { cursor: resumed } : undefined,
          headers: { Accept: "text/event-stream" },
          signal,
        });
        failures = 0;
        if (opened && !resumed) onEvent?.({ id: null, event: "reconnect", data: null });
        opened = true;
        await readEvents(response.body, (message) => {
          if (message.id) last = message.id;
          if (message.event === "end") {
            ended = message.data ? JSON.parse(message.data) : {};
          } else {
            let data = message.data;
            try {
              data = JSON.parse(message.data);
            } catch {
              // not JSON: handed over as text
            }
            onEvent?.({ id: message.id, event: message.event, data });
          }
        });
      } catch (error) {
        if (signal?.aborted) return;
        if (error instanceof ApiError && error.status !== 0 && error.status < 500) {
          if (error.status === 401) state.lost?.(error);
          throw error;
        }
        failures += 1;
      }
      if (signal?.aborted) return;
      if (ended && /revoked|disabled|moved/i.test(ended.reason ?? "")) {
        await clearTokens();
        state.lost?.(new ApiError(401, { code: "session_ended", detail: ended.reason }));
        return;
      }
      if (ended) {
        try {
          // The stream ends with the token it was opened with; the console may have renewed
          // it meanwhile. A refused refresh has ended the session: nothing to reopen.
          if (Date.now() > state.expiresAt - state.margin) await refresh();
        } catch (error) {
          if (error.status !== 0) throw error;
          await sleep(2000, signal);
        }
      } else {
        await sleep(Math.min(1000 * 2 ** failures, 15_000), signal);
      }
    }
  },
};
