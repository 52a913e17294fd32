"""An RFC 3161 time-stamp authority, pure: a TimeStampReq in, a signed TimeStampResp out.

The caller supplies the clock and the serial number (a PostgreSQL sequence in the gateway, so
several processes never reuse one; :class:`MonotonicSerials` for a single process and tests).
:class:`Timestamper` is the one way the platform stamps: a client's request, a token over our
own data (receipts, audit checkpoints) and seals all go through it.
Protocol-level problems never raise: the reply is a ``rejection`` with the RFC 3161 failInfo
(``badAlg`` for an unsupported hash, ``badDataFormat`` for an unreadable request, ...), which is
what a time-stamp client expects to receive over HTTP.

Policy OID: sealhub has no IANA private enterprise number, so its OIDs live under a UUID arc
(ITU-T X.667 ``2.25.<uuid>``), which needs no registration and cannot collide.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.sign.timestamps.api import TimeStamper

from keys.clock import SYSTEM_CLOCK, Clock
from keys.codes import Code, CodedError

SEALHUB_OID_ARC = "2.25.339029058674111970262982523425975013189"
TSA_POLICY_OID = SEALHUB_OID_ARC + ".1.1"  # sealhub time-stamp policy, version 1

# Hash algorithm (asn1crypto name) -> digest length. SHA-1 and MD5 are refused (badAlg).
SUPPORTED_HASHES: dict[str, int] = {"sha256": 32, "sha384": 48, "sha512": 64}
DEFAULT_ACCURACY = timedelta(seconds=1)


class TsaError(CodedError):
    """The authority is misconfigured or called with impossible arguments (not a client error)."""

    code = Code.TSA_ERROR


class TsaResponseError(CodedError):
    """A time-stamp reply was refused or is not a reply at all."""

    code = Code.TSA_REJECTED


@dataclass(frozen=True, repr=False)
class TimeStampAuthority:
    """The TSA's key and certificate, and what it promises (policy, accuracy)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)
    # Certificates sent after the TSA certificate when a request asks for certificates
    # (intermediates only; a relying party brings its own root).
    extra_certs: tuple[x509.Certificate, ...] = ()
    policy_oid: str = TSA_POLICY_OID
    accuracy: timedelta = DEFAULT_ACCURACY

    def __post_init__(self) -> None:
        if self.cert.public_key() != self.key.public_key():
            raise TsaError("the TSA key does not match the TSA certificate")
        if not isinstance(self.key.curve, ec.SECP256R1):
            raise TsaError("the TSA key must be ECDSA P-256")
        try:
            eku = self.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        except x509.ExtensionNotFound:
            raise TsaError("the TSA certificate lacks the timeStamping key purpose") from None
        if not eku.critical or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
            raise TsaError("the TSA certificate must have only a critical timeStamping EKU")
        if self.accuracy <= timedelta(0):
            raise TsaError("accuracy must be positive")

    def __repr__(self) -> str:
        return f"TimeStampAuthority(subject={self.cert.subject.rfc4514_string()!r})"


class TimeStampResponse(core.Sequence):  # type: ignore[misc]
    """TimeStampResp as RFC 3161 defines it: asn1crypto 1.5 makes the token mandatory, which
    leaves no way to encode a rejection."""

    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _rejection(fail_info: str, text: str) -> TimeStampResponse:
    return TimeStampResponse(
        {
            "status": tsp.PKIStatusInfo(
                {
                    "status": "rejection",
                    "status_string": [text],
                    "fail_info": tsp.PKIFailureInfo({fail_info}),
                }
            )
        }
    )


def _accuracy(delta: timedelta) -> tsp.Accuracy:
    micros_total = delta // timedelta(microseconds=1)
    seconds, rest = divmod(micros_total, 1_000_000)
    millis, micros = divmod(rest, 1000)
    value: dict[str, int] = {}
    if seconds:
        value["seconds"] = seconds
    if millis:
        value["millis"] = millis
    if micros:
        value["micros"] = micros
    return tsp.Accuracy(value)


def _signing_certificate_v2(cert: x509.Certificate) -> tsp.SigningCertificateV2:
    """ESSCertIDv2 (RFC 5816): binds the signature to this exact TSA certificate."""
    asn1 = _asn1_cert(cert)
    return tsp.SigningCertificateV2(
        {
            "certs": [
                {
                    # hash_algorithm left at its DER default, SHA-256
                    "cert_hash": hashlib.sha256(asn1.dump()).digest(),
                    "issuer_serial": {
                        "issuer": [asn1_x509.GeneralName({"directory_name": asn1.issuer})],
                        "serial_number": asn1.serial_number,
                    },
                }
            ]
        }
    )


