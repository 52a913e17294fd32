"""Sealing and verification throughput against plain pyhanko, measured in the same run.

Plain and our rounds alternate so both see the same machine load; during plain rounds the
parser speed-ups of ``seals._speedups`` are uninstalled, so the baseline is plain pyhanko.
Pairs: B-B against ``sign_pdf`` B-B; B-LT against ``sign_pdf`` B-LT with the same TSA and
CRLs, once with pyhanko's test TSA and once as the gateway seals (a seal of a fresh platform
PKI, its TSA through ``InProcessTimeStamper``); ``verify`` against ``validate_pdf_signature``;
one token of the platform TSA against one of pyhanko's test TSA. Usage:

    .venv/bin/python bench/bench_seal.py [--seconds 6]

Prints the ratios and writes bench/results/seal.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keys.tsa import InProcessTimeStamper
    from seals.signer import SealSigner
    from seals.verify import SealIssuer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "seal.json"
sys.path.insert(0, str(ROOT))


class Meter:
    """Accumulates the time of one operation over alternating rounds."""

    def __init__(self, fn: Callable[[], object], before: Callable[[], None]) -> None:
        self.fn, self.before, self.n, self.elapsed = fn, before, 0, 0.0

    def warm(self) -> None:
        self.before()
        for _ in range(3):
            self.fn()

    def round(self, seconds: float) -> None:
        self.before()
        start = time.perf_counter()
        while True:
            self.fn()
            self.n += 1
            now = time.perf_counter()
            if now - start >= seconds:
                self.elapsed += now - start
                return

    def result(self) -> dict[str, float]:
        return {
            "n": self.n,
            "per_second": self.n / self.elapsed,
            "ms": 1000 * self.elapsed / self.n,
        }


def measure(meters: list[Meter], seconds: float, rounds: int = 6) -> list[dict[str, float]]:
    for m in meters:
        m.warm()
    for _ in range(rounds):
        for m in meters:
            m.round(seconds / rounds)
    return [m.result() for m in meters]


def plain_pyhanko(
    material: dict[str, bytes], crls: list[bytes], timestamper: object
) -> tuple[Callable[[], bytes], Callable[[], None], Callable[[], bytes]]:
    """Plain pyhanko: sign_pdf at B-B, sign_pdf at B-LT with the given time-stamper and CRLs
    (revocation info embedded, nothing fetched), and validate_pdf_signature; same key, file."""
    from asn1crypto import crl, keys, x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko.sign.signers.pdf_signer import DSSContentSettings, SigDSSPlacementPreference
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    signer = signers.SimpleSigner(
        x509.Certificate.load(material["cert"]),
        keys.PrivateKeyInfo.load(material["key"]),
        SimpleCertificateStore.from_certs([x509.Certificate.load(material["chain"])]),
    )
    pdf = material["pdf"]
    meta = signers.PdfSignatureMetadata(
        field_name="Signature1", subfilter=SigSeedSubFilter.PADES, md_algorithm="sha256"
    )
    root = x509.Certificate.load(material["root"])
    sealed = material["sealed"]

    def sign() -> bytes:
        out: io.BytesIO = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer)
        return out.getvalue()

    def validate() -> None:
        reader = PdfFileReader(io.BytesIO(sealed))
        vc = ValidationContext(trust_roots=[root], allow_fetching=False)
        status = validate_pdf_signature(reader.embedded_signatures[0], vc)
        assert status.bottom_line

    crl_objects = [crl.CertificateList.load(c) for c in crls]

    def sign_blt() -> bytes:
        lt_meta = signers.PdfSignatureMetadata(
            field_name="Signature1",
            subfilter=SigSeedSubFilter.PADES,
            md_algorithm="sha256",
            embed_validation_info=True,
            use_pades_lta=False,
            validation_context=ValidationContext(
                trust_roots=[root],
                crls=crl_objects,
                allow_fetching=False,
                revocation_mode="require",
            ),
            # As the gateway places it: in the signature's revision, so the signature still
            # covers the whole file (pyhanko's default adds a revision after it).
            dss_settings=DSSContentSettings(
                placement=SigDSSPlacementPreference.TOGETHER_WITH_SIGNATURE, include_vri=False
            ),
        )
        out: io.BytesIO = signers.sign_pdf(
            IncrementalPdfFileWriter(io.BytesIO(pdf)),
            lt_meta,
            signer,
            timestamper=timestamper,  # type: ignore[arg-type]
        )
        return out.getvalue()

    return sign, validate, sign_blt


@dataclass
class PlatformSealing:
    """A seal issued by the gateway's own platform PKI, and its TSA through
    ``InProcessTimeStamper``: what the gateway seals B-LT with."""

    signer: SealSigner
    material: dict[str, bytes]
    crls: list[bytes]
    timestamper: InProcessTimeStamper
    issuer: SealIssuer


def platform_sealing() -> PlatformSealing:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from keys import pki
    from keys.master import load_or_create_master_key
    from keys.platform import ensure_platform_pki
    from keys.tsa import InProcessTimeStamper, MonotonicSerials
    from seals.signer import InMemorySealKey, SealSigner
    from seals.verify import SealIssuer

    der = serialization.Encoding.DER
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="bench-seal-pki-") as tmp:
        data_dir = Path(tmp)
        platform_pki = ensure_platform_pki(
            data_dir,
            public_url="https://bench.invalid:8443",
            hostnames=["localhost"],
            master_key=load_or_create_master_key(data_dir / "master.key"),
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = platform_pki.issue_seal_certificate(
            key.public_key(),
            department_name_zh="市财政局",
            department_code="yl-czj",
            seal_id=str(uuid.uuid4()),
            now=now,
        )
        crls = [platform_pki.root_crl(), platform_pki.build_crl(pki.SEAL_CA_NAME, [], now=now)]
        authority = platform_pki.timestamper.authority
        chain = platform_pki.seal_ca.cert.public_bytes(der)
        root = platform_pki.root_cert.public_bytes(der)
    material = {
        "cert": cert.public_bytes(der),
        "chain": chain,
        "root": root,
        "key": key.private_bytes(
            der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    }
    signer = SealSigner(InMemorySealKey(key), material["cert"], [chain])
    return PlatformSealing(
        signer,
        material,
        crls,
        InProcessTimeStamper(authority, MonotonicSerials()),
        SealIssuer(ca_certs=(chain,), policy_oid=pki.SEAL_POLICY_OID),
    )


def pdfsig_ok(nss: Path, data: bytes) -> bool:
    path = nss / "check.pdf"
    path.write_bytes(data)
    out = subprocess.run(
        ["pdfsig", "-nssdir", f"sql:{nss}", str(path)], capture_output=True, text=True
    ).stdout
    last = out.split("Signature #")[-1]
    return (
        "Signature is Valid." in last
        and "Certificate is Trusted." in last
        and "Total document signed" in last
        and "Not total" not in last
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0, help="time per comparison")
    args = parser.parse_args()

    from cryptography.hazmat.primitives import serialization

    from seals import _speedups
    from seals._aio import run_sync
    from seals.image import render_seal
    from seals.pades import Level, SealAppearance, SealOptions, seal_pdf
    from seals.verify import verify
    from tests.seals.seal_corpus import reportlab_pdf
    from tests.seals.seal_pki import SealTestPki

    pki = SealTestPki.create()
    seal = pki.issue_seal("市财政局")
    pdf = reportlab_pdf(1)
    signer = pki.signer(seal)
    appearance = SealAppearance(render_seal("市财政局"))
    root = pki.root_der()
    crls = pki.crls()
    tsa = pki.timestamper()
    sealed = seal_pdf(pdf, signer, appearance)

    def ours_sign() -> bytes:
        return seal_pdf(pdf, signer, appearance)

    def ours_verify() -> None:
        assert verify(sealed, [root], seal_issuer=pki.seal_issuer).valid

    def ours_bt() -> bytes:
        return seal_pdf(pdf, signer, appearance, SealOptions(level=Level.B_T), timestamper=tsa)

    def ours_blt() -> bytes:
        return seal_pdf(
            pdf,
            signer,
            appearance,
            SealOptions(level=Level.B_LT, trust_roots=(root,), crls=tuple(crls)),
            timestamper=tsa,
        )

    plain_sign, plain_validate, plain_blt = plain_pyhanko(
        {
            "pdf": pdf,
            "sealed": sealed,
            "root": root,
            "cert": seal.cert.public_bytes(serialization.Encoding.DER),
            "chain": pki.seal_ca.cert.public_bytes(serialization.Encoding.DER),
            "key": seal.key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        },
        crls,
        tsa,
    )
    plain_mode, our_mode = _speedups.uninstall, _speedups.install
    plain_mode()
    plain_sample = plain_sign()
    plain_blt_sample = plain_blt()
    sign_rates = measure([Meter(plain_sign, plain_mode), Meter(ours_sign, our_mode)], args.seconds)
    verify_rates = measure(
        [Meter(plain_validate, plain_mode), Meter(ours_verify, our_mode)], args.seconds
    )
    # B-LT, the level the gateway seals at, both sides with the same (pyhanko test) TSA.
    blt_rates = measure([Meter(plain_blt, plain_mode), Meter(ours_blt, our_mode)], args.seconds)
    digest = bytes(32)

    def tsa_only() -> object:
        return run_sync(tsa.async_timestamp(digest, "sha256"))

    # B-LT as the gateway seals: a seal of the platform PKI, the platform TSA through
    # InProcessTimeStamper; plain sign_pdf gets the same key, file, CRLs and time-stamper.
    own = platform_sealing()
    own_root = own.material["root"]
    _, _, plain_blt_own = plain_pyhanko(
        {**own.material, "pdf": pdf, "sealed": sealed}, own.crls, own.timestamper
    )

    def ours_blt_own() -> bytes:
        return seal_pdf(
            pdf,
            own.signer,
            appearance,
            SealOptions(level=Level.B_LT, trust_roots=(own_root,), crls=tuple(own.crls)),
            timestamper=own.timestamper,
        )

    plain_mode()
    plain_blt_own_sample = plain_blt_own()
    our_mode()
    ours_blt_own_sample = ours_blt_own()
    own_rates = measure(
        [Meter(plain_blt_own, plain_mode), Meter(ours_blt_own, our_mode)], args.seconds
    )
    platform_stamper = own.timestamper

    def platform_tsa_only() -> object:
        return run_sync(platform_stamper.async_timestamp(digest, "sha256"))

    level_rates = measure(
        [
            Meter(ours_bt, our_mode),
            Meter(ours_blt, our_mode),
            Meter(tsa_only, our_mode),
            Meter(platform_tsa_only, our_mode),
        ],
        args.seconds,
    )
    our_mode()

    with tempfile.TemporaryDirectory() as tmp:
        nss = Path(tmp)
        subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True)
        (nss / "root.pem").write_bytes(pki.root.pem)
        subprocess.run(
            [
                *("certutil", "-A", "-d", f"sql:{nss}", "-n", "root", "-t", "CT,C,C"),
                *("-i", str(nss / "root.pem")),
            ],
            check=True,
        )
        in_pdfsig = {
            "b_b": pdfsig_ok(nss, ours_sign()),
            "b_t": pdfsig_ok(nss, ours_bt()),
            "b_lt": pdfsig_ok(nss, ours_blt()),
            "plain_b_b": pdfsig_ok(nss, plain_sample),
            "plain_b_lt": pdfsig_ok(nss, plain_blt_sample),
        }
    in_verify = all(
        verify(d, [root], crls, seal_issuer=pki.seal_issuer).valid
        for d in (ours_sign(), ours_bt(), ours_blt())
    )
    # Both sides of the platform-TSA pair must produce a valid B-LT seal.
    own_valid = {
        name: verify(d, [own_root], own.crls, seal_issuer=own.issuer).valid
        for name, d in (("ours", ours_blt_own_sample), ("plain", plain_blt_own_sample))
    }

    ratios = {
        "seal_b_b_vs_sign_pdf": sign_rates[1]["per_second"] / sign_rates[0]["per_second"],
        "seal_b_lt_vs_sign_pdf_b_lt_same_test_tsa": blt_rates[1]["per_second"]
        / blt_rates[0]["per_second"],
        "seal_b_lt_vs_sign_pdf_b_lt_platform_tsa": own_rates[1]["per_second"]
        / own_rates[0]["per_second"],
        "verify_vs_validate_pdf_signature": verify_rates[1]["per_second"]
        / verify_rates[0]["per_second"],
    }
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "seconds_per_comparison": args.seconds,
        "plain_pyhanko": {
            "sign_pdf_b_b": sign_rates[0],
            "sign_pdf_b_lt_test_tsa": blt_rates[0],
            "sign_pdf_b_lt_platform_tsa": own_rates[0],
            "validate_pdf_signature": verify_rates[0],
        },
        "ours": {
            "seal_b_b_visible_certifying": sign_rates[1],
            "verify": verify_rates[1],
            "seal_b_t_in_process_tsa": level_rates[0],
            "seal_b_lt_in_process_tsa": level_rates[1],
            "seal_b_lt_test_tsa_paired": blt_rates[1],
            "seal_b_lt_platform_tsa": own_rates[1],
            "test_tsa_timestamp_alone": level_rates[2],
            "platform_tsa_in_process_timestamp_alone": level_rates[3],
        },
        "ratios": ratios,
        "outputs_valid_in_pdfsig": in_pdfsig,
        "outputs_valid_in_verify": in_verify,
        "platform_tsa_b_lt_valid_in_verify": own_valid,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    rows = [
        ("plain sign_pdf B-B", sign_rates[0]),
        ("seal_pdf B-B (visible, certifying)", sign_rates[1]),
        ("plain validate_pdf_signature", verify_rates[0]),
        ("verify()", verify_rates[1]),
        ("plain sign_pdf B-LT (test TSA)", blt_rates[0]),
        ("seal_pdf B-LT (test TSA), paired", blt_rates[1]),
        ("plain sign_pdf B-LT (platform TSA)", own_rates[0]),
        ("seal_pdf B-LT (platform PKI and TSA)", own_rates[1]),
        ("seal_pdf B-T (in-process TSA)", level_rates[0]),
        ("seal_pdf B-LT (in-process TSA)", level_rates[1]),
        ("  of which: test TSA, one token", level_rates[2]),
        ("platform TSA, InProcessTimeStamper", level_rates[3]),
    ]
    for label, rate in rows:
        print(f"{label:36} {rate['per_second']:8.1f}/s {rate['ms']:7.2f} ms")
    print(f"{'B-B sealing ratio':36} {ratios['seal_b_b_vs_sign_pdf']:8.2f}x")
    print(
        f"{'B-LT, test TSA, sealing ratio':36}"
        f" {ratios['seal_b_lt_vs_sign_pdf_b_lt_same_test_tsa']:8.2f}x"
    )
    print(
        f"{'B-LT, platform TSA (target >= 5)':36}"
        f" {ratios['seal_b_lt_vs_sign_pdf_b_lt_platform_tsa']:8.2f}x"
    )
    print(f"{'verify ratio (target >= 3)':36} {ratios['verify_vs_validate_pdf_signature']:8.2f}x")
    print(f"outputs valid in pdfsig: {in_pdfsig}; in verify(): {in_verify}")
    print(f"platform-TSA B-LT outputs valid in verify(): {own_valid}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
