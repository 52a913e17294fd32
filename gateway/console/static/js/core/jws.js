// Compact ES256 JWS made with WebCrypto, byte for byte the form the Python SDK writes
// (clients/python_sdk/sealhub_sdk/_internal/jose.py): header members in the order alg,
// typ, then kid or jwk; compact JSON; payload UTF-8 with Chinese text unescaped; unpadded
// base64url; the signature is the raw 64-byte r‖s that WebCrypto's ECDSA returns.
import { currentIdentity } from "./keys.js";

const encoder = new TextEncoder();

export function b64url(bytes) {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let binary = "";
  for (const byte of view) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function b64urlDecode(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export async function sha256(data) {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export async function sha256Hex(data) {
  return Array.from(await sha256(data), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** 18 random bytes, base64url: the SDK's `secrets.token_urlsafe(18)`. */
export function newJti() {
  return b64url(crypto.getRandomValues(new Uint8Array(18)));
}

export function now() {
  return Math.floor(Date.now() / 1000);
}

/** The minimal public JWK (the members RFC 7638 hashes, in their sorted order). */
export function minimalJwk(jwk) {
  return { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
}

/** RFC 7638 thumbprint: the gateway's `kid` for the key. */
export async function thumbprint(jwk) {
  return b64url(await sha256(JSON.stringify(minimalJwk(jwk))));
}

/** Sign *claims* with *privateKey* under *header* (whose member order is kept). */
export async function signWith(privateKey, header, claims) {
  const signingInput =
    b64url(encoder.encode(JSON.stringify(header))) +
    "." +
    b64url(encoder.encode(JSON.stringify(claims)));
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    privateKey,
    encoder.encode(signingInput),
  );
  return signingInput + "." + b64url(signature);
}

/** A JWS of *typ* over *payload* plus `iat` and `jti`, signed by the session's key. */
export async function signJws(typ, payload) {
  const identity = await currentIdentity();
  if (!identity) throw new Error("no enrolled key in this browser");
  const header = { alg: "ES256", typ, kid: identity.kid };
  return signWith(identity.privateKey, header, { ...payload, iat: now(), jti: newJti() });
}
