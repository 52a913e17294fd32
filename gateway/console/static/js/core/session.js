// Who is logged in. Logging in is the SDK's key login done by WebCrypto: a challenge
// nonce, an RFC 7523 assertion signed by the enrolled key, the token request with DPoP,
// and a passkey assertion bound to that assertion when the gateway asks for one.
import { api, ApiError, clearTokens, hasAccessToken, onSessionLost, origin, refresh, tokenRequest } from "./api.js";
import { forgetDirectory } from "./directory.js";
import { currentIdentity, forgetIdentity } from "./keys.js";
import { newJti, now, signWith } from "./jws.js";
import { passkeyAssertion } from "./passkey.js";
import { idb } from "./store.js";

const TOKEN_URL = `${origin}/v1/auth/token`;
const ASSERTION_LIFETIME = 120;
const listeners = new Set();

export const session = {
  me: null,
  /** "verified" | "setup_required" | "not_required" from the token answer. */
  passkey: null,
  /** `{reason, revoked}` when the console ended the session itself (for the login page). */
  ended: null,

  subscribe(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },

  hasRole(...roles) {
    return Boolean(this.me) && roles.some((role) => this.me.roles.includes(role));
  },

  /** Key login; `{passkey: true}` adds a passkey assertion straight away. */
  async login({ passkey = false } = {}) {
    const identity = await currentIdentity();
    if (!identity) throw new ApiError(401, { code: "not_enrolled", detail: "no key in this browser" });
    let answer;
    try {
      answer = await tokenRequest(await loginForm(identity, passkey));
    } catch (error) {
      if (passkey || error.code !== "passkey_required") throw error;
      answer = await tokenRequest(await loginForm(identity, true));
    }
    this.passkey = answer.passkey ?? null;
    this.ended = null;
    await this.load();
    return answer;
  },

  /** A session survives a reload through the refresh token kept in IndexedDB. */
  async resume() {
    if (!(await currentIdentity()) || !(await idb.get("tokens", "refresh"))) return false;
    try {
      const answer = await refresh();
      this.passkey = answer.passkey ?? this.passkey;
      await this.load();
      return true;
    } catch {
      return false;
    }
  },

  async load() {
    const me = await api.get("/v1/me");
    if (me.passkey) this.passkey = me.passkey;
    this.me = me;
    emit();
  },

  /** End the session here; *reason* is shown on the login page. A revoked key is forgotten. */
  async logout({ reason = null, revoked = false } = {}) {
    await clearTokens();
    if (revoked) await forgetIdentity();
    this.me = null;
    this.passkey = null;
    this.ended = reason || revoked ? { reason, revoked } : null;
    forgetDirectory();
    emit();
  },
};

function emit() {
  for (const fn of listeners) fn(session);
}

async function loginForm(identity, withPasskey) {
  const { nonce } = await api.post("/v1/auth/challenge", { subject: identity.official });
  const issued = now();
  const claims = {
    iss: identity.official,
    sub: identity.official,
    aud: TOKEN_URL,
    nonce,
    iat: issued,
    exp: issued + ASSERTION_LIFETIME,
    jti: newJti(),
  };
  const assertion = await signWith(identity.privateKey, { alg: "ES256", typ: "JWT", kid: identity.kid }, claims);
  const form = { grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion };
  if (withPasskey) form.passkey = JSON.stringify(await passkeyAssertion(assertion));
  return form;
}

// A session the gateway no longer renews (key revoked, official disabled or moved) ends
// at once, wherever the console noticed it.
onSessionLost(async (error) => {
  if (!session.me && !hasAccessToken()) return;
  const revoked = /revoked/i.test(error.detail ?? "") || error.code === "key_revoked";
  await session.logout({ reason: error.detail || error.code, revoked });
});
