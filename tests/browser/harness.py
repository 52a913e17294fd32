"""The real-browser harness: Debian's Chromium driven by Playwright against a real gateway.

Why each piece is the way it is:

- The gateway serves HTTPS with ``SEALHUB_PUBLIC_URL=https://localhost:<port>``: WebCrypto and
  WebAuthn need a secure context, and the WebAuthn RP id is the page's host name.
- Chromium trusts the platform CA through an NSS database under a temporary ``HOME`` (Linux
  Chromium reads ``$HOME/.pki/nssdb``); nothing ignores certificate errors. Chromium reads that
  database on each verification, so one browser per test session trusts every module's gateway
  once its CA is added.
- Tests use Playwright's sync API. It keeps an event loop running on the main thread, so code
  that calls ``asyncio.run`` (the database helpers of ``tests/conftest.py``) runs in a worker
  thread through :func:`off_loop`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from jose import jws as jose_jws
from jose.exceptions import JWSError
from playwright.sync_api import (
    Browser,
    BrowserContext,
    CDPSession,
    ConsoleMessage,
    Page,
    Request,
)

from gateway.console.links import CONSOLE_PATH, enrollment_link
from tests.conftest import (
    REPO,
    Gateway,
    Session,
    create_official_in_db,
    free_port,
    new_session,
    start_gateway,
)

CHROMIUM = Path("/usr/bin/chromium")
VENDOR = Path(__file__).resolve().parent / "vendor"
SCREENS = REPO / "test-artifacts" / "screens"
WIDE, NARROW = 1280, 375
VIEWPORTS = {WIDE: {"width": 1280, "height": 800}, NARROW: {"width": 375, "height": 740}}
PLATFORM = "yl"  # the demo directory's root unit, where platform admins live

T = TypeVar("T")


def off_loop(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run *function* in a worker thread: Playwright's sync API keeps a loop running here."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args, **kwargs).result()


# --- Chromium and the platform CA -----------------------------------------------------------


def new_browser_home(home: Path) -> Path:
    """A ``HOME`` for Chromium with an empty NSS database (``$HOME/.pki/nssdb``)."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(
        ["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"],
        check=True,
        capture_output=True,
    )
    return home


def trust_ca(home: Path, ca_pem: Path, nickname: str) -> None:
    """Trust *ca_pem* for TLS servers in the browser's NSS database (``C,,``: SSL CA only)."""
    subprocess.run(
        [
            "certutil",
            "-A",
            "-d",
            f"sql:{home / '.pki' / 'nssdb'}",
            "-n",
            nickname,
            "-t",
            "C,,",
            "-i",
            str(ca_pem),
        ],
        check=True,
        capture_output=True,
    )


def launch_args() -> list[str]:
    """Chromium refuses to run as root with its sandbox; containers here run as root."""
    return ["--no-sandbox"] if os.geteuid() == 0 else []


def start_browser_gateway(
    database_url: str, data_dir: Path, home: Path, env: dict[str, str] | None = None
) -> Gateway:
    """A demo gateway whose public URL is ``https://localhost:<port>``, its CA trusted by the
    browser living in *home*. ``base_url`` is that public URL (DPoP ``htu``, token ``aud``).
    *env* adds settings (``SEALHUB_DPOP_NONCE=required``, say)."""
    port = free_port()
    public = f"https://localhost:{port}"
    settings = {**(env or {}), "SEALHUB_PUBLIC_URL": public}
    gateway = start_gateway(database_url, data_dir, env=settings, port=port)
    gateway.base_url = public
    trust_ca(home, gateway.ca_path, f"sealhub-{port}")
    return gateway


# --- pages: console errors and CSP violations ------------------------------------------------

