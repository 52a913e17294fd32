// The one Trusted Types policy the CSP allows (`trusted-types sealhub-console`). It makes
// script URLs only, and only for files under the console's own asset base: the pdf.js
// worker is the one script the console starts by URL. No HTML policy exists on purpose.

/** The versioned asset base, e.g. https://host/console/assets/3f2a…/ (ends with "/"). */
const assetBase = new URL("../../", import.meta.url).href;

const policy = globalThis.trustedTypes
  ? globalThis.trustedTypes.createPolicy("sealhub-console", {
      createScriptURL(url) {
        const resolved = new URL(url, assetBase);
        if (resolved.origin !== location.origin || !resolved.href.startsWith(assetBase)) {
          throw new TypeError("only the console's own assets may be loaded as scripts");
        }
        return resolved.href;
      },
    })
  : null;

/** A script URL for a file under the asset base (a TrustedScriptURL where supported). */
export function scriptURL(path) {
  const href = new URL(path, assetBase).href;
  return policy ? policy.createScriptURL(href) : href;
}
