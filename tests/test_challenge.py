"""keys.challenge: stateless HMAC login nonces and enrollment codes."""

from __future__ import annotations

import base64
import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from keys.challenge import (
    NONCE_MAX_AGE,
    ChallengeError,
    ChallengeNonces,
    enrollment_code_matches,
    generate_enrollment_code,
    hash_enrollment_code,
)
from tests.plain_jose import b64, unb64

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
OFFICIAL = "5f0c7a52-9a51-4c4e-8a53-0c1f2d7e9b11"
KEY = secrets.token_bytes(32)


def reason_of(excinfo: pytest.ExceptionInfo[ChallengeError]) -> tuple[str, str]:
    return excinfo.value.code, excinfo.value.reason


def test_nonce_round_trip_returns_its_expiry() -> None:
    nonces = ChallengeNonces(KEY)
    nonce = nonces.issue_nonce(OFFICIAL, NOW)
    assert nonces.check_nonce(nonce, OFFICIAL, NOW) == NOW + timedelta(seconds=NONCE_MAX_AGE)
    last_second = NOW + timedelta(seconds=NONCE_MAX_AGE)
    assert nonces.check_nonce(nonce, OFFICIAL, last_second)
    # Another process with the same key accepts it: nothing is stored at issue time.
    assert ChallengeNonces(KEY).check_nonce(nonce, OFFICIAL, NOW)


def test_nonces_are_unique_and_url_safe() -> None:
    nonces = ChallengeNonces(KEY)
    issued = {nonces.issue_nonce(OFFICIAL, NOW) for _ in range(50)}
    assert len(issued) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", n) for n in issued)


def test_expired_nonce() -> None:
    nonces = ChallengeNonces(KEY)
    nonce = nonces.issue_nonce(OFFICIAL, NOW)
    with pytest.raises(ChallengeError) as excinfo:
        nonces.check_nonce(nonce, OFFICIAL, NOW + timedelta(seconds=NONCE_MAX_AGE + 1))
    assert reason_of(excinfo) == ("invalid_nonce", "expired")
    with pytest.raises(ChallengeError) as excinfo:
        nonces.check_nonce(nonce, OFFICIAL, NOW + timedelta(seconds=31), max_age=30)
    assert reason_of(excinfo) == ("invalid_nonce", "expired")


def test_nonce_from_the_future() -> None:
    nonces = ChallengeNonces(KEY)
    nonce = nonces.issue_nonce(OFFICIAL, NOW + timedelta(seconds=60))
    with pytest.raises(ChallengeError) as excinfo:
        nonces.check_nonce(nonce, OFFICIAL, NOW)
    assert reason_of(excinfo) == ("invalid_nonce", "not_yet_valid")


def test_nonce_for_another_subject() -> None:
    nonces = ChallengeNonces(KEY)
    nonce = nonces.issue_nonce(OFFICIAL, NOW)
    with pytest.raises(ChallengeError) as excinfo:
        nonces.check_nonce(nonce, "another-official", NOW)
    assert reason_of(excinfo) == ("invalid_nonce", "forged")


def test_nonce_for_another_purpose_or_key() -> None:
    nonce = ChallengeNonces(KEY, purpose="dpop").issue_nonce(OFFICIAL, NOW)
    with pytest.raises(ChallengeError) as excinfo:
        ChallengeNonces(KEY).check_nonce(nonce, OFFICIAL, NOW)
    assert reason_of(excinfo) == ("invalid_nonce", "forged")
    foreign = ChallengeNonces(secrets.token_bytes(32)).issue_nonce(OFFICIAL, NOW)
    with pytest.raises(ChallengeError) as excinfo:
        ChallengeNonces(KEY).check_nonce(foreign, OFFICIAL, NOW)
    assert reason_of(excinfo) == ("invalid_nonce", "forged")


def test_forged_nonce_with_a_rewritten_issue_time() -> None:
    """Extending a nonce's life by editing its timestamp breaks the MAC."""
    nonces = ChallengeNonces(KEY)
    raw = bytearray(unb64(nonces.issue_nonce(OFFICIAL, NOW)))
    later = int((NOW + timedelta(hours=1)).timestamp()).to_bytes(8, "big")
    raw[1:9] = later
    with pytest.raises(ChallengeError) as excinfo:
        nonces.check_nonce(b64(bytes(raw)), OFFICIAL, NOW + timedelta(hours=1))
    assert reason_of(excinfo) == ("invalid_nonce", "forged")


@pytest.mark.parametrize(
    "nonce",
    [
        "",
        "not a nonce",
        b64(b"\x01" * 10),
        b64(b"\x02" + bytes(56)),  # unknown version
        base64.urlsafe_b64encode(bytes(57)).decode(),  # padded
    ],
)
def test_malformed_nonces(nonce: str) -> None:
    with pytest.raises(ChallengeError) as excinfo:
        ChallengeNonces(KEY).check_nonce(nonce, OFFICIAL, NOW)
    assert reason_of(excinfo) == ("invalid_nonce", "malformed")


def test_short_key_refused_and_key_hidden_from_repr() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        ChallengeNonces(b"short")
    assert KEY.hex() not in repr(ChallengeNonces(KEY))
    assert repr(KEY) not in repr(ChallengeNonces(KEY))


# --- enrollment codes ---------------------------------------------------------------------


def test_enrollment_code_has_at_least_128_bits_and_is_url_safe() -> None:
    codes = {generate_enrollment_code() for _ in range(50)}
    assert len(codes) == 50
    for code in codes:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", code)
        assert len(unb64(code)) * 8 >= 128


def test_enrollment_code_hash_matches_only_the_code_and_official() -> None:
    code = generate_enrollment_code()
    stored = hash_enrollment_code(code, official_id=OFFICIAL)
    assert re.fullmatch(r"[0-9a-f]{64}", stored)
    assert code not in stored
    assert enrollment_code_matches(code, stored, official_id=OFFICIAL)
    assert enrollment_code_matches(f"  {code}\n", stored, official_id=OFFICIAL)
    assert not enrollment_code_matches(code, stored, official_id="another-official")
    assert not enrollment_code_matches(code[:-1], stored, official_id=OFFICIAL)
    assert not enrollment_code_matches(generate_enrollment_code(), stored, official_id=OFFICIAL)
    assert not enrollment_code_matches("", stored, official_id=OFFICIAL)
    assert not enrollment_code_matches(code + "x" * 200, stored, official_id=OFFICIAL)


def test_enrollment_code_hash_separates_official_and_code() -> None:
    """Length prefixes: moving characters between official id and code changes the hash."""
    assert hash_enrollment_code("bc", official_id="a") != hash_enrollment_code(
        "c", official_id="ab"
    )