def _attribute(name: str, value: Any) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": name, "values": [value]})


def _check_request(authority: TimeStampAuthority, req: Any) -> TimeStampResponse | None:
    """A rejection for whatever in *req* we cannot honour, or None."""
    if req["version"].native != "v1":
        return _rejection("bad_request", "only version 1 requests are supported")
    imprint = req["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    if algorithm not in SUPPORTED_HASHES:
        return _rejection("bad_alg", f"hash algorithm {algorithm} is not accepted")
    parameters = imprint["hash_algorithm"]["parameters"]
    if parameters.native is not None:
        return _rejection("bad_alg", "hash algorithm parameters must be absent or NULL")
    if len(imprint["hashed_message"].native) != SUPPORTED_HASHES[algorithm]:
        return _rejection("bad_data_format", "the imprint length does not match its algorithm")
    requested_policy = req["req_policy"].native
    if requested_policy is not None and requested_policy != authority.policy_oid:
        return _rejection("unaccepted_policy", f"only policy {authority.policy_oid} is offered")
    if req["extensions"].native:
        return _rejection("unaccepted_extension", "request extensions are not supported")
    return None


def _token(
    authority: TimeStampAuthority, req: Any, *, serial_number: int, now: datetime
) -> cms.ContentInfo:
    asn1_cert = _asn1_cert(authority.cert)
    tst_fields: dict[str, Any] = {
        "version": "v1",
        "policy": authority.policy_oid,
        "message_imprint": req["message_imprint"],
        "serial_number": serial_number,
        "gen_time": now.astimezone(UTC),
        "accuracy": _accuracy(authority.accuracy),
        "tsa": asn1_x509.GeneralName({"directory_name": asn1_cert.subject}),
    }
    if req["nonce"].native is not None:
        tst_fields["nonce"] = req["nonce"].native
    tst_info_der = tsp.TSTInfo(tst_fields).dump()

    signed_attrs = cms.CMSAttributes(
        [
            _attribute("content_type", "tst_info"),
            _attribute("signing_time", cms.Time({"generalized_time": now.astimezone(UTC)})),
            _attribute("message_digest", hashlib.sha256(tst_info_der).digest()),
            _attribute("signing_certificate_v2", _signing_certificate_v2(authority.cert)),
        ]
    )
    # The signature covers the DER SET OF (asn1crypto sorts it), as RFC 5652 section 5.4 says.
    signature = authority.key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
    digest_algorithm = algos.DigestAlgorithm({"algorithm": "sha256"})
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": {
                        "issuer": asn1_cert.issuer,
                        "serial_number": asn1_cert.serial_number,
                    }
                }
            ),
            "digest_algorithm": digest_algorithm,
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
            "signature": signature,
        }
    )
    signed_data: dict[str, Any] = {
        "version": "v3",
        "digest_algorithms": [digest_algorithm],
        "encap_content_info": {
            "content_type": "tst_info",
            "content": core.ParsableOctetString(tst_info_der),
        },
        "signer_infos": [signer_info],
    }
    if req["cert_req"].native:
        signed_data["certificates"] = [asn1_cert] + [_asn1_cert(c) for c in authority.extra_certs]
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})


def respond_to_request(
    authority: TimeStampAuthority, req: tsp.TimeStampReq, *, serial_number: int, now: datetime
) -> TimeStampResponse:
    """The reply to a parsed request: a granted token or a rejection with failInfo."""
    if now.tzinfo is None:
        raise TsaError("now must be timezone-aware")
    if not 0 < serial_number < 2**159:
        raise TsaError("the serial number must be positive and at most 20 octets")
    if not authority.cert.not_valid_before_utc <= now < authority.cert.not_valid_after_utc:
        return _rejection("time_not_available", "the TSA certificate is not valid now")
    try:
        rejection = _check_request(authority, req)
    except (ValueError, TypeError, KeyError):
        return _rejection("bad_data_format", "the request could not be read")
    if rejection is not None:
        return rejection
    token = _token(authority, req, serial_number=serial_number, now=now)
    return TimeStampResponse({"status": {"status": "granted"}, "time_stamp_token": token})


def respond(
    authority: TimeStampAuthority, request_der: bytes, *, serial_number: int, now: datetime
) -> bytes:
    """DER TimeStampReq in, DER TimeStampResp out (what ``POST /v1/pki/tsa`` serves)."""
    try:
        req = tsp.TimeStampReq.load(request_der, strict=True)
        req.native  # noqa: B018 - parses every field now, so malformed input fails here
    except (ValueError, TypeError, KeyError):
        return bytes(_rejection("bad_data_format", "the request is not DER TimeStampReq").dump())
    reply = respond_to_request(authority, req, serial_number=serial_number, now=now)
    return bytes(reply.dump())


