"""Every API call of API.md as data (path, parameters, body, result type), so the sync and
async clients cannot drift apart: they only differ in how they send."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from sealhub_sdk._internal import models
from sealhub_sdk._internal.core import Call, Op, state_changing
from sealhub_sdk._internal.models import Page


def seg(value: str) -> str:
    """One path segment, percent-encoded (ids never change the path's shape)."""
    if not value:
        raise ValueError("an id must not be empty")
    return quote(value, safe="")


def _params(**values: object) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None}


def _page(parse: Any) -> Any:
    def build(data: Any) -> Page[Any]:
        items = data.get("items") if isinstance(data, dict) else None
        cursor = data.get("next_cursor") if isinstance(data, dict) else None
        return Page(
            tuple(parse(i) for i in items if isinstance(i, dict))
            if isinstance(items, list)
            else (),
            cursor if isinstance(cursor, str) and cursor else None,
        )

    return build


def _json(data: Any) -> Any:
    return data


def _none(data: Any) -> None:
    return None


# --- identity ----------------------------------------------------------------------------


def challenge(subject: str) -> Op[str]:
    def nonce(data: Any) -> str:
        value = data.get("nonce") if isinstance(data, dict) else None
        return value if isinstance(value, str) else ""

    # A stateless nonce: asking again changes nothing, so it is retried like a read.
    call = Call(
        "POST", "/v1/auth/challenge", json={"subject": subject}, auth=False, repeatable=True
    )
    return Op(call, nonce)


def enroll(official_id: str, proof: str) -> Op[models.EnrolledKey]:
    return Op(
        Call("POST", f"/v1/officials/{seg(official_id)}/keys", json={"proof": proof}, auth=False),
        lambda d: models.EnrolledKey(str(d.get("kid", "")) if isinstance(d, dict) else ""),
    )


def me() -> Op[models.Me]:
    return Op(Call("GET", "/v1/me"), models.Me.from_json)


def create_official(name: str, department: str, roles: Sequence[str]) -> Op[models.NewOfficial]:
    body = {"name": name, "department": department, "roles": list(roles)}
    return Op(state_changing("POST", "/v1/officials", json=body), models.NewOfficial.from_json)


def approve_official_request(request_id: str) -> Op[Any]:
    path = f"/v1/official-requests/{seg(request_id)}/approve"
    return Op(state_changing("POST", path, json={}), _json)


def official_keys(official_id: str) -> Op[Any]:
    return Op(Call("GET", f"/v1/officials/{seg(official_id)}/keys"), _json)


def revoke_key(official_id: str, kid: str) -> Op[None]:
    return Op(Call("DELETE", f"/v1/officials/{seg(official_id)}/keys/{seg(kid)}"), _none)


def jwks() -> Op[Any]:
    return Op(Call("GET", "/.well-known/jwks.json", auth=False), _json)


# --- directory and PKI -------------------------------------------------------------------


def departments_page(
    *, parent: str | None, q: str | None, kind: str | None, limit: int, cursor: str | None
) -> Op[Page[models.Department]]:
    params = _params(parent=parent, q=q, kind=kind, limit=limit, cursor=cursor)
    return Op(Call("GET", "/v1/departments", params=params), _page(models.Department.from_json))


def department(code: str) -> Op[models.Department]:
    return Op(Call("GET", f"/v1/departments/{seg(code)}"), models.Department.from_json)


def groups_page(*, limit: int, cursor: str | None) -> Op[Page[models.Group]]:
    params = _params(limit=limit, cursor=cursor)
    return Op(Call("GET", "/v1/groups", params=params), _page(models.Group.from_json))


def group(code: str) -> Op[models.Group]:
    return Op(Call("GET", f"/v1/groups/{seg(code)}"), models.Group.from_json)


def ca_certificate() -> Call:
    return Call("GET", "/v1/pki/ca.pem", auth=False)


def chain_certificates() -> Call:
    return Call("GET", "/v1/pki/chain.pem", auth=False)


def verify_remote(pdf: bytes) -> Op[models.VerificationReport]:
    call = Call("POST", "/v1/verify", content=pdf, content_type="application/pdf", repeatable=True)
    return Op(call, models.VerificationReport.from_json)


# --- documents and exchange --------------------------------------------------------------


def document_meta(
    *,
    title: str,
    recipients: Sequence[str],
    doc_number: str,
    urgency: str,
    classification: str,
    cc: Sequence[str],
    deadline: str | None,
    workflow: Mapping[str, Any] | None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "title": title,
        "doc_number": doc_number,
        "urgency": urgency,
        "classification": classification,
        "recipients": list(recipients),
        "cc": list(cc),
    }
    if deadline is not None:
        meta["deadline"] = deadline
    if workflow is not None:
        meta["workflow"] = dict(workflow)
    return meta


