"""The PKCS#11 key store against a real softhsm2 token: keys made in the token and never
extractable (as the token itself reports), signatures that verify outside it, metadata
another process reads from the token, and a department seal from the token that pdfsig
accepts."""

from __future__ import annotations

import asyncio
import json
import pickle
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pkcs11
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils
from pkcs11 import Attribute, ObjectClass
from pkcs11.exceptions import AttributeSensitive

from gateway.sealing.sealer import SealSigners
from keys.hsm import Pkcs11KeyStore, SplitKeyStore, TokenEcKey, open_token_store
from keys.jws import sign_jws, verify_jws
from keys.keystore import (
    CHECKPOINT,
    RECEIPT,
    TOKEN,
    TSA,
    FileKeyStore,
    KeyStoreError,
    seal_purpose,
)
from keys.master import MasterKey
from keys.platform import ROOT_PURPOSE, SEAL_CA_PURPOSE, PlatformPki, ensure_platform_pki
from keys.tsa import random_serial
from seals.pades import Level, SealOptions
from seals.pool import SealWorkerPool
from seals.signer import InMemorySealKey
from storage import seals as seal_rows
from storage.signed_note import NoteVerifier, open_note, sign_note
from storage.vocabulary import SealStatus
from tests.keys.conftest import PUBLIC_URL, OpenSsl
from tests.seals.conftest import parse_pdfsig
from tests.seals.seal_corpus import reportlab_pdf
from tests.softhsm import PIN, SoftHsm

REPO = Path(__file__).resolve().parents[2]
PURPOSES = [
    (TOKEN, "ES256"),
    (RECEIPT, "ES256"),
    (CHECKPOINT, "EdDSA"),
    (TSA, "ES256"),
    (seal_purpose(str(uuid.UUID(int=7))), "ES256"),
]


@pytest.fixture
def store(softhsm: SoftHsm) -> Iterator[Pkcs11KeyStore]:
    opened = Pkcs11KeyStore(softhsm.module, softhsm.fresh_token(), PIN)
    yield opened
    opened.close()


_FLAGS = {
    "extractable": Attribute.EXTRACTABLE,
    "sensitive": Attribute.SENSITIVE,
    "never_extractable": Attribute.NEVER_EXTRACTABLE,
    "always_sensitive": Attribute.ALWAYS_SENSITIVE,
    "local": Attribute.LOCAL,  # generated in the token
}


def _private_objects(
    store: Pkcs11KeyStore, module: str, purpose: str, kid: str
) -> list[dict[str, bool]]:
    """The token's own view, through a session of its own (not the store's code): the
    flags of each private key labelled *purpose* with id *kid*, and whether its value reads."""
    token = pkcs11.lib(module).get_token(token_label=store.token_label)
    found = []
    with token.open() as session:  # the process is logged in: private objects are visible
        for obj in session.get_objects(
            {
                Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                Attribute.LABEL: purpose,
                Attribute.ID: kid.encode(),
            }
        ):
            flags = {name: bool(obj[attribute]) for name, attribute in _FLAGS.items()}
            try:
                obj[Attribute.VALUE]
            except AttributeSensitive:
                flags["value_readable"] = False
            else:
                flags["value_readable"] = True
            found.append(flags)
    return found


def test_keys_are_made_in_the_token_and_never_leave_it(
    store: Pkcs11KeyStore, softhsm: SoftHsm
) -> None:
    for purpose, algorithm in PURPOSES:
        kid = store.generate(purpose, algorithm)
        assert _private_objects(store, softhsm.module, purpose, kid) == [
            {
                "extractable": False,
                "sensitive": True,
                "never_extractable": True,
                "always_sensitive": True,
                "local": True,
                "value_readable": False,
            }
        ], purpose
        key = store.get_private(purpose, kid)
        with pytest.raises(KeyStoreError):
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        with pytest.raises(KeyStoreError):
            pickle.dumps(key)
        assert store.attributes(purpose, kid)["extractable"] is False
    assert [info.algorithm for purpose, _ in PURPOSES for info in store.infos(purpose)] == [
        algorithm for _, algorithm in PURPOSES
    ]


def test_every_purpose_signs_in_the_token_and_verifies_outside(store: Pkcs11KeyStore) -> None:
    message = "玉林市人民政府办公室 checkpoint 42".encode()
    for purpose, algorithm in PURPOSES:
        kid, signature = store.sign(purpose, message, store.generate(purpose, algorithm))
        public = store.get_public(purpose, kid)
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, message)
            with pytest.raises(InvalidSignature):
                public.verify(signature, message + b"!")
        else:
            public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            with pytest.raises(InvalidSignature):
                public.verify(signature, message + b"!", ec.ECDSA(hashes.SHA256()))


