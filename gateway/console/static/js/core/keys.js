// The browser's enrolled key: a non-extractable ECDSA P-256 key pair made by WebCrypto and
// kept in IndexedDB (`sealhub` / `identity`, one record). The private key never leaves the
// browser's key store; only the public JWK is ever read out of it.
import { idb } from "./store.js";
import { thumbprint, minimalJwk } from "./jws.js";

const RECORD = "current";
let cached;

export async function currentIdentity() {
  if (cached === undefined) cached = (await idb.get("identity", RECORD)) ?? null;
  return cached;
}

/** A new key pair for *official* (not stored until the gateway accepted it). */
export async function newIdentity(official, label) {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
    "verify",
  ]);
  const publicJwk = minimalJwk(await crypto.subtle.exportKey("jwk", pair.publicKey));
  return {
    official,
    kid: await thumbprint(publicJwk),
    privateKey: pair.privateKey,
    publicJwk,
    label,
    enrolled_at: null,
  };
}

export async function saveIdentity(identity) {
  await idb.put("identity", RECORD, identity);
  cached = identity;
}

export async function forgetIdentity() {
  await idb.delete("identity", RECORD);
  cached = null;
}

/** "Chromium, Linux": what the official will see in its device list. */
export function deviceLabel() {
  const brands = navigator.userAgentData?.brands ?? [];
  const brand = brands.find((b) => !/Not.?A.?Brand|Chromium/i.test(b.brand)) ?? brands[0];
  const browser = brand?.brand ?? (/Firefox\//.test(navigator.userAgent) ? "Firefox" : "Browser");
  const platform = navigator.userAgentData?.platform || navigator.platform || "";
  return platform ? `${browser}, ${platform}` : browser;
}
