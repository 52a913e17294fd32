# Generated from async_client.py by clients/python_sdk/tools/unasync.py: do not edit.
"""The synchronous client (httpx.Client): for scripts, department batch jobs and sealctl."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from sealhub_sdk._internal import jose, ops
from sealhub_sdk._internal.audit import verify_checkpoint, verify_entry
from sealhub_sdk._internal.core import (
    NOT_SENT,
    TOKEN_PATH,
    Call,
    Core,
    Op,
    RetryPolicy,
    finish_download,
    is_tls_failure,
    multipart_parts,
    own_receipt,
    should_refresh,
    state_changing,
    status_retry_delay,
    transport_failure,
    transport_retry_delay,
)
from sealhub_sdk._internal.errors import (
    ConfigurationError,
    Conflict,
    SealhubError,
    TransportError,
    VerificationError,
    error_from_response,
)
from sealhub_sdk._internal.keys import DeviceKey
from sealhub_sdk._internal.models import (
    AuditEntry,
    Checkpoint,
    ConsistencyProof,
    Department,
    Document,
    Download,
    EnrolledKey,
    Group,
    InboxItem,
    InclusionProof,
    Me,
    NewOfficial,
    Page,
    Receipt,
    Seal,
    SealRequest,
    SentDocument,
    Session,
    VerificationReport,
)
from sealhub_sdk._internal.note import CheckpointBody, NoteVerifier

T = TypeVar("T")
Progress = Callable[[int, int], None]
CHUNK = 64 * 1024


class Client:
    """Synchronous sealhub client.

    ``Client(base_url, ca_file=..., key=..., official_id=...)``: TLS trusts only the
    platform CA in *ca_file*; *key* and *official_id* are needed for :meth:`login`. Every
    authenticated request carries a fresh DPoP proof; the access token is refreshed
    transparently. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        ca_file: str | os.PathLike[str],
        key: DeviceKey | None = None,
        official_id: str | None = None,
        public_url: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._core = Core(
            base_url,
            ca_file=ca_file,
            key=key,
            official_id=official_id,
            public_url=public_url,
            retry=retry,
        )
        self._http = httpx.Client(
            base_url=self._core.base_url,
            verify=self._core.ssl,
            timeout=timeout,
            follow_redirects=False,
        )
        self._refresh_lock = threading.Lock()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __repr__(self) -> str:
        return f"Client(base_url={self._core.base_url!r}, official_id={self._core.official_id!r})"

    # --- the request loop -----------------------------------------------------------------

    def _send(
        self,
        call: Call,
        *,
        stream: bool = False,
        body: Callable[[], Iterator[bytes]] | None = None,
    ) -> httpx.Response:
        """Send with DPoP, nonce retry, token refresh and backoff; raise SealhubError."""
        core = self._core
        if self._http.is_closed:
            raise ConfigurationError(
                "this client is closed: call it inside its `with` block", code="client_closed"
            )
        attempt = 0
        nonce_retried = refreshed = False
        while True:
            if call.auth and call.path != TOKEN_PATH:
                self._refresh_if_expiring()
            request = self._http.build_request(
                call.method,
                call.path,
                params=call.params,
                json=call.json,
                data=call.form,
                content=body() if body is not None else call.content,
                headers=core.headers(call),
                timeout=call.timeout if call.timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                maybe_sent = not isinstance(exc, NOT_SENT)
                wait = (
                    None
                    if is_tls_failure(exc)
                    else transport_retry_delay(core, call, attempt, maybe_sent=maybe_sent)
                )
                if wait is None:
                    raise transport_failure(call, attempt, exc, maybe_sent=maybe_sent) from None
                time.sleep(wait)
                attempt += 1
                continue
            nonce_changed = core.remember_nonce(response.headers)
            if response.status_code < 400:
                return response
            raw = response.read()
            response.close()
            error = error_from_response(response.status_code, response.headers, raw)
            if error.code == "use_dpop_nonce" and nonce_changed and not nonce_retried:
                nonce_retried = True
                continue
            if should_refresh(error, call, core) and not refreshed:
                refreshed = True
                self._refresh()
                continue
            wait = status_retry_delay(core, call, attempt, response.status_code, response.headers)
            if wait is not None:
                time.sleep(wait)
                attempt += 1
                continue
            raise error

    def _run(self, op: Op[T]) -> T:
        response = self._send(op.call)
        data: Any = response.json() if response.content else None
        return op.parse(data)

    def _refresh_if_expiring(self) -> None:
        if self._core.tokens.expiring and self._core.tokens.refresh_token:
            self._refresh()

    def _refresh(self) -> None:
        with self._refresh_lock:
            call = self._core.refresh_call()
            if call is None:
                return
            try:
                answer = self._send(call).json()
            except SealhubError:
                # A refused refresh token (rotated away, revoked): fall back to the key.
                self._core.tokens.clear()
                if self._core.official_id and self._core.key:
                    self.login()
                    return
                raise
            self._core.tokens.store(answer)

    # --- identity --------------------------------------------------------------------------

    def enroll(self, official_id: str, enrollment_code: str) -> EnrolledKey:
        """Enroll this client's device key for *official_id* with the one-time code."""
        key, _ = self._key_and_official(official_id)
        proof = jose.enrollment_proof(key, official_id=official_id, enrollment_code=enrollment_code)
        result = self._run(ops.enroll(official_id, proof))
        self._core.official_id = official_id
        return result

    def login(self) -> Session:
        """Log in with the device key (challenge, RFC 7523 assertion, DPoP-bound token)."""
        _, official = self._key_and_official(None)
        nonce = self._run(ops.challenge(official))
        answer = self._send(self._core.login_call(nonce)).json()
        lifetime = self._core.tokens.store(answer)
        return Session(official, lifetime, str(answer.get("token_type", "DPoP")))

    def logout(self) -> None:
        """Forget the tokens held in memory."""
        self._core.tokens.clear()

    def _key_and_official(self, official_id: str | None) -> tuple[DeviceKey, str]:
        if official_id is not None and self._core.key is not None:
            return self._core.key, official_id
        return self._core.require_login_material()

    def me(self) -> Me:
        """Who the gateway thinks is calling: id, name, department, roles, key id."""
        return self._run(ops.me())

    def create_official(self, name: str, department: str, roles: Sequence[str]) -> NewOfficial:
        """(dept_admin/admin) Create an official; returns its id and enrollment code."""
        return self._run(ops.create_official(name, department, roles))

    def approve_official_request(self, request_id: str) -> Any:
        """(a second manager) Approve a pending official request; returns the gateway's JSON
        (a created official with its code, a code, or a moved official)."""
        return self._run(ops.approve_official_request(request_id))

    def revoke_key(self, official_id: str, kid: str) -> None:
        """Revoke an enrolled key at once (its tokens and streams end)."""
        self._run(ops.revoke_key(official_id, kid))

    # --- directory and PKI -----------------------------------------------------------------

    def departments(
        self,
        *,
        parent: str | None = None,
        q: str | None = None,
        kind: str | None = None,
        page_size: int = 100,
    ) -> Iterator[Department]:
        """Every matching organisation unit, fetching pages lazily."""
        cursor: str | None = None
        while True:
            page = self.departments_page(
                parent=parent, q=q, kind=kind, limit=page_size, cursor=cursor
            )
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def departments_page(
        self,
        *,
        parent: str | None = None,
        q: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Department]:
        """One page of organisation units."""
        return self._run(
            ops.departments_page(parent=parent, q=q, kind=kind, limit=limit, cursor=cursor)
        )

    def department(self, code: str) -> Department:
        """One organisation unit by code."""
        return self._run(ops.department(code))

    def groups(self, *, page_size: int = 100) -> Iterator[Group]:
        """Every distribution group (a group code may stand for its member departments)."""
        cursor: str | None = None
        while True:
            page = self._run(ops.groups_page(limit=page_size, cursor=cursor))
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def group(self, code: str) -> Group:
        """One distribution group with its members."""
        return self._run(ops.group(code))

    def ca_certificate(self) -> bytes:
        """The platform root CA (PEM) as this gateway serves it.

        Compare it with the file you trust; never replace your CA file with it unchecked.
        """
        return self._send(ops.ca_certificate()).content

    def chain_certificates(self) -> bytes:
        """The issuing CAs and TSA certificate (PEM), for offline checks."""
        return self._send(ops.chain_certificates()).content

    def jwks(self) -> Mapping[str, Any]:
        """The gateway's public token and receipt keys."""
        result: Mapping[str, Any] = self._run(ops.jwks())
        return result

    # --- documents -------------------------------------------------------------------------

    def send(
        self,
        file: str | os.PathLike[str],
        *,
        title: str,
        recipients: Sequence[str],
        doc_number: str,
        urgency: str = "normal",
        classification: str = "internal",
        cc: Sequence[str] = (),
        deadline: str | None = None,
        workflow: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> SentDocument:
        """Send a PDF: sealed and dispatched at once (seal_keeper), or into a workflow.

        The file is streamed (never read whole into memory); *progress* is called with
        (bytes sent, total bytes). One ``Idempotency-Key`` covers the whole call.
        """
        meta = ops.document_meta(
            title=title,
            recipients=recipients,
            doc_number=doc_number,
            urgency=urgency,
            classification=classification,
            cc=cc,
            deadline=deadline,
            workflow=workflow,
        )
        answer = self._upload("/v1/documents", meta, file, progress, idempotent=True)
        return SentDocument.from_json(answer)

    def submit_version(
        self,
        document_id: str,
        file: str | os.PathLike[str],
        *,
        progress: Progress | None = None,
    ) -> Mapping[str, Any]:
        """(the drafter) A new draft version, after a return or before sign-off.

        The approval chain starts again at its first step; returns ``id``, ``status``,
        ``version`` and ``draft_sha256``. Not sent twice after a lost answer (the gateway
        would record two versions): a ``TransportError`` says so; check ``document(id)``.
        """
        path = f"/v1/documents/{ops.seg(document_id)}/versions"
        answer: Mapping[str, Any] = self._upload(path, None, file, progress, idempotent=False)
        return answer

    def _upload(
        self,
        url_path: str,
        meta: Mapping[str, Any] | None,
        file: str | os.PathLike[str],
        progress: Progress | None,
        *,
        idempotent: bool,
    ) -> Any:
        """Stream *file* as multipart (``meta`` first), read again for each retry."""
        path = Path(file)
        content_type, head, tail = multipart_parts(meta, path.name)
        size = path.stat().st_size
        total = len(head) + size + len(tail)

        def body() -> Iterator[bytes]:
            sent = 0
            yield head
            with path.open("rb") as source:
                while chunk := source.read(CHUNK):
                    sent += len(chunk)
                    if progress is not None:
                        progress(sent, size)
                    yield chunk
            yield tail

        options: dict[str, Any] = {"content_type": content_type, "content_length": total}
        call = (
            state_changing("POST", url_path, **options)
            if idempotent
            else Call("POST", url_path, **options)
        )
        return self._send(call, body=body).json()

    def document(self, document_id: str) -> Document:
        """Metadata, status, deliveries and approval trail of a document."""
        return self._run(ops.document(document_id))

    def download(
        self,
        document_id: str,
        path: str | os.PathLike[str],
        *,
        draft: bool = False,
        expected_sha256: str | None = None,
        progress: Progress | None = None,
    ) -> Download:
        """Stream the sealed PDF (or the draft, for approvers) into *path*.

        Written to a temporary file beside *path* and renamed when complete, so *path*
        never holds a partial document; with *expected_sha256* a mismatch raises.
        """
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        response = self._send(ops.content(document_id, draft=draft), stream=True)
        digest = hashlib.sha256()
        size = 0
        total = int(response.headers.get("content-length") or 0)
        try:
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if progress is not None:
                        progress(size, total)
        except httpx.TransportError as exc:
            partial.unlink(missing_ok=True)
            raise TransportError(f"download interrupted: {exc}") from None
        finally:
            response.close()
        return finish_download(partial, target, digest.hexdigest(), size, expected_sha256)

    def approve(
        self,
        document_id: str,
        *,
        draft_sha256: str,
        step: int | str,
        decision: str = "approve",
        opinion: str = "",
    ) -> Any:
        """Sign and submit an approval (or ``decision="reject"``) for a workflow step."""
        signature = jose.approval_signature(
            self._signing_key(),
            document_id=document_id,
            draft_sha256=draft_sha256,
            step=step,
            decision=decision,
            opinion=opinion,
        )
        return self._run(ops.approve(document_id, signature))

    def seal(self, document_id: str) -> SentDocument:
        """(seal_keeper) Seal a signed-off document and dispatch it."""
        return self._run(ops.seal(document_id))

    def withdraw(self, document_id: str) -> Any:
        """Withdraw (撤回) a document no recipient has signed for yet."""
        return self._run(ops.withdraw(document_id))

    def resend(
        self, document_id: str, recipients: Sequence[str], *, approval: str | None = None
    ) -> Any:
        """Send a dispatched document again (补发) to more recipients; a signed-off document
        needs *approval*, a leader's :meth:`approve_resend` for exactly these recipients."""
        return self._run(ops.resend(document_id, recipients, approval))

    def approve_resend(self, document_id: str, *, sha256: str, recipients: Sequence[str]) -> str:
        """(leader) The signed approval for 补发 of this sealed document to *recipients*."""
        return jose.resend_approval_signature(
            self._signing_key(), document_id=document_id, sha256=sha256, recipients=recipients
        )

    def verify(self, file: str | os.PathLike[str]) -> VerificationReport:
        """Ask the gateway to verify a sealed PDF (it fetches nothing from the network)."""
        pdf = Path(file).read_bytes()
        return self._run(ops.verify_remote(pdf))

    # --- seals (admins) -------------------------------------------------------------------

    def request_seal(self, department: str, purpose: str = "公文专用章") -> SealRequest:
        """(admin) Ask for a new department seal; another admin must approve it."""
        return self._run(ops.request_seal(department, purpose))

    def request_seal_revocation(self, seal_id: str, reason: str) -> SealRequest:
        """(admin) Ask to revoke a seal; another admin must approve it."""
        return self._run(ops.request_seal_revocation(seal_id, reason))

    def approve_seal_request(self, request_id: str) -> Seal:
        """(admin) Approve another admin's seal request; returns the seal."""
        return self._run(ops.approve_seal_request(request_id))

    def department_seals(self, department: str) -> Page[Seal]:
        """The seals of a department."""
        return self._run(ops.department_seals(department))

    # --- inbox and receipts ----------------------------------------------------------------

    def inbox(
        self,
        *,
        state: str | None = "pending",
        cursor: str | None = None,
        limit: int | None = None,
        wait: int | None = None,
    ) -> Page[InboxItem]:
        """One page of deliveries to the caller's department; *wait* long-polls (seconds)."""
        return self._run(ops.inbox_page(state=state, cursor=cursor, limit=limit, wait=wait))

    def watch(
        self, *, state: str = "pending", wait: int = 30, cursor: str | None = None
    ) -> Iterator[InboxItem]:
        """Yield deliveries as they arrive, long-polling the inbox forever.

        Starts with what is already in the inbox (or after *cursor*); each delivery is
        yielded once. Stops only when the caller stops iterating or an error is raised.
        """
        seen: set[str] = set()
        while True:
            page = self.inbox(state=state, cursor=cursor, wait=wait)
            for item in page.items:
                if item.id not in seen:
                    seen.add(item.id)
                    yield item
            if page.next_cursor is not None:
                cursor = page.next_cursor
            elif not page.items:
                time.sleep(1.0)  # no cursor from the server: do not spin

    def sign_for(self, delivery_id: str, *, sha256: str) -> Receipt:
        """签收: sign for the delivered bytes (*sha256* of the downloaded PDF)."""
        signature = jose.receipt_signature(
            self._signing_key(), delivery_id=delivery_id, sha256=sha256, action="receive"
        )
        return self._decide(delivery_id, signature, reject=False)

    def reject(self, delivery_id: str, *, sha256: str, reason: str) -> Receipt:
        """退回: return a delivery to its sender, with a reason, signed by you."""
        signature = jose.receipt_signature(
            self._signing_key(),
            delivery_id=delivery_id,
            sha256=sha256,
            action="reject",
            reason=reason,
        )
        return self._decide(delivery_id, signature, reject=True)

    def receipt(self, delivery_id: str) -> Receipt:
        """The countersigned receipt of a delivery (sender, recipient, inspectors)."""
        return self._run(ops.receipt_get(delivery_id))

    def _decide(self, delivery_id: str, signature: str, *, reject: bool) -> Receipt:
        try:
            return self._run(ops.receipt_post(delivery_id, signature, reject=reject))
        except Conflict as conflict:
            # A retry whose first try went through but lost its answer finds the delivery
            # decided: by this very signature, then the stored receipt is the answer.
            try:
                stored = self.receipt(delivery_id)
            except SealhubError:
                raise conflict from None
            mine = own_receipt(stored, signature)
            if mine is None:
                raise
            return mine

    def _signing_key(self) -> DeviceKey:
        return self._core.require_login_material()[0]

    # --- audit -----------------------------------------------------------------------------

    def audit_checkpoint(self) -> Checkpoint:
        """The log's latest signed checkpoint (unverified: see verified_checkpoint)."""
        return self._run(ops.checkpoint())

    def audit_log_key(self) -> str:
        """The log's verifier key as served (pin it out of band; do not trust it blindly)."""
        return self._run(ops.log_key())

    def verified_checkpoint(self, verifier_keys: Sequence[NoteVerifier | str]) -> CheckpointBody:
        """Fetch the checkpoint and verify its note against the pinned log key(s)."""
        return verify_checkpoint(self.audit_checkpoint(), verifier_keys)

    def audit_entries(
        self,
        *,
        document: str | None = None,
        department: str | None = None,
        actor: str | None = None,
        type: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> Iterator[AuditEntry]:
        """Audit entries visible to the caller, fetching pages lazily."""
        cursor: str | None = None
        while True:
            page = self._run(
                ops.audit_entries_page(
                    document=document,
                    department=department,
                    actor=actor,
                    type=type,
                    since=since,
                    until=until,
                    cursor=cursor,
                )
            )
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def audit_entry(self, index: int) -> AuditEntry:
        """One audit entry by index."""
        return self._run(ops.audit_entry(index))

    def inclusion_proof(self, index: int, tree_size: int) -> InclusionProof:
        """The RFC 9162 inclusion proof of entry *index* in the tree of *tree_size*."""
        return self._run(ops.inclusion_proof(index, tree_size))

    def consistency_proof(self, first: int, second: int) -> ConsistencyProof:
        """The RFC 9162 consistency proof between two tree sizes."""
        return self._run(ops.consistency_proof(first, second))

    def verify_audit_entry(
        self,
        index: int,
        verifier_keys: Sequence[NoteVerifier | str],
        *,
        wait_for_checkpoint: float = 15.0,
    ) -> AuditEntry:
        """Fetch an entry and prove it is in the log the pinned key signs; returns it.

        Checkpoints are signed every few seconds: a fresh entry waits up to
        *wait_for_checkpoint* seconds for one that covers it.
        """
        deadline = time.monotonic() + wait_for_checkpoint
        checkpoint = self.verified_checkpoint(verifier_keys)
        while checkpoint.tree_size <= index:
            if time.monotonic() > deadline:
                raise VerificationError(
                    f"no signed checkpoint covers entry {index} yet", code="not_checkpointed"
                )
            time.sleep(1.0)
            checkpoint = self.verified_checkpoint(verifier_keys)
        entry = self.audit_entry(index)
        proof = self.inclusion_proof(index, checkpoint.tree_size)
        verify_entry(entry, proof, checkpoint)
        return entry
