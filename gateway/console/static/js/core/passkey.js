// Passkeys (WebAuthn) as the second factor of console keys. Each assertion's challenge is
// bound to what it vouches for: the SHA-256 of the ASCII of the JWS being sent (the login
// assertion at login, the receipt, approval or seal JWS at a step-up), so a passkey
// assertion cannot be replayed for anything else.
import { api } from "./api.js";
import { b64url, b64urlDecode, sha256 } from "./jws.js";
import { session } from "./session.js";

function credentialJson(credential) {
  if (typeof credential.toJSON === "function") return credential.toJSON();
  const response = credential.response;
  const encoded = (buffer) => (buffer ? b64url(buffer) : undefined);
  return {
    id: credential.id,
    rawId: b64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment ?? undefined,
    clientExtensionResults: credential.getClientExtensionResults?.() ?? {},
    response: {
      clientDataJSON: encoded(response.clientDataJSON),
      attestationObject: encoded(response.attestationObject),
      authenticatorData: encoded(response.authenticatorData),
      signature: encoded(response.signature),
      userHandle: encoded(response.userHandle),
      transports: response.getTransports?.(),
    },
  };
}

/**
 * A user-verified passkey assertion whose challenge is b64url(SHA-256(jws)). *allow* lists
 * the passkeys that may answer (`{id, transports}`, ids base64url) when the official's own
 * are known, so the browser asks for one of them and not for any passkey of this site.
 */
export async function passkeyAssertion(jws, allow = []) {
  const credential = await navigator.credentials.get({
    publicKey: {
      challenge: await sha256(jws),
      rpId: location.hostname,
      userVerification: "required",
      allowCredentials: allow.map((c) => ({ type: "public-key", id: b64urlDecode(c.id), transports: c.transports })),
      timeout: 120_000,
    },
  });
  if (!credential) throw new Error("no passkey was used");
  return credentialJson(credential);
}

/** Does this session need a passkey for 签发, 用印 and 签收? (console keys with a passkey) */
async function stepUpNeeded() {
  if (session.passkey === "verified") return true;
  if (session.me?.device?.kind !== "browser") return false;
  try {
    const list = await api.get(`/v1/officials/${encodeURIComponent(session.me.id)}/passkeys`);
    return (list.items ?? []).some((item) => item.status === "active");
  } catch {
    return false;
  }
}

/** The step-up assertion for *jws*, or null when this session needs none. */
export async function stepUp(jws, { force = false } = {}) {
  if (!force && !(await stepUpNeeded())) return null;
  return passkeyAssertion(jws);
}

function creationOptions(json) {
  if (globalThis.PublicKeyCredential?.parseCreationOptionsFromJSON) {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: b64urlDecode(json.challenge),
    user: { ...json.user, id: b64urlDecode(json.user.id) },
    excludeCredentials: (json.excludeCredentials ?? []).map((c) => ({ ...c, id: b64urlDecode(c.id) })),
  };
}

/**
 * Register a passkey for the logged-in official (WebAuthn create + POST /v1/passkeys). When
 * the official already has passkeys older than this browser's key the server wants one of
 * them to confirm (403 `passkey_required`): the same registration is sent again with an
 * assertion whose challenge is b64url(SHA-256(ASCII of the registration challenge)). Only
 * then, since a key enrolled after the newest passkey (a recovery) needs none and may have
 * none at hand.
 */
export async function registerPasskey(label) {
  const { publicKey } = await api.post("/v1/passkeys/registration-options", {});
  const made = await navigator.credentials.create({ publicKey: creationOptions(publicKey) });
  if (!made) throw new Error("no passkey was made");
  const body = { credential: credentialJson(made), label };
  try {
    return await api.post("/v1/passkeys", body);
  } catch (error) {
    if (error?.code !== "passkey_required") throw error;
  }
  // The official's active passkeys are the options' excludeCredentials.
  const current = publicKey.excludeCredentials ?? [];
  return api.post("/v1/passkeys", { ...body, passkey: await passkeyAssertion(publicKey.challenge, current) });
}

/**
 * Remove one of *official*'s passkeys. The official itself, from a console key older than
 * its newest passkey, must confirm with a current passkey (403 `passkey_required`): then the
 * removal is sent again with an assertion over "remove-passkey:" + the passkey's id.
 */
export async function removePasskey(official, passkeyId) {
  const list = `/v1/officials/${encodeURIComponent(official)}/passkeys`;
  const path = `${list}/${encodeURIComponent(passkeyId)}`;
  try {
    return await api.del(path);
  } catch (error) {
    if (error?.code !== "passkey_required") throw error;
  }
  const current = ((await api.get(list)).items ?? [])
    .filter((item) => item.status === "active")
    .map((item) => ({ id: item.credential, transports: item.transports }));
  return api.del(path, { passkey: await passkeyAssertion(`remove-passkey:${passkeyId}`, current) });
}
