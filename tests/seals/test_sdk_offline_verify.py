"""The SDK's offline verifier (what ``sealctl verify`` runs by default) and the corpus of
changes between seals: a change that the gateway calls invalid is never valid offline.
(Guards the default, strict diff policy of the SDK against being loosened as the gateway's
once was.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from sealhub_sdk import verify_pdf_locally

from seals.pades import seal_pdf

from . import modification_corpus
from .conftest import Department
from .seal_pki import SealTestPki

KINDS = sorted(modification_corpus.MODIFICATIONS)


def _offline(doc: bytes, pki: SealTestPki, tmp_path: Path) -> bool:
    path = tmp_path / "doc.pdf"
    path.write_bytes(doc)
    return verify_pdf_locally(path, ca_pem=pki.root.pem).valid


def _sealed(kind: str, department: Department) -> bytes:
    return seal_pdf(modification_corpus.base_for(kind), department.signer, department.appearance)


@pytest.mark.parametrize("kind", KINDS)
def test_change_between_seals_is_invalid_offline(
    kind: str, pki: SealTestPki, departments: list[Department], tmp_path: Path
) -> None:
    changed = modification_corpus.MODIFICATIONS[kind](_sealed(kind, departments[0]))
    resealed = seal_pdf(changed, departments[1].signer, departments[1].appearance)
    assert not _offline(resealed, pki, tmp_path)


@pytest.mark.xfail(
    strict=True,
    reason=(
        "open: the SDK keeps pyhanko's default diff policy, which refuses a visible signature"
        " field created after certification even when it is signed in its own revision, so"
        " joint seals (联合发文) verify as invalid offline; the gateway's /v1/verify accepts them"
    ),
)
def test_joint_seals_stay_valid_offline(
    pki: SealTestPki, departments: list[Department], tmp_path: Path
) -> None:
    doc = _sealed("x", departments[0])
    for department in departments[1:]:
        doc = seal_pdf(doc, department.signer, department.appearance)
    assert _offline(doc, pki, tmp_path)
