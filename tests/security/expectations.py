"""Who may call what: the declared outcome of every route for every caller kind.

Callers: ``anonymous`` (no token); ``dept_admin``, ``clerk``, ``leader``, ``seal_keeper``,
``system`` (each alone, in department A, which owns the objects in the path); ``foreign``
(department C, holding all five department roles); ``admin`` and ``inspector`` (platform).

Outcome classes: ``2xx``; ``3xx`` (a redirect, not followed); ``401``; ``403``; ``404``;
``409`` = authorized, but the object's state forbids it (e.g. a dispatched document cannot
change); ``4xx`` = a validation refusal (400, 413, 415 or 422) for a caller who got past every
authorization check and then met the body the matrix deliberately leaves empty or incomplete
(so nothing changes state).

Every route of the table must appear here; ``test_authz_matrix`` fails otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["2xx", "3xx", "401", "403", "404", "409", "4xx"]
Body = Literal["none", "empty", "meta_only"]

DEPARTMENT_ROLES = ("dept_admin", "clerk", "leader", "seal_keeper", "system")
AUTHENTICATED = (*DEPARTMENT_ROLES, "foreign", "admin", "inspector")


@dataclass(frozen=True)
class Expectation:
    """``resource`` names the world's object whose ids fill the path; ``fresh`` makes a new
    one for each caller (for calls that succeed and change it); ``stream`` reads only the
    status of an endless response."""

    outcomes: dict[str, Outcome]
    resource: str = "none"
    fresh: bool = False
    body: Body = "none"
    query: str = ""
    stream: bool = False
    note: str = field(default="", compare=False)


def public(outcome: Outcome = "2xx", **kwargs: object) -> Expectation:
    """Same answer for everyone, token or not."""
    return Expectation({caller: outcome for caller in ("anonymous", *AUTHENTICATED)}, **kwargs)  # type: ignore[arg-type]


def authenticated(
    default: Outcome,
    *,
    resource: str = "none",
    fresh: bool = False,
    body: Body = "none",
    query: str = "",
    stream: bool = False,
    **overrides: Outcome,
) -> Expectation:
    """401 without a token; *default* for every caller unless overridden by name
    (``own`` stands for the five department-A roles)."""
    outcomes: dict[str, Outcome] = {"anonymous": "401"}
    own = overrides.pop("own", None)
    for caller in AUTHENTICATED:
        outcomes[caller] = default
        if own is not None and caller in DEPARTMENT_ROLES:
            outcomes[caller] = own
    for caller, outcome in overrides.items():
        if caller not in outcomes:
            raise ValueError(f"unknown caller {caller!r}")
        outcomes[caller] = outcome
    return Expectation(outcomes, resource, fresh, body, query, stream)


def admin_only(ok: Outcome, **kwargs: object) -> Expectation:
    return authenticated("403", admin=ok, **kwargs)  # type: ignore[arg-type]


EXPECTATIONS: dict[tuple[str, str], Expectation] = {
    # --- service and public material
    ("GET", "/healthz"): public(),
    ("GET", "/readyz"): public(),
    # From loopback (where the matrix runs) by default; tests/test_metrics_access.py covers
    # other addresses and the bearer secret.
    ("GET", "/metrics"): public(),
    ("GET", "/openapi.json"): public(),
    # --- the web console: the same page and files for everyone, token or not
    ("GET", "/"): public("3xx"),
    ("GET", "/console/"): public(),
    ("GET", "/console/assets/{version}/{path}"): public(resource="console_asset"),
    ("GET", "/.well-known/jwks.json"): public(),
    ("GET", "/v1/pki/ca.pem"): public(),
    ("GET", "/v1/pki/chain.pem"): public(),
    ("GET", "/v1/pki/crl/{ca}"): public(resource="crl"),
    ("POST", "/v1/pki/tsa"): authenticated("4xx", body="empty"),
    ("POST", "/v1/verify"): authenticated("4xx", body="empty"),
    ("GET", "/v1/audit/checkpoint"): public(),
    ("GET", "/v1/audit/checkpoints"): public(),
    ("GET", "/v1/audit/log-key"): public(),
    ("GET", "/v1/audit/proof/inclusion"): public(query="index=0&tree_size=2"),
    ("GET", "/v1/audit/proof/consistency"): public(query="from=1&to=2"),
    # --- login: public, refused on the empty body (validation happens after rate limits)
    ("POST", "/v1/auth/challenge"): public("4xx", body="empty"),
    ("POST", "/v1/auth/token"): public("4xx", body="empty"),
    ("POST", "/v1/officials/{id}/keys"): public("4xx", resource="official", body="empty"),
    ("GET", "/v1/me"): authenticated("2xx"),
    # --- directory: any official
    ("GET", "/v1/departments"): authenticated("2xx"),
    ("GET", "/v1/departments/{code}"): authenticated("2xx", resource="department"),
    ("GET", "/v1/groups"): authenticated("2xx"),
    ("GET", "/v1/groups/{code}"): authenticated("2xx", resource="group"),
    # Adding units and groups: admins only; the matrix's empty body is refused (nothing added).
    ("POST", "/v1/departments"): admin_only("4xx", body="empty"),
    ("POST", "/v1/groups"): admin_only("4xx", body="empty"),
    # --- seals: readable by any official; issuance and revocation by admins only
    ("GET", "/v1/departments/{code}/seals"): authenticated("2xx", resource="department"),
    ("GET", "/v1/seals/{id}"): authenticated("2xx", resource="seal"),
    ("GET", "/v1/seals/{id}/image.png"): authenticated("2xx", resource="seal"),
    ("POST", "/v1/departments/{code}/seal-requests"): admin_only(
        "4xx", resource="department", body="empty"
    ),
    ("POST", "/v1/seals/{id}/revoke"): admin_only("4xx", resource="seal", body="empty"),
    ("POST", "/v1/seal-requests/{id}/approve"): admin_only(
        "2xx", resource="seal_request", fresh=True
    ),
    # The list the second admin approves from; declining another admin's fresh request.
    ("GET", "/v1/seal-requests"): admin_only("2xx", query="status=pending"),
    ("POST", "/v1/seal-requests/{id}/decline"): admin_only(
        "2xx", resource="seal_request", fresh=True
    ),
    # --- documents of A (sent by A to B): A's officials see them, nobody else
    ("POST", "/v1/documents"): authenticated(
        "403", body="meta_only", seal_keeper="4xx", foreign="4xx"
    ),
    ("GET", "/v1/documents/{id}"): authenticated("404", resource="document", own="2xx"),
    ("GET", "/v1/documents/{id}/content"): authenticated("404", resource="document", own="2xx"),
    ("POST", "/v1/documents/{id}/withdraw"): authenticated(
        "404",
        resource="document",
        fresh=True,
        dept_admin="2xx",
        clerk="2xx",
        seal_keeper="2xx",
        leader="403",
        system="403",
    ),
    ("POST", "/v1/documents/{id}/resend"): authenticated(
        "404",
        resource="document",
        body="empty",
        dept_admin="4xx",
        clerk="4xx",
        seal_keeper="4xx",
        leader="403",
        system="403",
    ),
    # --- deliveries to A (sent by B): A's officials sign for them
    ("POST", "/v1/deliveries/{id}/receipt"): authenticated(
        "404", resource="pending_delivery", body="empty", own="4xx"
    ),
    ("POST", "/v1/deliveries/{id}/reject"): authenticated(
        "404", resource="pending_delivery", body="empty", own="4xx"
    ),
    ("GET", "/v1/deliveries/{id}/receipt"): authenticated(
        "404", resource="signed_delivery", own="2xx", inspector="2xx"
    ),
    ("GET", "/v1/inbox"): authenticated("2xx", query="wait=0"),
    # --- the console's lists: each caller's own department (other departments: tests/console)
    ("GET", "/v1/documents"): authenticated("2xx", query="box=sent"),
    ("GET", "/v1/approvals"): authenticated("2xx"),
    ("GET", "/v1/officials"): authenticated("2xx"),
    ("GET", "/v1/inbox/events"): authenticated("2xx", stream=True),
    # --- officials of A (an ordinary clerk): its dept_admin or an admin manage it
    ("POST", "/v1/officials"): authenticated(
        "403", body="empty", dept_admin="4xx", foreign="4xx", admin="4xx"
    ),
    # The official has a working key: a manager's call opens a four-eyes request (202), so
    # nobody gets a code here; the official itself may ask (not one of these callers).
    # Platform callers other than admin are of another department: 404.
    ("POST", "/v1/officials/{id}/enrollment-code"): authenticated(
        "403", resource="official", dept_admin="2xx", admin="2xx", foreign="404", inspector="404"
    ),
    ("GET", "/v1/officials/{id}/keys"): authenticated(
        "403", resource="official", dept_admin="2xx", admin="2xx", foreign="404", inspector="404"
    ),
    ("DELETE", "/v1/officials/{id}/keys/{kid}"): authenticated(
        "403",
        resource="enrolled_official",
        fresh=True,
        dept_admin="2xx",
        admin="2xx",
        foreign="404",
        inspector="404",
    ),
    # --- passkeys: registered from console keys only (the matrix's callers hold key files)
    ("POST", "/v1/passkeys/registration-options"): authenticated("403"),
    ("POST", "/v1/passkeys"): authenticated("403", body="empty"),
    ("GET", "/v1/officials/{id}/passkeys"): authenticated(
        "403", resource="official", dept_admin="2xx", admin="2xx", foreign="404", inspector="404"
    ),
    ("DELETE", "/v1/officials/{id}/passkeys/{passkey}"): authenticated(
        "403",
        resource="official_passkey",
        dept_admin="404",
        admin="404",
        foreign="404",
        inspector="404",
    ),
    # The department's settings: its dept_admin or an admin; another one's dept_admin: 404.
    ("GET", "/v1/departments/{code}/settings"): authenticated(
        "403", resource="department", dept_admin="2xx", admin="2xx", foreign="404"
    ),
    ("PUT", "/v1/departments/{code}/settings"): authenticated(
        "403", resource="department", body="empty", dept_admin="4xx", admin="4xx", foreign="404"
    ),
    ("POST", "/v1/officials/{id}/disable"): authenticated(
        "403", resource="official", fresh=True, dept_admin="2xx", admin="2xx", foreign="404"
    ),
    ("POST", "/v1/officials/{id}/transfer"): authenticated(
        "403", resource="official", body="empty", dept_admin="4xx", admin="4xx", foreign="404"
    ),
    # Requests waiting for a second person: managers only, each sees its department's.
    ("GET", "/v1/official-requests"): authenticated(
        "403", dept_admin="2xx", admin="2xx", foreign="2xx"
    ),
    ("POST", "/v1/official-requests/{id}/approve"): authenticated(
        "403", resource="unknown_id", dept_admin="404", admin="404", foreign="404"
    ),
    ("POST", "/v1/official-requests/{id}/decline"): authenticated(
        "403", resource="unknown_id", dept_admin="404", admin="404", foreign="404"
    ),
    # --- audit: entries by department (inspectors all); the witness role cosigns
    ("GET", "/v1/audit/entries"): authenticated("2xx"),
    ("GET", "/v1/audit/entries/{index}"): authenticated(
        "404", resource="audit_entry", own="2xx", inspector="2xx"
    ),
    ("POST", "/v1/audit/cosign"): authenticated("403", body="empty", inspector="4xx"),
    # --- approval workflow on A's (already dispatched) document
    ("POST", "/v1/documents/{id}/approvals"): authenticated(
        "404", resource="document", body="empty", own="4xx"
    ),
    # The seal keeper here is the document's drafter (it sent it); other seal keepers read a
    # draft only while it awaits their seal (tests/workflow/test_trust_rules.py).
    ("GET", "/v1/documents/{id}/draft"): authenticated(
        "404", resource="document", own="403", seal_keeper="2xx"
    ),
    ("POST", "/v1/documents/{id}/versions"): authenticated("404", resource="document", own="409"),
    ("POST", "/v1/documents/{id}/seal"): authenticated(
        "403", resource="document", seal_keeper="409", foreign="404"
    ),
    # --- webhooks of A: its dept_admin only (not even a platform admin); the allow-list and
    # the delivery policy: platform admins only
    ("GET", "/v1/departments/{code}/webhooks"): authenticated(
        "403", resource="department", dept_admin="2xx", foreign="404"
    ),
    ("POST", "/v1/departments/{code}/webhooks"): authenticated(
        "403", resource="department", body="empty", dept_admin="4xx", foreign="404"
    ),
    ("DELETE", "/v1/departments/{code}/webhooks/{id}"): authenticated(
        "403", resource="unknown_in_department", dept_admin="404", foreign="404"
    ),
    ("GET", "/v1/departments/{code}/webhooks/dead"): authenticated(
        "403", resource="department", dept_admin="2xx", foreign="404"
    ),
    ("POST", "/v1/departments/{code}/webhooks/dead/{id}/replay"): authenticated(
        "403", resource="unknown_in_department", dept_admin="404", foreign="404"
    ),
    ("GET", "/v1/webhooks/allowlist"): admin_only("2xx"),
    ("POST", "/v1/webhooks/allowlist"): admin_only("4xx", body="empty"),
    ("DELETE", "/v1/webhooks/allowlist/{id}"): admin_only("404", resource="unknown_id"),
    ("GET", "/v1/webhooks/policy"): admin_only("2xx"),
    ("PUT", "/v1/webhooks/policy"): admin_only("4xx", body="empty"),
    # --- supervision: a department its own, inspectors everything
    ("GET", "/v1/supervision/alerts"): authenticated("2xx"),
    ("GET", "/v1/supervision/stats"): authenticated("2xx"),
    # Only inspectors acknowledge or close; the department concerned (its dept_admin) adds notes.
    ("POST", "/v1/supervision/alerts/{id}/acknowledge"): authenticated(
        "403", resource="unknown_id", inspector="404"
    ),
    ("POST", "/v1/supervision/alerts/{id}/close"): authenticated(
        "403", resource="unknown_id", body="empty", inspector="4xx"
    ),
    ("POST", "/v1/supervision/alerts/{id}/notes"): authenticated(
        "403", resource="unknown_id", body="empty", dept_admin="4xx", foreign="4xx", inspector="4xx"
    ),
}