def test_the_callers_sign_with_token_keys_unchanged(store: Pkcs11KeyStore) -> None:
    """JWS (tokens, receipts), signed notes (checkpoints) and seal digests take the token's
    keys where they took file keys."""
    token_kid = store.generate(TOKEN)
    token_key = store.get_private(TOKEN, token_kid)
    assert isinstance(token_key, ec.EllipticCurvePrivateKey)
    jws = sign_jws({"sub": "yl-bgs", "iat": 1}, token_key, typ="at+jwt", kid=token_kid)
    public = store.get_public(TOKEN, token_kid)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    header, claims = verify_jws(jws, key=public, expected_typ="at+jwt")
    assert (header["kid"], claims["sub"]) == (token_kid, "yl-bgs")

    store.generate(CHECKPOINT, "EdDSA")
    checkpoint_key = store.get_private(CHECKPOINT)
    assert isinstance(checkpoint_key, ed25519.Ed25519PrivateKey)
    note = sign_note("gateway.test/log\n3\nAAAA\n", "gateway.test/log", checkpoint_key)
    verifier = NoteVerifier.from_public_key("gateway.test/log", checkpoint_key.public_key())
    assert open_note(note, [verifier]).signers == ["gateway.test/log"]

    seal = seal_purpose(str(uuid.uuid4()))
    seal_key = store.get_private(seal, store.generate(seal))
    assert isinstance(seal_key, ec.EllipticCurvePrivateKey)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"signed attributes")
    value = digest.finalize()
    signature = InMemorySealKey(seal_key).sign_sha256_digest(value)
    seal_key.public_key().verify(signature, value, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


_READER = """
import json, sys
from keys.hsm import Pkcs11KeyStore
store = Pkcs11KeyStore(sys.argv[1], sys.argv[2], sys.argv[3])
infos = store.infos(sys.argv[4])
print(json.dumps([[i.kid, i.retire_after and i.retire_after.isoformat()] for i in infos]))
"""


def _read_in_another_process(softhsm: SoftHsm, label: str, purpose: str) -> list[list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _READER, softhsm.module, label, PIN, purpose],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"SOFTHSM2_CONF": str(softhsm.conf), "PYTHONPATH": str(REPO)},
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    listed: list[list[str]] = json.loads(result.stdout)
    return listed


_OPENSSL_QUEUE = """
import ctypes, sys, _ssl
from keys.hsm import Pkcs11KeyStore
store = Pkcs11KeyStore(sys.argv[1], sys.argv[2], sys.argv[3])
store.sign("token", b"x", store.generate("token"))
peek = ctypes.CDLL(_ssl.__file__).ERR_peek_error
peek.restype = ctypes.c_ulong
print(peek())
"""


def test_the_token_leaves_no_openssl_error_for_tls(softhsm: SoftHsm) -> None:
    """softhsm2's C_Initialize leaves NO_SUCH_ENGINE in the thread's OpenSSL error queue,
    which Python's ssl then reports on its next TLS read: the store clears it. A process of
    its own, since the module initialises once per process."""
    result = subprocess.run(
        [sys.executable, "-c", _OPENSSL_QUEUE, softhsm.module, softhsm.fresh_token(), PIN],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"SOFTHSM2_CONF": str(softhsm.conf), "PYTHONPATH": str(REPO)},
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_rotation_state_lives_in_the_token(softhsm: SoftHsm) -> None:
    label = softhsm.fresh_token()
    store = Pkcs11KeyStore(softhsm.module, label, PIN)
    try:
        t0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
        first = store.generate(RECEIPT, now=t0)
        second = store.rotate(RECEIPT, publish_old_for=timedelta(days=2), now=t0 + timedelta(1))
        retire = (t0 + timedelta(days=3)).isoformat()
        assert _read_in_another_process(softhsm, label, RECEIPT) == [
            [first, retire],
            [second, None],
        ]
        assert store.active_info(RECEIPT).kid == second
        assert {k["kid"] for k in store.jwks((RECEIPT,), now=t0 + timedelta(2))["keys"]} == {
            first,
            second,
        }
        assert store.prune(RECEIPT, now=t0 + timedelta(days=4)) == [first]
        assert _read_in_another_process(softhsm, label, RECEIPT) == [[second, None]]
        assert _private_objects(store, softhsm.module, RECEIPT, first) == []
    finally:
        store.close()


def test_a_key_made_outside_the_token_is_refused(store: Pkcs11KeyStore) -> None:
    with pytest.raises(KeyStoreError, match="generated in the token"):
        store.import_key(TOKEN, ec.generate_private_key(ec.SECP256R1()))
    assert store.infos(TOKEN) == []


def test_a_wrong_pin_or_token_is_refused_without_showing_the_pin(softhsm: SoftHsm) -> None:
    label = softhsm.fresh_token()
    with pytest.raises(KeyStoreError) as refused:
        Pkcs11KeyStore(softhsm.module, label, "wrong-pin-5678")
    assert "PinIncorrect" in str(refused.value)
    assert "wrong-pin-5678" not in str(refused.value)
    with pytest.raises(KeyStoreError, match="no PKCS#11 token"):
        Pkcs11KeyStore(softhsm.module, "no-such-token", PIN)