# Chromium reports a CSP or Trusted Types refusal as a console error too; this event listener
# makes the report explicit and carries the directive, whatever the page does with errors.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error("CSP violation: " + event.effectiveDirective + " blocked " +
    (event.blockedURI || "inline") + " at " + event.sourceFile + ":" + event.lineNumber);
}, true);
"""


@dataclass
class PageProblems:
    """Console errors, uncaught exceptions and CSP violations of every page of the contexts
    made by ``new_context``; the fixture asserts at teardown that none is left.

    A test that provokes an error on purpose (a 401 the console handles, say) calls
    :meth:`allow` with a pattern of the expected message; CSP violations are never allowed.
    """

    messages: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def watch(self, page: Page) -> None:
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self._add(f"{page.url[:200]}: uncaught {error}"))

    def _console(self, page: Page, message: ConsoleMessage) -> None:
        if message.type == "error":
            source = message.location.get("url") or ""
            where = f" [{source[:200]}]" if source and source != page.url else ""
            self._add(f"{page.url[:200]}: {message.text}{where}")

    def _add(self, text: str) -> None:
        with self.lock:
            self.messages.append(text)

    def take(self) -> list[str]:
        """The problems seen so far (and forget them): for tests about the watcher itself."""
        with self.lock:
            taken, self.messages = self.messages, []
        return taken

    def unexpected(self) -> list[str]:
        return [
            text
            for text in self.messages
            if "CSP violation" in text or not any(p.search(text) for p in self.allowed)
        ]


def open_context(
    browser: Browser, gateway: Gateway, problems: PageProblems, width: int = WIDE
) -> BrowserContext:
    """A fresh context (own IndexedDB: one official's browser) at 1280×800 or 375×740."""
    if width not in VIEWPORTS:
        raise ValueError(f"width must be {WIDE} or {NARROW}")
    context = browser.new_context(
        viewport=VIEWPORTS[width],  # type: ignore[arg-type]
        base_url=gateway.base_url,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    context.set_default_timeout(15_000)
    context.add_init_script(_CSP_LISTENER)
    context.on("page", problems.watch)
    _TRAFFIC[id(context)] = (context, Traffic(context))
    return context


# The console's live inbox stream stays open as long as the page: never "in flight".
LONG_LIVED = re.compile(r"/v1/inbox/events(\?|$)")


class Traffic:
    """The requests of a context still waiting for their answer, the live stream aside: the
    console has drawn a screen once nothing is loading (images, PDFs, lists, the pdf.js
    worker), which Playwright's ``networkidle`` cannot tell while the stream is open."""

    def __init__(self, context: BrowserContext) -> None:
        self.pending: set[Request] = set()
        context.on("request", self._started)
        context.on("requestfinished", self._ended)
        context.on("requestfailed", self._ended)

    def _started(self, request: Request) -> None:
        if not LONG_LIVED.search(request.url):
            self.pending.add(request)

    def _ended(self, request: Request) -> None:
        self.pending.discard(request)


_TRAFFIC: dict[int, tuple[BrowserContext, Traffic]] = {}


def wait_for_quiet(page: Page, *, quiet_ms: int = 200, timeout_ms: int = 15_000) -> None:
    """Wait until no request of *page*'s context (but the live stream) has been in flight
    for *quiet_ms*."""
    known = _TRAFFIC.get(id(page.context))
    if known is None or known[0] is not page.context:
        raise RuntimeError("the context was not made by new_context")
    traffic = known[1]
    quiet = waited = 0
    step = 50
    while quiet < quiet_ms:
        if waited >= timeout_ms:
            raise TimeoutError(f"requests still in flight after {timeout_ms} ms")
        page.wait_for_timeout(step)  # lets Playwright deliver the request events
        waited += step
        quiet = quiet + step if not traffic.pending else 0


# --- WebAuthn: the CDP virtual authenticator --------------------------------------------------

_CDP: dict[int, tuple[Page, CDPSession]] = {}


def _cdp(page: Page) -> CDPSession:
    known = _CDP.get(id(page))
    if known is not None and known[0] is page:
        return known[1]
    session = page.context.new_cdp_session(page)
    session.send("WebAuthn.enable", {"enableUI": False})
    _CDP[id(page)] = (page, session)
    return session


def add_virtual_authenticator(page: Page, **options: Any) -> str:
    """A platform passkey authenticator (CTAP2, internal, resident keys, user verification
    that always succeeds) for *page*'s tab, some of those *options* changed if given
    (``transport="usb"``, ``hasResidentKey=False``...); returns its authenticator id."""
    settings = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
        **options,
    }
    answer = _cdp(page).send("WebAuthn.addVirtualAuthenticator", {"options": settings})
    authenticator: str = answer["authenticatorId"]
    return authenticator


def authenticator_credentials(page: Page, authenticator: str) -> list[dict[str, Any]]:
    """The credentials the virtual authenticator holds (id, rpId, signCount, userHandle...)."""
    answer = _cdp(page).send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    credentials: list[dict[str, Any]] = answer["credentials"]
    return credentials


# --- screenshots and axe-core -------------------------------------------------------------------


def screenshot(page: Page, name: str) -> Path:
    """The whole page as ``test-artifacts/screens/<name>-<width>.png`` (git-ignored)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"screenshot names are file names: {name!r}")
    viewport = page.viewport_size
    assert viewport is not None
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}-{viewport['width']}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


_AXE_SOURCE: list[str] = []

_AXE_RUN = """
async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                  nodes: v.nodes.map((n) => ({target: n.target, html: n.html,
                                              summary: n.failureSummary}))}));
}
"""


def axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on *page* as it is now.

    The vendored script is evaluated through the DevTools protocol, which the page's CSP does
    not govern, so the console's strict CSP stays on while it is checked.
    """
    if not _AXE_SOURCE:
        _AXE_SOURCE.append((VENDOR / "axe.min.js").read_text(encoding="utf-8"))
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_AXE_SOURCE[0] + "\n;undefined")
    violations: list[dict[str, Any]] = page.evaluate(_AXE_RUN)
    return violations


