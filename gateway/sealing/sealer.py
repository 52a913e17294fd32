"""Department seals at run time: issuing one, and applying the active one to a document.

The seal's private key never leaves this process: a worker (memory and CPU limited)
parses the uploaded PDF and lays out the sealed revision, this process signs the digest
with the key from the key store, and the in-process TSA stamps it (B-LT by default, with
our own CRLs embedded so validators need no network).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from pathlib import Path

import asyncpg
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.exchange.service import SealOutcome
from gateway.pki.crls import CrlCache
from gateway.runtime import Runtime, clock_of
from gateway.sealing.workers import Workers
from keys import keystore as keystore_module
from keys import pki
from keys.clock import SYSTEM_CLOCK, Clock
from keys.codes import Code, CodedError
from keys.platform import PlatformPki
from seals.image import render_seal
from seals.pades import Level, SealAppearance, SealOptions, SealPosition
from seals.pool import WorkerLimits
from seals.signer import InMemorySealKey, SealSigner
from seals.verify import SealIssuer, VerificationReport
from storage import audit_events as events
from storage import directory
from storage import seals as seal_rows
from storage.audit_outbox import record_event
from storage.db import DbConnection
from storage.pki import next_tsa_serials
from storage.vocabulary import SealStatus

DEFAULT_PURPOSE = "公文专用章"


class SealUnavailable(CodedError):
    code: str = Code.NO_ACTIVE_SEAL


class SealRevoked(SealUnavailable):
    code = Code.SEAL_REVOKED


class ExistingSealInvalid(CodedError):
    """The upload already carries seals and they do not all check out: sealing it would
    lend our seal to whatever was changed after them."""

    code = Code.EXISTING_SEAL_INVALID


def seal_issuer(platform: PlatformPki) -> SealIssuer:
    """Seals are certificates of the platform's seal CA under the seal policy."""
    return SealIssuer(
        ca_certs=(platform.seal_ca.cert.public_bytes(serialization.Encoding.DER),),
        policy_oid=pki.SEAL_POLICY_OID,
    )


async def registered_seals(connection: DbConnection) -> dict[str, str]:
    """Certificate SHA-256 → seal id of every seal the platform issued (also those from
    before seal certificates carried the seal policy, which verification accepts so)."""
    known = {}
    for seal_id, pem in await seal_rows.seal_certificates(connection):
        der = _der(pem)
        known[hashlib.sha256(der).hexdigest()] = str(seal_id)
    return known


def _der(certificate_pem: str) -> bytes:
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    return certificate.public_bytes(serialization.Encoding.DER)


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


async def issue_seal(
    platform: PlatformPki,
    connection: DbConnection,
    *,
    department: str,
    purpose: str,
    request_id: uuid.UUID,
    now: datetime,
) -> seal_rows.Seal:
    """A new key in the key store and a certificate from the seal CA; one ``seals`` row."""
    unit = await directory.get_department(connection, department)
    seal_id = uuid.uuid4()
    purpose_of_key = keystore_module.seal_purpose(str(seal_id))
    kid = platform.keystore.generate(purpose_of_key, "ES256", now=now)
    private = platform.keystore.get_private(purpose_of_key, kid)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    certificate = platform.issue_seal_certificate(
        private.public_key(),
        department_name_zh=unit.name,
        department_code=unit.code,
        seal_id=str(seal_id),
        now=now,
        seal_name=purpose,
    )
    seal = seal_rows.Seal(
        id=seal_id,
        department=department,
        purpose=purpose,
        kid=kid,
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        serial_number=certificate.serial_number,
        status=SealStatus.ACTIVE,
        valid_from=certificate.not_valid_before_utc,
        valid_to=certificate.not_valid_after_utc,
        issued_at=now,
        revoked_at=None,
        revocation_reason=None,
        invalid_since=None,
        request_id=request_id,
    )
    await seal_rows.insert_seal(connection, seal)
    return seal


class SealSigners:
    """The signer and stamp image of each seal, loaded from the key store on first use.

    Shared by the sealer (which signs with them) and the sealing service (which drops a
    seal's signer the moment this process approves its revocation)."""

    def __init__(self, platform: PlatformPki) -> None:
        self._keystore = platform.keystore
        self._seal_ca_der = platform.seal_ca.cert.public_bytes(serialization.Encoding.DER)
        self._cached: dict[uuid.UUID, tuple[SealSigner, SealAppearance]] = {}

    def of(self, named: seal_rows.NamedSeal) -> tuple[SealSigner, SealAppearance]:
        seal = named.seal
        cached = self._cached.get(seal.id)
        if cached is None:
            key = self._keystore.get_private(keystore_module.seal_purpose(str(seal.id)), seal.kid)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            signer = SealSigner(
                InMemorySealKey(key), _der(seal.certificate_pem), (self._seal_ca_der,)
            )
            image = render_seal(named.department_name, seal.purpose)
            cached = self._cached[seal.id] = (signer, SealAppearance(image))
        return cached

    def forget(self, seal_id: uuid.UUID) -> None:
        """Never sign with this seal again (it was revoked)."""
        self._cached.pop(seal_id, None)