@pytest.fixture
def split(tmp_path: Path, softhsm: SoftHsm) -> Iterator[SplitKeyStore]:
    files = FileKeyStore(tmp_path / "data" / "keystore", MasterKey.generate())
    opened, on_file = open_token_store(
        files, module=softhsm.module, token_label=softhsm.fresh_token(), pin=PIN
    )
    assert on_file == []  # softhsm2 2.6 makes Ed25519 keys: the checkpoint key is in the token
    yield opened
    assert isinstance(opened.token, Pkcs11KeyStore)
    opened.token.close()


@pytest.fixture
def hsm_platform(tmp_path: Path, split: SplitKeyStore) -> PlatformPki:
    return ensure_platform_pki(
        tmp_path / "data",
        public_url=PUBLIC_URL,
        hostnames=["localhost", "127.0.0.1"],
        keystore=split,
        now=datetime.now(UTC),
    )


def test_the_platform_keeps_its_tsa_key_in_the_token_and_ca_keys_on_file(
    hsm_platform: PlatformPki, split: SplitKeyStore, openssl: OpenSsl, tmp_path: Path
) -> None:
    assert [i.purpose for i in split.token.infos(TSA)] == [TSA]
    assert split.files.infos(TSA) == []
    assert split.token.infos(SEAL_CA_PURPOSE) == []
    assert [i.purpose for i in split.files.infos(SEAL_CA_PURPOSE)] == [SEAL_CA_PURPOSE]
    assert [i.purpose for i in split.files.infos(ROOT_PURPOSE)] == [ROOT_PURPOSE]
    assert isinstance(hsm_platform.tsa.key, TokenEcKey)

    data = tmp_path / "checkpoint.txt"
    data.write_bytes(b"gateway.test/log\n3\nAAAA\n")
    token = tmp_path / "token.der"
    token.write_bytes(
        hsm_platform.timestamper.token(
            data.read_bytes(), serial_number=random_serial(), now=datetime.now(UTC)
        )
    )
    verified = openssl(
        "ts",
        "-verify",
        "-token_in",
        "-in",
        token,
        "-data",
        data,
        "-CAfile",
        hsm_platform.ca_pem_path,
    )
    assert "Verification: OK" in verified.stdout, verified.stdout + verified.stderr


def _trust_store(directory: Path, root_pem: Path) -> Path:
    directory.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"], check=True)
    subprocess.run(
        ["certutil", "-A", "-d", f"sql:{directory}", "-n", "root", "-t", "CT,C,C", "-i", root_pem],
        check=True,
    )
    return directory


def test_a_seal_key_in_the_token_seals_a_pdf_that_pdfsig_accepts(
    hsm_platform: PlatformPki, split: SplitKeyStore, tmp_path: Path
) -> None:
    """The gateway's sealing path (SealSigners, the worker pool, the platform TSA at B-LT)
    with the seal key and the TSA key in the token."""
    now = datetime.now(UTC)
    seal_id = uuid.uuid4()
    purpose = seal_purpose(str(seal_id))
    kid = hsm_platform.keystore.generate(purpose, "ES256", now=now)
    assert [i.kid for i in split.token.infos(purpose)] == [kid]
    public = hsm_platform.keystore.get_public(purpose, kid)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    certificate = hsm_platform.issue_seal_certificate(
        public,
        department_name_zh="玉林市人民政府办公室",
        department_code="yl-bgs",
        seal_id=str(seal_id),
        now=now,
        seal_name="公文专用章",
    )
    seal = seal_rows.Seal(
        id=seal_id,
        department="yl-bgs",
        purpose="公文专用章",
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
        request_id=uuid.uuid4(),
    )
    signer, appearance = SealSigners(hsm_platform).of(
        seal_rows.NamedSeal(seal, "玉林市人民政府办公室")
    )
    root_der = hsm_platform.root_cert.public_bytes(serialization.Encoding.DER)
    crls = (hsm_platform.root_crl(), hsm_platform.build_crl("seal-ca", [], now=now))
    draft, sealed = tmp_path / "draft.pdf", tmp_path / "sealed.pdf"
    draft.write_bytes(reportlab_pdf(pages=1))
    with SealWorkerPool(workers=1) as pool:
        asyncio.run(
            pool.aseal_file(
                draft,
                sealed,
                signer,
                appearance,
                SealOptions(level=Level.B_LT, trust_roots=(root_der,), crls=crls),
                timestamper=hsm_platform.timestamper.for_pades([7001, 7002]),
            )
        )
    nss = _trust_store(tmp_path / "nss", hsm_platform.ca_pem_path)
    report = subprocess.run(
        ["pdfsig", "-nssdir", f"sql:{nss}", str(sealed)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    [signature] = parse_pdfsig(report.stdout)
    assert signature.valid, report.stdout
    assert signature.trusted, report.stdout
    assert signature.total, report.stdout