def document(document_id: str) -> Op[models.Document]:
    return Op(Call("GET", f"/v1/documents/{seg(document_id)}"), models.Document.from_json)


def content(document_id: str, *, draft: bool = False) -> Call:
    tail = "draft" if draft else "content"
    return Call("GET", f"/v1/documents/{seg(document_id)}/{tail}")


def approve(document_id: str, signature: str) -> Op[Any]:
    path = f"/v1/documents/{seg(document_id)}/approvals"
    return Op(state_changing("POST", path, json={"signature": signature}), _json)


def seal(document_id: str) -> Op[models.SentDocument]:
    path = f"/v1/documents/{seg(document_id)}/seal"
    return Op(state_changing("POST", path, json={}), models.SentDocument.from_json)


def withdraw(document_id: str) -> Op[Any]:
    path = f"/v1/documents/{seg(document_id)}/withdraw"
    return Op(state_changing("POST", path, json={}), _json)


def resend(document_id: str, recipients: Sequence[str], approval: str | None = None) -> Op[Any]:
    path = f"/v1/documents/{seg(document_id)}/resend"
    body: dict[str, Any] = {"recipients": list(recipients)}
    if approval is not None:
        body["approval"] = approval
    return Op(state_changing("POST", path, json=body), _json)


def inbox_page(
    *, state: str | None, cursor: str | None, limit: int | None, wait: int | None
) -> Op[Page[models.InboxItem]]:
    params = _params(state=state, cursor=cursor, limit=limit, wait=wait)
    timeout = float(wait) + 30 if wait else None
    return Op(
        Call("GET", "/v1/inbox", params=params, timeout=timeout),
        _page(models.InboxItem.from_json),
    )


def receipt_post(delivery_id: str, signature: str, *, reject: bool) -> Op[models.Receipt]:
    path = f"/v1/deliveries/{seg(delivery_id)}/{'reject' if reject else 'receipt'}"
    return Op(state_changing("POST", path, json={"signature": signature}), models.Receipt.from_json)


def receipt_get(delivery_id: str) -> Op[models.Receipt]:
    path = f"/v1/deliveries/{seg(delivery_id)}/receipt"
    return Op(Call("GET", path), models.Receipt.from_json)


# --- audit -------------------------------------------------------------------------------


def checkpoint() -> Op[models.Checkpoint]:
    return Op(Call("GET", "/v1/audit/checkpoint"), models.Checkpoint.from_json)


def log_key() -> Op[str]:
    def key(data: Any) -> str:
        value = data.get("verifier_key") if isinstance(data, dict) else None
        return value if isinstance(value, str) else ""

    return Op(Call("GET", "/v1/audit/log-key"), key)


def audit_entries_page(
    *,
    document: str | None,
    department: str | None,
    actor: str | None,
    type: str | None,
    since: str | None,
    until: str | None,
    cursor: str | None,
) -> Op[Page[models.AuditEntry]]:
    params = _params(
        document=document,
        department=department,
        actor=actor,
        type=type,
        cursor=cursor,
        **{"from": since, "to": until},
    )
    return Op(Call("GET", "/v1/audit/entries", params=params), _page(models.AuditEntry.from_json))


def audit_entry(index: int) -> Op[models.AuditEntry]:
    return Op(Call("GET", f"/v1/audit/entries/{int(index)}"), models.AuditEntry.from_json)


def inclusion_proof(index: int, tree_size: int) -> Op[models.InclusionProof]:
    params = _params(index=int(index), tree_size=int(tree_size))
    return Op(
        Call("GET", "/v1/audit/proof/inclusion", params=params), models.InclusionProof.from_json
    )


def consistency_proof(first: int, second: int) -> Op[models.ConsistencyProof]:
    params = {"from": str(int(first)), "to": str(int(second))}
    return Op(
        Call("GET", "/v1/audit/proof/consistency", params=params),
        models.ConsistencyProof.from_json,
    )


# --- seals (admins) ----------------------------------------------------------------------


def request_seal(department: str, purpose: str) -> Op[models.SealRequest]:
    path = f"/v1/departments/{seg(department)}/seal-requests"
    return Op(state_changing("POST", path, json={"purpose": purpose}), models.SealRequest.from_json)


def request_seal_revocation(seal_id: str, reason: str) -> Op[models.SealRequest]:
    path = f"/v1/seals/{seg(seal_id)}/revoke"
    return Op(state_changing("POST", path, json={"reason": reason}), models.SealRequest.from_json)


def approve_seal_request(request_id: str) -> Op[models.Seal]:
    path = f"/v1/seal-requests/{seg(request_id)}/approve"
    return Op(state_changing("POST", path, json={}), models.Seal.from_json)


def department_seals(department: str) -> Op[Page[models.Seal]]:
    path = f"/v1/departments/{seg(department)}/seals"
    return Op(Call("GET", path), _page(models.Seal.from_json))
