"""Department seals at run time: issuing one, and applying the active one to a document.

The seal's private key never leaves this process: a worker (memory and CPU limited)
parses the uploaded PDF and lays out the sealed revision, this process signs the digest
with the key from the key store, and the in-process TSA stamps it (B-LT by default, with
our own CRLs embedded so validators need no network).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.exchange.service import SealOutcome
from gateway.pki.crls import CrlCache
from gateway.runtime import Runtime
from keys import keystore as keystore_module
from keys import pki
from keys.platform import PlatformPki
from seals.image import render_seal
from seals.pades import Level, SealAppearance, SealOptions
from seals.pool import SealWorkerPool
from seals.signer import InMemorySealKey, SealSigner
from seals.verify import SealIssuer, VerificationReport
from storage import directory
from storage.audit_outbox import AuditEvent, record_event
from storage.db import DbConnection
from storage.pki import next_tsa_serials

DEFAULT_PURPOSE = "公文专用章"


class SealUnavailable(Exception):
    code = "no_active_seal"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SealRevoked(SealUnavailable):
    code = "seal_revoked"


class ExistingSealInvalid(Exception):
    """The upload already carries seals and they do not all check out: sealing it would
    lend our seal to whatever was changed after them."""

    code = "existing_seal_invalid"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def seal_issuer(platform: PlatformPki) -> SealIssuer:
    """Seals are certificates of the platform's seal CA under the seal policy."""
    return SealIssuer(
        ca_certs=(platform.seal_ca.cert.public_bytes(serialization.Encoding.DER),),
        policy_oid=pki.SEAL_POLICY_OID,
    )


async def registered_seals(connection: DbConnection) -> dict[str, str]:
    """Certificate SHA-256 → seal id of every seal the platform issued (also those from
    before seal certificates carried the seal policy, which verification accepts so)."""
    rows = await connection.fetch("SELECT id, certificate_pem FROM seals")
    known = {}
    for row in rows:
        der = x509.load_pem_x509_certificate(row["certificate_pem"].encode()).public_bytes(
            serialization.Encoding.DER
        )
        known[hashlib.sha256(der).hexdigest()] = str(row["id"])
    return known


def refuse_unless_sound(report: VerificationReport) -> None:
    """An upload without seals may be sealed; one with seals only if every seal is intact,
    trusted, a seal certificate, not revoked at all, and nothing but seals and validation
    data was added after them."""
    if not report.seals:
        return
    problems = list(report.problems)
    problems += [f"{s.field}: the seal certificate is revoked" for s in report.seals if s.revoked]
    if report.valid and not problems:
        return
    raise ExistingSealInvalid(
        "the document already carries seals that do not verify: " + "; ".join(problems[:5])
    )


@dataclass(frozen=True)
class IssuedSeal:
    id: uuid.UUID
    department: str
    purpose: str
    kid: str
    certificate_pem: str
    valid_from: datetime
    valid_to: datetime