# A seal takes one token; the second serial covers the retry with a bigger container.
TSA_SERIALS_PER_SEAL = 2


class DepartmentSealer:
    """The gateway's :class:`gateway.exchange.service.DocumentSealer`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        platform: PlatformPki,
        crls: CrlCache,
        signers: SealSigners,
        *,
        workers: Workers,
        max_document_bytes: int,
        level: Level = Level.B_LT,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._db = pool
        self._crls = crls
        self._signers = signers
        self._workers = workers
        self._max_bytes = max_document_bytes
        self._level = level
        self._clock = clock
        self._timestamper = platform.timestamper
        self._root_der = platform.root_cert.public_bytes(serialization.Encoding.DER)
        self._seal_issuer = seal_issuer(platform)

    async def record_refusal(self, department: str, seal_id: uuid.UUID) -> None:
        """``seal.use_refused`` for e-supervision, on a connection of its own so it commits
        even though the caller's transaction (if any) is about to fail."""
        async with self._db.acquire() as connection:
            await record_event(
                connection,
                events.seal_use_refused(self._clock(), department=department, seal_id=seal_id),
            )

    async def seal(self, department: str, draft: Path, sealed: Path, *, reason: str) -> SealOutcome:
        """Holds no database connection while the document is sealed: sealing waits for a
        worker, and a pool drained by waiting sends would starve everything else.

        The worker reads *draft* and writes *sealed* (spool files); this process only
        writes the signature at its offset in *sealed*."""
        async with self._db.acquire() as connection:
            named = await seal_rows.seal_for_sealing(connection, department)
            serials = await next_tsa_serials(connection, TSA_SERIALS_PER_SEAL)
        if named is None:
            raise SealUnavailable(f"{department} has no seal; two admins must issue one first")
        if named.seal.status != SealStatus.ACTIVE:
            self._signers.forget(named.seal.id)
            await self.record_refusal(department, named.seal.id)
            raise SealRevoked(f"the seal of {department} is revoked")
        signer, appearance = self._signers.of(named)
        crls = (
            await self._crls.get(pki.ROOT_CA_NAME),
            await self._crls.get(pki.SEAL_CA_NAME),
        )
        await self._check_existing_seals(draft, crls)
        options = SealOptions(
            level=self._level,
            trust_roots=(self._root_der,),
            crls=crls,
            reason=reason,
            max_bytes=self._max_bytes,
        )
        await self._workers.pool.aseal_file(
            draft,
            sealed,
            signer,
            appearance,
            options,
            timestamper=self._timestamper.for_pades(serials),
        )
        return SealOutcome(sealed, named.seal.id)

    async def seal_position(self, draft: Path) -> SealPosition:
        """Where :meth:`seal` would put the seal on *draft* (parsed in a worker), for the
        seal keeper's preview before 用印."""
        return await self._workers.pool.aposition(draft, self._max_bytes)

    async def _check_existing_seals(self, pdf: Path, crls: tuple[bytes, ...]) -> None:
        """Verify the upload as /v1/verify would before our seal goes on it."""
        async with self._db.acquire() as connection:
            known = await registered_seals(connection)
        report = await self._workers.pool.averify(
            pdf,
            trust_roots=(self._root_der,),
            crls=crls,
            known_seals=known,
            max_bytes=self._max_bytes,
            seal_issuer=self._seal_issuer,
        )
        refuse_unless_sound(report)


SEALER: web.AppKey[DepartmentSealer] = web.AppKey("sealer", DepartmentSealer)


def install_sealer(
    app: web.Application, runtime: Runtime, crls: CrlCache, signers: SealSigners
) -> DepartmentSealer:
    """The sealer under :data:`SEALER` from the start; its workers for the app's lifetime."""
    workers = Workers(
        runtime.settings.seal_workers,
        WorkerLimits(cpu_seconds_per_task=runtime.settings.worker_cpu_seconds),
    )
    sealer = DepartmentSealer(
        runtime.pool,
        runtime.pki,
        crls,
        signers,
        workers=workers,
        max_document_bytes=runtime.settings.max_document_bytes,
        clock=clock_of(app),
    )
    app[SEALER] = sealer
    app.cleanup_ctx.append(workers.lifetime)
    return sealer
