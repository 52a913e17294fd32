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

/** A user-verified passkey assertion whose challenge is b64url(SHA-256(jws)). */
export async function passkeyAssertion(jws) {
  const credential = await navigator.credentials.get({
    publicKey: {
      challenge: await sha256(jws),
      rpId: location.hostname,
      userVerification: "required",
      allowCredentials: [],
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

/** Register a passkey for the logged-in official (WebAuthn create + POST /v1/passkeys). */
export async function registerPasskey(label) {
  const { publicKey } = await api.post("/v1/passkeys/registration-options", {});
  const credential = await navigator.credentials.create({ publicKey: creationOptions(publicKey) });
  if (!credential) throw new Error("no passkey was made");
  return api.post("/v1/passkeys", { credential: credentialJson(credential), label });
}
