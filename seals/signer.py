"""The only door to a seal's private key: a digest goes in, an ECDSA signature comes out.

keys/ implements :class:`SealKey` over its encrypted keystore (or an HSM); the sealing code
never sees key bytes, only this interface.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, Signer
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

# DER ECDSA P-256 signature upper bound (two 33-byte INTEGERs plus headers).
_ECDSA_P256_MAX_SIG = 72
# DER of the OIDs the fast path writes itself.
_OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")
_OID_MESSAGE_DIGEST = bytes.fromhex("06092a864886f70d010904")
_OID_SIGNATURE_TST = bytes.fromhex("060b2a864886f70d010910020e")


def _tlv(tag: int, content: bytes) -> bytes:
    """One DER element: tag, definite length, content."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


@dataclass(frozen=True)
class _CmsTemplate:
    """Pre-encoded parts of this seal's CMS container; only digest and signature vary."""

    signed_data_head: bytes
    signer_info_head: bytes
    attrs_before_digest: bytes
    attrs_after_digest: bytes
    signature_algorithm: bytes


@runtime_checkable
class SealKey(Protocol):
    """A P-256 key that signs a precomputed SHA-256 digest (ASN.1 DER ECDSA-Sig-Value)."""

    def sign_sha256_digest(self, digest: bytes) -> bytes: ...


class InMemorySealKey:
    """A SealKey over a ``cryptography`` P-256 private key: one held in process memory, or a
    token key of :mod:`keys.hsm` whose ``sign`` runs in the token. The repr never shows it."""

    __slots__ = ("_key",)

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("seal keys must be ECDSA P-256")
        self._key = key

    @classmethod
    def from_pkcs8_der(cls, der: bytes) -> InMemorySealKey:
        key = serialization.load_der_private_key(der, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("seal keys must be ECDSA P-256")
        return cls(key)

    def sign_sha256_digest(self, digest: bytes) -> bytes:
        if len(digest) != 32:
            raise ValueError("expected a SHA-256 digest")
        return self._key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))

    def __repr__(self) -> str:
        return "InMemorySealKey(<hidden>)"

    def __reduce__(self) -> Any:
        raise TypeError("seal keys are not picklable; pass PKCS#8 bytes explicitly")


class SealSigner(Signer):
    """A pyhanko Signer for one seal: certificate, CA chain, and the SealKey.

    Everything derived from the certificate is parsed once here and reused for every
    document the seal signs.
    """

    def __init__(
        self,
        key: SealKey,
        certificate_der: bytes,
        chain_der: Iterable[bytes] = (),
    ) -> None:
        chain_der = tuple(chain_der)
        cert = asn1_x509.Certificate.load(certificate_der)
        chain = [asn1_x509.Certificate.load(c) for c in chain_der]
        super().__init__(
            signing_cert=cert,
            cert_registry=SimpleCertificateStore.from_certs(chain),  # type: ignore[no-untyped-call]
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
            embed_roots=False,
        )
        self._seal_key = key
        self._template: _CmsTemplate | None = None
        self.issuer_der: bytes = cert.issuer.dump()
        self._cert = cert
        self.certificate_der = certificate_der
        self.chain_der = tuple(chain_der)

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if digest_algorithm != "sha256":
            raise ValueError("seals sign with SHA-256 only")
        if dry_run:
            return bytes(_ECDSA_P256_MAX_SIG)
        return self._seal_key.sign_sha256_digest(hashlib.sha256(data).digest())

    async def async_sign(
        self,
        data_digest: bytes,
        digest_algorithm: str,
        dry_run: bool = False,
        use_pades: bool = False,
        timestamper: TimeStamper | None = None,
        signed_attr_settings: PdfCMSSignedAttributes | None = None,
        is_pdf_sig: bool = True,
        encap_content_info: Any = None,
    ) -> cms.ContentInfo:
        """PAdES containers from pre-encoded parts; anything unusual goes through pyhanko.

        pyhanko rebuilds and re-encodes the certificates, the signing-certificate-v2
        attribute and the algorithm identifiers for every signature. They never change
        for one seal, so their DER is taken once from a container pyhanko made itself.
        """
        plain = (
            use_pades
            and is_pdf_sig
            and not dry_run
            and encap_content_info is None
            and digest_algorithm == "sha256"
            and len(data_digest) == 32
            and self.signed_attr_prov_spec is None
            and self.unsigned_attr_prov_spec is None
            and (signed_attr_settings is None or _is_default(signed_attr_settings))
        )
        if not plain:
            result: cms.ContentInfo = await super().async_sign(
                data_digest,
                digest_algorithm,
                dry_run=dry_run,
                use_pades=use_pades,
                timestamper=timestamper,
                signed_attr_settings=signed_attr_settings,
                is_pdf_sig=is_pdf_sig,
                encap_content_info=encap_content_info,
            )
            return result
        template = self._template or await self._build_template()
        digest_attr = _tlv(0x30, _OID_MESSAGE_DIGEST + _tlv(0x31, _tlv(0x04, data_digest)))
        attrs = template.attrs_before_digest + digest_attr + template.attrs_after_digest
        signature = await self.async_sign_raw(_tlv(0x31, attrs), "sha256")
        unsigned = b""
        if timestamper is not None:
            token = await timestamper.async_timestamp(hashlib.sha256(signature).digest(), "sha256")
            unsigned = _tlv(0xA1, _tlv(0x30, _OID_SIGNATURE_TST + _tlv(0x31, token.dump())))
        signer_info = _tlv(
            0x30,
            template.signer_info_head
            + _tlv(0xA0, attrs)
            + template.signature_algorithm
            + _tlv(0x04, signature)
            + unsigned,
        )
        signed_data = _tlv(0x30, template.signed_data_head + _tlv(0x31, signer_info))
        return cms.ContentInfo.load(_tlv(0x30, _OID_SIGNED_DATA + _tlv(0xA0, signed_data)))

    async def _build_template(self) -> _CmsTemplate:
        sample: cms.ContentInfo = await super().async_sign(
            bytes(32), "sha256", dry_run=True, use_pades=True
        )
        signed_data = sample["content"]
        signer_info = signed_data["signer_infos"][0]
        attrs = [a.dump() for a in signer_info["signed_attrs"]]
        kinds = [a["type"].dotted for a in signer_info["signed_attrs"]]
        at = kinds.index("1.2.840.113549.1.9.4")
        template = _CmsTemplate(
            signed_data_head=b"".join(
                signed_data[k].dump()
                for k in ("version", "digest_algorithms", "encap_content_info", "certificates")
            ),
            signer_info_head=b"".join(
                signer_info[k].dump() for k in ("version", "sid", "digest_algorithm")
            ),
            attrs_before_digest=b"".join(attrs[:at]),
            attrs_after_digest=b"".join(attrs[at + 1 :]),
            signature_algorithm=signer_info["signature_algorithm"].dump(),
        )
        self._template = template
        return template

    def __repr__(self) -> str:
        return f"SealSigner(subject={self._cert.subject.human_friendly!r})"


def _is_default(settings: PdfCMSSignedAttributes) -> bool:
    # PAdES ignores signing_time; anything else changes the signed attributes.
    return settings.cades_signed_attrs is None and settings.adobe_revinfo_attr is None