def describe_violations(violations: list[dict[str, Any]]) -> str:
    """A readable assertion message: rule, impact, help and the offending elements."""
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        lines.extend(f"    {node['target']} {node['html'][:160]}" for node in violation["nodes"])
    return "\n".join(lines)


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the document is wider than the viewport (0: no horizontal scroll)."""
    overflow: int = page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )
    return overflow


# --- signatures made in the browser ---------------------------------------------------------


def verify_es256(token: str, jwk: dict[str, Any]) -> dict[str, Any]:
    """The payload of a compact JWS after python-jose verified its ES256 signature with *jwk*
    (only ES256 accepted); raises :class:`JWSError` otherwise."""
    header = jose_jws.get_unverified_header(token)
    if header.get("alg") != "ES256":
        raise JWSError(f"alg is {header.get('alg')!r}, not ES256")
    payload = jose_jws.verify(token, jwk, algorithms=["ES256"])
    claims: dict[str, Any] = json.loads(payload)
    return claims


_READ_IDENTITY = """
() => new Promise((resolve, reject) => {
  const opening = indexedDB.open("sealhub");
  opening.onerror = () => reject(opening.error);
  opening.onsuccess = () => {
    const db = opening.result;
    if (!db.objectStoreNames.contains("identity")) { db.close(); resolve([]); return; }
    const all = db.transaction("identity").objectStore("identity").getAll();
    all.onerror = () => reject(all.error);
    all.onsuccess = () => {
      db.close();
      resolve(all.result.map((r) => ({official: r.official, kid: r.kid, label: r.label,
        publicJwk: r.publicJwk, enrolled_at: r.enrolled_at,
        extractable: r.privateKey ? r.privateKey.extractable : null})));
    };
  };
})
"""


def stored_identities(page: Page) -> list[dict[str, Any]]:
    """The console's key records in IndexedDB ``sealhub``/``identity`` (CONSOLE.md), without
    the private key but with its ``extractable`` flag: the public JWK verifies what the
    browser signed (:func:`verify_es256`)."""
    records: list[dict[str, Any]] = page.evaluate(_READ_IDENTITY)
    return records


# --- officials, departments, seals ------------------------------------------------------------


class Officials:
    """Makes the people and units a browser test needs, on one gateway.

    ``create`` writes an official straight into the database (as ``sealhub official create``)
    and returns its id and one-time enrollment code; the browser enrolls with them.
    ``login`` gives an official logged in over the API with a key held by the test
    (:class:`tests.conftest.Session`), for the other side of a flow.
    """

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._admins: tuple[Session, Session] | None = None
        self._sessions: list[Session] = []

    def create(self, department: str, roles: list[str], name: str = "测试官员") -> tuple[str, str]:
        """(official id, enrollment code) of a new official of *department*."""
        return off_loop(create_official_in_db, self.gateway.database_url, department, roles, name)

    def enrollment_link(self, official: str, code: str) -> str:
        """The console link a dept_admin hands over (the code stays in the fragment)."""
        return enrollment_link(self.gateway.base_url, official, code)

    def login(self, department: str, roles: list[str], name: str = "测试官员") -> Session:
        """A new official of *department* with *roles*, its key enrolled, logged in."""
        official, code = self.create(department, roles, name)
        session = new_session(self.gateway, official)
        enrolled = session.enroll(code)
        assert enrolled.status_code == 201, enrolled.text
        logged_in = session.login()
        assert logged_in.status_code == 200, logged_in.text
        self._sessions.append(session)
        return session

    def admins(self) -> tuple[Session, Session]:
        """Two platform admins (seal issuance needs two different ones)."""
        if self._admins is None:
            self._admins = (
                self.login(PLATFORM, ["admin"], "管理员甲"),
                self.login(PLATFORM, ["admin"], "管理员乙"),
            )
        return self._admins

    def department(
        self, code: str, name: str, *, parent: str = PLATFORM, name_en: str | None = None
    ) -> dict[str, Any]:
        """A new organisation unit, added by a platform admin over the API."""
        answer = self.admins()[0].post(
            "/v1/departments",
            json={
                "code": code,
                "name": name,
                "name_en": name_en or code,
                "parent": parent,
                "kind": "department",
            },
        )
        assert answer.status_code == 201, answer.text
        unit: dict[str, Any] = answer.json()
        return unit

    def seal(self, department: str, purpose: str = "公文专用章") -> dict[str, Any]:
        """An issued seal for *department*: one admin requests, the other approves."""
        first, second = self.admins()
        requested = first.post(
            f"/v1/departments/{department}/seal-requests", json={"purpose": purpose}
        )
        assert requested.status_code == 201, requested.text
        approved = second.post(f"/v1/seal-requests/{requested.json()['id']}/approve")
        assert approved.status_code == 201, approved.text
        seal: dict[str, Any] = approved.json()
        return seal

    def set_passkey_required(self, department: str, required: bool) -> None:
        """The department's console-login passkey rule (helper B's settings route)."""
        answer = self.admins()[0].request(
            "PUT", f"/v1/departments/{department}/settings", json={"passkey_required": required}
        )
        assert answer.status_code == 200, answer.text

    def close(self) -> None:
        for session in self._sessions:
            session.close()
        self._sessions.clear()


# --- the console in a browser ---------------------------------------------------------------

_ENROLL_BUTTON = re.compile(r"^(启用并登录|Enroll and log in)$")


def settle(page: Page) -> None:
    """Wait until a console screen is drawn: its heading shown, nothing ``aria-busy`` and no
    request in flight (``networkidle`` never comes: the dashboard's event stream stays open)."""
    page.locator("main h1, h1").first.wait_for(state="visible")
    page.wait_for_function("() => document.querySelectorAll('[aria-busy=\"true\"]').length === 0")
    wait_for_quiet(page)
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done(null)))")