async def issue_seal(
    runtime: Runtime,
    connection: DbConnection,
    *,
    department: str,
    purpose: str,
    request_id: uuid.UUID,
    now: datetime,
) -> IssuedSeal:
    """A new key in the key store and a certificate from the seal CA; one ``seals`` row."""
    unit = await directory.get_department(connection, department)
    seal_id = uuid.uuid4()
    store = runtime.pki.keystore
    kid = store.generate(keystore_module.seal_purpose(str(seal_id)), "ES256", now=now)
    private = store.get_private(keystore_module.seal_purpose(str(seal_id)), kid)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    certificate = runtime.pki.issue_seal_certificate(
        private.public_key(),
        department_name_zh=unit.name,
        department_code=unit.code,
        seal_id=str(seal_id),
        now=now,
        seal_name=purpose,
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    await connection.execute(
        "INSERT INTO seals (id, department, purpose, kid, certificate_pem, serial_number,"
        " valid_from, valid_to, issued_at, request_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        seal_id,
        department,
        purpose,
        kid,
        pem,
        certificate.serial_number,
        certificate.not_valid_before_utc,
        certificate.not_valid_after_utc,
        now,
        request_id,
    )
    return IssuedSeal(
        seal_id,
        department,
        purpose,
        kid,
        pem,
        certificate.not_valid_before_utc,
        certificate.not_valid_after_utc,
    )


# A seal takes one token; the second serial covers the retry with a bigger container.
TSA_SERIALS_PER_SEAL = 2


class DepartmentSealer:
    """The gateway's :class:`gateway.exchange.service.DocumentSealer`."""

    def __init__(
        self,
        runtime: Runtime,
        pool: SealWorkerPool,
        crls: CrlCache,
        level: Level = Level.B_LT,
    ) -> None:
        self._runtime = runtime
        self._pool = pool
        self._crls = crls
        self._level = level
        self._signers: dict[uuid.UUID, tuple[SealSigner, SealAppearance]] = {}
        platform = runtime.pki
        self._timestamper = platform.timestamper
        self._root_der = platform.root_cert.public_bytes(serialization.Encoding.DER)
        self._seal_ca_der = platform.seal_ca.cert.public_bytes(serialization.Encoding.DER)
        self._seal_issuer = seal_issuer(platform)

    def _signer(
        self, seal_id: uuid.UUID, kid: str, certificate_pem: str, name: str, purpose: str
    ) -> tuple[SealSigner, SealAppearance]:
        cached = self._signers.get(seal_id)
        if cached is None:
            key = self._runtime.pki.keystore.get_private(
                keystore_module.seal_purpose(str(seal_id)), kid
            )
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            der = x509.load_pem_x509_certificate(certificate_pem.encode()).public_bytes(
                serialization.Encoding.DER
            )
            signer = SealSigner(InMemorySealKey(key), der, (self._seal_ca_der,))
            cached = (signer, SealAppearance(render_seal(name, purpose)))
            self._signers[seal_id] = cached
        return cached

    def forget(self, seal_id: uuid.UUID) -> None:
        """Called on revocation so a cached signer is never used again."""
        self._signers.pop(seal_id, None)

    async def record_refusal(self, department: str, seal_id: uuid.UUID) -> None:
        """``seal.use_refused`` for e-supervision, on a connection of its own so it commits
        even though the caller's transaction (if any) is about to fail."""
        async with self._runtime.pool.acquire() as connection:
            await record_event(
                connection,
                AuditEvent(
                    "seal.use_refused",
                    datetime.now(UTC),
                    department=department,
                    details={"seal_id": str(seal_id), "reason": "revoked"},
                ),
            )

    async def seal(self, department: str, draft: Path, sealed: Path, *, reason: str) -> SealOutcome:
        """Holds no database connection while the document is sealed: sealing waits for a
        worker, and a pool drained by waiting sends would starve everything else.

        The worker reads *draft* and writes *sealed* (spool files); this process only
        writes the signature at its offset in *sealed*."""
        async with self._runtime.pool.acquire() as connection:
            row = await connection.fetchrow(
                "SELECT s.id, s.kid, s.certificate_pem, s.purpose, s.status, d.name"
                " FROM seals s JOIN departments d ON d.code = s.department"
                " WHERE s.department = $1 AND s.valid_to > now()"
                " ORDER BY (s.status = 'active') DESC, s.issued_at DESC LIMIT 1",
                department,
            )
        if row is None:
            raise SealUnavailable(f"{department} has no seal; two admins must issue one first")
        if row["status"] != "active":
            self.forget(row["id"])
            await self.record_refusal(department, row["id"])
            raise SealRevoked(f"the seal of {department} is revoked")
        signer, appearance = self._signer(
            row["id"], row["kid"], row["certificate_pem"], row["name"], row["purpose"]
        )
        async with self._runtime.pool.acquire() as connection:
            serials = await next_tsa_serials(connection, TSA_SERIALS_PER_SEAL)
        crls = (
            await self._crls.get(pki.ROOT_CA_NAME),
            await self._crls.get(pki.SEAL_CA_NAME),
        )
        await self._check_existing_seals(draft, crls)
        await self._pool.aseal_file(
            draft,
            sealed,
            signer,
            appearance,
            SealOptions(
                level=self._level,
                trust_roots=(self._root_der,),
                crls=crls,
                reason=reason,
                max_bytes=self._runtime.settings.max_document_bytes,
            ),
            timestamper=self._timestamper.for_pades(serials),
        )
        return SealOutcome(sealed, row["id"])

    async def _check_existing_seals(self, pdf: Path, crls: tuple[bytes, ...]) -> None:
        """Verify the upload as /v1/verify would before our seal goes on it."""
        async with self._runtime.pool.acquire() as connection:
            known = await registered_seals(connection)
        report = await self._pool.averify(
            pdf,
            trust_roots=(self._root_der,),
            crls=crls,
            known_seals=known,
            max_bytes=self._runtime.settings.max_document_bytes,
            seal_issuer=self._seal_issuer,
        )
        refuse_unless_sound(report)


SEALER: web.AppKey[DepartmentSealer] = web.AppKey("sealer", DepartmentSealer)
SEAL_POOL: web.AppKey[SealWorkerPool] = web.AppKey("seal_pool", SealWorkerPool)


def install_sealer(app: web.Application, runtime: Runtime, crls: CrlCache) -> None:
    """A worker pool for the app's lifetime; the sealer that uses it."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        pool = SealWorkerPool(workers=runtime.settings.seal_workers)
        app[SEAL_POOL] = pool
        app[SEALER] = DepartmentSealer(runtime, pool, crls)
        try:
            yield
        finally:
            await asyncio.to_thread(pool.close)

    app.cleanup_ctx.append(lifetime)