def token_from_response(response_der: bytes) -> cms.ContentInfo:
    """The time-stamp token of a granted reply; the refusal text otherwise."""
    try:
        response = TimeStampResponse.load(response_der, strict=True)
        response["status"]["status"].native  # noqa: B018 - a reply at all?
    except (ValueError, TypeError, KeyError):
        raise TsaResponseError("not a TimeStampResp") from None
    return _granted_token(response)


def _granted_token(response: TimeStampResponse) -> cms.ContentInfo:
    status = response["status"]["status"].native
    if status not in ("granted", "granted_with_mods"):
        texts = response["status"]["status_string"].native or []
        infos = sorted(response["status"]["fail_info"].native or [])
        raise TsaResponseError(f"time stamp refused ({', '.join(infos)}): {'; '.join(texts)}")
    return response["time_stamp_token"]


def imprint_request(data: bytes) -> tsp.TimeStampReq:
    """The request the platform makes for its own data: SHA-256 of *data*, a fresh nonce,
    and the TSA certificate asked for (so a token verifies with nothing but the root)."""
    return tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": hashlib.sha256(data).digest(),
            },
            "nonce": secrets.randbits(63),
            "cert_req": True,
        }
    )


def random_serial() -> int:
    """A serial for a token stamped without the shared sequence (audit checkpoints): the
    high bit of 127 set, so it never meets a sequence number (a bigint, at most 2**63)."""
    return (1 << 126) | secrets.randbits(126)


class _Serials:
    """Serial numbers taken beforehand (pyhanko asks for a token synchronously, so the
    database sequence cannot be read at that moment)."""

    def __init__(self, serials: Sequence[int]) -> None:
        self._left = list(serials)

    def __call__(self) -> int:
        if not self._left:
            raise TsaError("no serial number left for this seal; take more beforehand")
        return self._left.pop(0)


class Timestamper:
    """The platform TSA as the gateway uses it, for every caller alike.

    * :meth:`respond` answers a client's DER request (``POST /v1/pki/tsa``);
    * :meth:`token` stamps our own data (receipt countersignatures, audit checkpoints);
    * :meth:`for_pades` gives pyhanko a time-stamper for a seal.
    """

    def __init__(self, authority: TimeStampAuthority) -> None:
        self._authority = authority

    def __repr__(self) -> str:
        return f"Timestamper({self._authority!r})"

    @property
    def authority(self) -> TimeStampAuthority:
        return self._authority

    def respond(self, request_der: bytes, *, serial_number: int, now: datetime) -> bytes:
        """DER TimeStampReq in, DER TimeStampResp out; a bad request gets a rejection."""
        return respond(self._authority, request_der, serial_number=serial_number, now=now)

    def token(self, data: bytes, *, serial_number: int, now: datetime) -> bytes:
        """An RFC 3161 token (DER ContentInfo, certificates included) over SHA-256(*data*);
        :class:`TsaResponseError` if the authority refuses (its certificate expired)."""
        response = respond_to_request(
            self._authority, imprint_request(data), serial_number=serial_number, now=now
        )
        return bytes(_granted_token(response).dump())

    def for_pades(
        self, serials: Sequence[int], clock: Clock = SYSTEM_CLOCK
    ) -> InProcessTimeStamper:
        """pyhanko's time-stamper for one seal, stamping with *serials* in turn."""
        return InProcessTimeStamper(self._authority, _Serials(serials), clock)


class MonotonicSerials:
    """Strictly increasing serials for one process: microseconds since the epoch, or last + 1.

    Unique across restarts of one process; several processes must share a database sequence.
    """

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            candidate = int(self._clock().timestamp() * 1_000_000)
            self._last = max(self._last + 1, candidate)
            return self._last


class InProcessTimeStamper(TimeStamper):
    """pyhanko's TimeStamper answered by our authority directly (no HTTP for our own seals)."""

    def __init__(
        self,
        authority: TimeStampAuthority,
        serials: Callable[[], int],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(include_nonce=True)  # type: ignore[no-untyped-call]
        self._authority = authority
        self._serials = serials
        self._clock = clock

    def __repr__(self) -> str:
        return f"InProcessTimeStamper({self._authority!r})"

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> TimeStampResponse:
        return respond_to_request(
            self._authority, req, serial_number=self._serials(), now=self._clock()
        )