def enroll_in_console(
    page: Page, officials: Officials, official: str, code: str, *, lands_on: str = "#/"
) -> None:
    """Enroll *official* in this browser through the console's enrollment link (a
    non-extractable key in IndexedDB), press 启用并登录 and wait for the screen the console
    lands on (``#/``; ``#/passkey-setup`` for an official that must register a passkey)."""
    page.goto(officials.enrollment_link(official, code))
    page.wait_for_function("() => !location.hash.startsWith('#/enroll/')")  # code dropped
    page.get_by_role("button", name=_ENROLL_BUTTON).click()
    page.wait_for_function("hash => location.hash === hash", arg=lands_on, timeout=20_000)
    settle(page)


def console_official(
    page: Page, officials: Officials, department: str, roles: list[str], name: str = "测试官员"
) -> str:
    """A new official of *department* enrolled and logged in in *page*'s browser context."""
    official, code = officials.create(department, roles, name)
    enroll_in_console(page, officials, official, code)
    return official


def open_screen(page: Page, route: str) -> None:
    """Load the console afresh at *route* (``#/inbox`` etc.) and wait until it is drawn.

    A fresh load, not a hash change: a new document is the only sure sign that the heading
    found next belongs to this screen (the console logs in again from IndexedDB).
    """
    page.goto("about:blank")
    page.goto(CONSOLE_PATH + route)
    settle(page)
