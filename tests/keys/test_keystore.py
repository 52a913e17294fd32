"""The file key store: encryption at rest, caching, rotation and JWKS."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from keys.keystore import (
    FileKeyStore,
    KeyNotFoundError,
    KeyStore,
    KeyStoreError,
    PrivateKey,
    jwk_thumbprint,
    seal_purpose,
)
from keys.master import MasterKey

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path, master_key: MasterKey) -> FileKeyStore:
    return FileKeyStore(tmp_path / "keystore", master_key)


def _secret_forms(key: PrivateKey) -> list[bytes]:
    """Every way the private key could show up in a file: raw, DER, PEM, base64, hex."""
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    else:
        raw = key.private_numbers().private_value.to_bytes(32, "big")
    return [
        raw,
        der,
        raw.hex().encode(),
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw).rstrip(b"="),
        base64.b64encode(der)[:40],
    ]


def test_stolen_copy_without_master_key_reveals_nothing(
    tmp_path: Path, store: FileKeyStore
) -> None:
    kids = {
        "token": store.generate("token", now=T0),
        "checkpoint": store.generate("checkpoint", "EdDSA", now=T0),
        seal_purpose("3f2a-seal"): store.generate(seal_purpose("3f2a-seal"), now=T0),
    }
    stolen = tmp_path / "stolen"
    shutil.copytree(store.directory, stolen)
    everything = b"".join(p.read_bytes() for p in stolen.rglob("*") if p.is_file())
    for purpose, kid in kids.items():
        for form in _secret_forms(store.get_private(purpose, kid)):
            assert form not in everything
    thief = FileKeyStore(stolen, MasterKey.generate())
    for purpose, kid in kids.items():
        with pytest.raises(KeyStoreError, match="does not open"):
            thief.get_private(purpose, kid)
    # The rightful master key opens the copy.
    owner = FileKeyStore(stolen, store._master)
    assert owner.get_private("token").public_key() == store.get_private("token").public_key()
    # Files and directories are private to the gateway user.
    for path in store.directory.rglob("*"):
        assert path.stat().st_mode & 0o077 == 0


def test_key_file_moved_to_another_purpose_does_not_open(
    store: FileKeyStore, master_key: MasterKey
) -> None:
    kid = store.generate("receipt", now=T0)
    source = store.directory / "receipt" / f"{kid}.json"
    record = json.loads(source.read_text())
    record["purpose"] = "token"
    target_dir = store.directory / "token"
    target_dir.mkdir(mode=0o700)
    (target_dir / f"{kid}.json").write_text(json.dumps(record))
    fresh = FileKeyStore(store.directory, master_key)
    with pytest.raises(KeyStoreError, match="does not open"):
        fresh.get_private("token", kid)


def test_keys_are_loaded_once_and_reprs_are_safe(
    store: FileKeyStore, master_key: MasterKey
) -> None:
    kid = store.generate("tsa", now=T0)
    reader = FileKeyStore(store.directory, master_key)
    first = reader.get_private("tsa")
    (store.directory / "tsa" / f"{kid}.json").unlink()
    assert reader.get_private("tsa") is first  # served from memory, not the disk
    assert isinstance(first, ec.EllipticCurvePrivateKey)
    secret = first.private_numbers().private_value
    for text in (repr(reader), str(reader), repr(reader.infos("tsa")), repr(master_key)):
        assert str(secret) not in text
        assert format(secret, "x") not in text
    reader.refresh()
    with pytest.raises(KeyNotFoundError):
        reader.get_private("tsa")


def test_kid_is_the_rfc7638_thumbprint(store: FileKeyStore) -> None:
    kid = store.generate("token", now=T0)
    public = store.get_public("token", kid)
    assert kid == jwk_thumbprint(public)
    # RFC 7638 section 3.1 example, for an RSA key, cannot apply; check the EC shape instead.
    jwk = store.jwks(now=T0)["keys"][0]
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == ("EC", "P-256", "sig", "ES256")


def test_rotation_keeps_old_public_keys_in_jwks_until_retire_time(
    store: FileKeyStore, master_key: MasterKey
) -> None:
    old_token = store.generate("token", now=T0)
    receipt = store.generate("receipt", now=T0)
    store.generate("checkpoint", "EdDSA", now=T0)
    kid_old, signature = store.sign("token", b"access token")
    assert kid_old == old_token
    new_token = store.rotate(
        "token", publish_old_for=timedelta(minutes=20), now=T0 + timedelta(hours=1)
    )
    assert new_token != old_token
    assert store.active_info("token").kid == new_token
    assert store.sign("token", b"x")[0] == new_token

    def jwks_kids(at: datetime) -> set[str]:
        return {k["kid"] for k in store.jwks(now=at)["keys"]}

    assert jwks_kids(T0 + timedelta(hours=1, minutes=10)) == {old_token, new_token, receipt}
    assert jwks_kids(T0 + timedelta(hours=1, minutes=21)) == {new_token, receipt}
    # Checkpoint keys are not token keys: not in the default JWKS.
    assert all(k["alg"] == "ES256" for k in store.jwks(now=T0)["keys"])
    # What the old key signed still verifies with its published public key.
    public = store.get_public("token", old_token)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, b"access token", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(signature, b"forged", ec.ECDSA(hashes.SHA256()))
    # Another process sees the rotation (state is on disk, not only in this cache).
    other = FileKeyStore(store.directory, master_key)
    assert other.active_info("token").kid == new_token
    assert jwks_kids(T0 + timedelta(hours=1, minutes=10)) == {
        k["kid"] for k in other.jwks(now=T0 + timedelta(hours=1, minutes=10))["keys"]
    }
    # After the retire time the old private key can be pruned.
    assert store.prune("token", now=T0 + timedelta(hours=2)) == [old_token]
    with pytest.raises(KeyNotFoundError):
        store.get_private("token", old_token)


def test_unknown_kid_written_by_another_process_is_found(
    store: FileKeyStore, master_key: MasterKey
) -> None:
    store.generate("token", now=T0)
    other = FileKeyStore(store.directory, master_key)
    assert other.infos("token")  # cached now
    new_kid = store.rotate("token", publish_old_for=timedelta(minutes=15), now=T0 + timedelta(1))
    assert other.get_public("token", new_kid) == store.get_public("token", new_kid)


def test_checkpoint_key_is_ed25519_and_signs(store: FileKeyStore) -> None:
    kid = store.generate("checkpoint", "EdDSA", now=T0)
    _, signature = store.sign("checkpoint", b"tree head")
    public = store.get_public("checkpoint", kid)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    public.verify(signature, b"tree head")
    assert store.jwks(("checkpoint",), now=T0)["keys"][0]["crv"] == "Ed25519"


def test_bad_purposes_and_missing_keys(store: FileKeyStore) -> None:
    for purpose in ("", "Token", "../etc", "seal:../../x", "a" * 40):
        with pytest.raises(KeyStoreError):
            store.generate(purpose)
    with pytest.raises(KeyNotFoundError):
        store.get_private("receipt")
    with pytest.raises(KeyNotFoundError):
        store.get_private("token", "../../master")
    kid = store.ensure("receipt")
    assert store.ensure("receipt") == kid
    with pytest.raises(KeyStoreError, match="already stored"):
        store.import_key("receipt", store.get_private("receipt"))
    assert isinstance(store, KeyStore)
    assert store.purposes() == ["receipt"]
