"""Sealing and verification throughput against plain pyhanko, measured in the same run.

Plain and our rounds alternate so both see the same machine load; during plain rounds the
parser speed-ups of ``seals._speedups`` are uninstalled, so the baseline is plain pyhanko.
Usage:

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
from collections.abc import Callable
from pathlib import Path

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


def plain_pyhanko(material: dict[str, bytes]) -> tuple[Callable[[], bytes], Callable[[], None]]:
    """Plain pyhanko: sign_pdf at B-B and validate_pdf_signature, same key and file."""
    from asn1crypto import keys, x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter
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

    return sign, validate


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

    plain_sign, plain_validate = plain_pyhanko(
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
        }
    )
    plain_mode, our_mode = _speedups.uninstall, _speedups.install
    plain_mode()
    plain_sample = plain_sign()
    sign_rates = measure([Meter(plain_sign, plain_mode), Meter(ours_sign, our_mode)], args.seconds)
    verify_rates = measure(
        [Meter(plain_validate, plain_mode), Meter(ours_verify, our_mode)], args.seconds
    )
    digest = bytes(32)

    def tsa_only() -> object:
        return run_sync(tsa.async_timestamp(digest, "sha256"))

    level_rates = measure(
        [Meter(ours_bt, our_mode), Meter(ours_blt, our_mode), Meter(tsa_only, our_mode)],
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
        }
    in_verify = all(
        verify(d, [root], crls, seal_issuer=pki.seal_issuer).valid
        for d in (ours_sign(), ours_bt(), ours_blt())
    )

    ratios = {
        "seal_b_b_vs_sign_pdf": sign_rates[1]["per_second"] / sign_rates[0]["per_second"],
        "verify_vs_validate_pdf_signature": verify_rates[1]["per_second"]
        / verify_rates[0]["per_second"],
    }
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "seconds_per_comparison": args.seconds,
        "plain_pyhanko": {"sign_pdf_b_b": sign_rates[0], "validate_pdf_signature": verify_rates[0]},
        "ours": {
            "seal_b_b_visible_certifying": sign_rates[1],
            "verify": verify_rates[1],
            "seal_b_t_in_process_tsa": level_rates[0],
            "seal_b_lt_in_process_tsa": level_rates[1],
            "test_tsa_timestamp_alone": level_rates[2],
        },
        "ratios": ratios,
        "outputs_valid_in_pdfsig": in_pdfsig,
        "outputs_valid_in_verify": in_verify,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    rows = [
        ("plain sign_pdf B-B", sign_rates[0]),
        ("seal_pdf B-B (visible, certifying)", sign_rates[1]),
        ("plain validate_pdf_signature", verify_rates[0]),
        ("verify()", verify_rates[1]),
        ("seal_pdf B-T (in-process TSA)", level_rates[0]),
        ("seal_pdf B-LT (in-process TSA)", level_rates[1]),
        ("  of which: test TSA, one token", level_rates[2]),
    ]
    for label, rate in rows:
        print(f"{label:36} {rate['per_second']:8.1f}/s {rate['ms']:7.2f} ms")
    print(f"{'sealing ratio (target >= 5)':36} {ratios['seal_b_b_vs_sign_pdf']:8.2f}x")
    print(f"{'verify ratio (target >= 2)':36} {ratios['verify_vs_validate_pdf_signature']:8.2f}x")
    print(f"outputs valid in pdfsig: {in_pdfsig}; in verify(): {in_verify}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
