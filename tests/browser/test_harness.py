"""The browser harness itself: TLS trust, secure context, WebCrypto signatures that python-jose
verifies, the virtual passkey authenticator, screenshots, axe-core and the problem watcher."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from jose.exceptions import JWSError
from playwright.sync_api import BrowserContext, Page
from webauthn import verify_registration_response

from tests.browser.harness import (
    NARROW,
    WIDE,
    PageProblems,
    add_virtual_authenticator,
    authenticator_credentials,
    axe,
    screenshot,
    stored_identities,
    verify_es256,
)
from tests.conftest import Gateway

# Builds and signs a compact JWS the way the console will: a non-extractable P-256 key,
# ECDSA with SHA-256, whose signature WebCrypto already returns as raw r‖s (the JWS form).
SIGN_IN_PAGE = """
async (payload) => {
  const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  const text = (value) => b64url(new TextEncoder().encode(JSON.stringify(value)));
  const keys = await crypto.subtle.generateKey(
    {name: "ECDSA", namedCurve: "P-256"}, false, ["sign", "verify"]);
  const jwk = await crypto.subtle.exportKey("jwk", keys.publicKey);
  let exported = "refused";
  try { await crypto.subtle.exportKey("jwk", keys.privateKey); exported = "exported"; }
  catch (error) { exported = error.name; }
  const input = text({alg: "ES256", typ: "sealhub-test+jwt"}) + "." + text(payload);
  const signature = await crypto.subtle.sign(
    {name: "ECDSA", hash: "SHA-256"}, keys.privateKey, new TextEncoder().encode(input));
  await new Promise((resolve, reject) => {  // kept as the console keeps it (CONSOLE.md)
    const opening = indexedDB.open("sealhub", 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore("identity", {keyPath: "kid"});
    opening.onerror = () => reject(opening.error);
    opening.onsuccess = () => {
      const tx = opening.result.transaction("identity", "readwrite");
      tx.objectStore("identity").put({official: payload.official, kid: "k1",
        privateKey: keys.privateKey, publicJwk: jwk, label: "test", enrolled_at: "now"});
      tx.oncomplete = () => { opening.result.close(); resolve(); };
      tx.onerror = () => reject(tx.error);
    };
  });
  return {jws: input + "." + b64url(signature), jwk: {kty: jwk.kty, crv: jwk.crv, x: jwk.x,
          y: jwk.y}, extractable: keys.privateKey.extractable, exported,
          signatureBytes: signature.byteLength};
}
"""

CREATE_PASSKEY = """
async (challenge) => {
  const bytes = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")),
                                        (c) => c.charCodeAt(0));
  const credential = await navigator.credentials.create({publicKey: {
    challenge: bytes(challenge),
    rp: {id: location.hostname, name: "sealhub"},
    user: {id: new TextEncoder().encode("official-1"), name: "official-1",
           displayName: "测试官员"},
    pubKeyCredParams: [{type: "public-key", alg: -7}],
    authenticatorSelection: {residentKey: "required", userVerification: "required"},
    timeout: 10000,
  }});
  return credential.toJSON();
}
"""


@pytest.fixture(autouse=True)
def _healthz_has_no_icon(page_problems: PageProblems) -> None:
    """Chromium asks for ``/favicon.ico``, which the JSON service routes do not have."""
    page_problems.allow(r"status of 404 .*\[https://localhost:\d+/favicon\.ico\]$")


def data_page(html: str) -> str:
    return "data:text/html;charset=utf-8," + quote(html)


def test_gateway_page_loads_over_trusted_tls_in_a_secure_context(
    page: Page, gateway: Gateway
) -> None:
    assert gateway.base_url.startswith("https://localhost:")
    response = page.goto(gateway.base_url + "/healthz")
    assert response is not None and response.ok, response and response.status
    details = response.security_details()
    assert details is not None and (details.get("protocol") or "").startswith("TLS")
    assert details.get("subjectName") == "localhost"
    assert page.evaluate("() => window.isSecureContext") is True
    assert page.evaluate("() => location.origin") == gateway.base_url


def test_webcrypto_signature_verifies_with_python_jose(page: Page, gateway: Gateway) -> None:
    page.goto(gateway.base_url + "/healthz")
    payload = {"official": "o-1", "jti": "b8d1", "iat": 1_765_000_000}
    made: dict[str, Any] = page.evaluate(SIGN_IN_PAGE, payload)
    assert made["extractable"] is False
    assert made["exported"] == "InvalidAccessError"
    assert made["signatureBytes"] == 64
    assert verify_es256(made["jws"], made["jwk"]) == payload
    [stored] = stored_identities(page)
    assert (stored["official"], stored["extractable"]) == ("o-1", False)
    assert verify_es256(made["jws"], stored["publicJwk"]) == payload
    # The check can fail: a signature over something else does not verify.
    head, _body, signature = made["jws"].split(".")
    forged = base64.urlsafe_b64encode(json.dumps({"official": "o-2"}).encode()).rstrip(b"=")
    with pytest.raises(JWSError):
        verify_es256(f"{head}.{forged.decode()}.{signature}", made["jwk"])


def test_virtual_authenticator_creates_a_user_verified_passkey(
    page: Page, gateway: Gateway
) -> None:
    page.goto(gateway.base_url + "/healthz")
    authenticator = add_virtual_authenticator(page)
    challenge = base64.urlsafe_b64encode(b"harness-challenge-0123456789abcd").rstrip(b"=").decode()
    credential = page.evaluate(CREATE_PASSKEY, challenge)
    verified = verify_registration_response(
        credential=credential,
        expected_challenge=base64.urlsafe_b64decode(challenge + "=="),
        expected_origin=gateway.base_url,
        expected_rp_id="localhost",
        require_user_verification=True,
    )
    assert verified.user_verified is True
    held = authenticator_credentials(page, authenticator)
    assert [c["rpId"] for c in held] == ["localhost"]
    assert held[0]["isResidentCredential"] is True


@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_screenshot_is_written_at_the_viewport_width(
    new_context: Callable[..., BrowserContext], gateway: Gateway, width: int
) -> None:
    page = new_context(width).new_page()
    page.goto(gateway.base_url + "/healthz")
    path = screenshot(page, "harness-healthz")
    assert path.name == f"harness-healthz-{width}.png"
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">I", png[16:20])[0] == width


def test_axe_reports_serious_violations_and_passes_a_clean_page(page: Page) -> None:
    page.goto(
        data_page(
            '<!doctype html><html lang="en"><head><title>bad</title></head>'
            '<body><main><h1>Form</h1><input type="text"></main></body></html>'
        )
    )
    found = axe(page)
    assert "label" in {violation["id"] for violation in found}, found
    assert all(violation["impact"] in ("serious", "critical") for violation in found)
    page.goto(
        data_page(
            '<!doctype html><html lang="en"><head><title>good</title></head>'
            '<body><main><h1>Form</h1><label for="n">Name</label><input id="n" type="text">'
            "</main></body></html>"
        )
    )
    assert axe(page) == []


def test_axe_runs_under_the_console_csp_without_violating_it(
    page: Page, page_problems: PageProblems
) -> None:
    csp = (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "require-trusted-types-for 'script'; trusted-types sealhub-console"
    )
    page.goto(
        data_page(
            f'<!doctype html><html lang="zh"><head><meta http-equiv="Content-Security-Policy" '
            f'content="{csp}"><title>工作台</title></head><body><main><h1>工作台</h1>'
            "</main></body></html>"
        )
    )
    assert axe(page) == []
    assert page_problems.take() == []
    # The policy is in force there: an HTML string is refused, and the watcher sees it.
    refused = page.evaluate(
        "() => { try { document.body.innerHTML = '<b>x</b>'; return 'assigned'; }"
        " catch (error) { return error.name; } }"
    )
    assert refused == "TypeError"
    page.wait_for_timeout(200)  # the violation event is dispatched after the refusal
    assert any("require-trusted-types-for" in text for text in page_problems.take())


def test_watcher_catches_csp_violations_and_uncaught_errors(
    page: Page, page_problems: PageProblems
) -> None:
    page.goto(
        data_page(
            '<!doctype html><html><head><meta http-equiv="Content-Security-Policy" '
            "content=\"script-src 'none'\"><title>t</title></head>"
            "<body><script>document.title = 'ran'</script></body></html>"
        )
    )
    page.evaluate("() => { setTimeout(() => { throw new Error('boom in page'); }); }")
    page.wait_for_timeout(200)
    seen = page_problems.take()
    assert page.title() == "t"
    assert any("CSP violation: script-src" in text for text in seen), seen
    assert any("boom in page" in text for text in seen), seen
