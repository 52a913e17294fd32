"""What the identity tests over HTTPS share: the departments, the managers, enrolling a key
with a code someone handed out, and the id of a four-eyes request."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Gateway, Session, login_as, new_session

JYJ, GAJ, KJJ, PLATFORM = "yl-jyj", "yl-gaj", "yl-kjj", "yl"


@pytest.fixture(scope="module")
def admins(gateway: Gateway) -> Iterator[tuple[Session, Session]]:
    first = login_as(gateway, PLATFORM, ["admin"], name="管理员甲")
    second = login_as(gateway, PLATFORM, ["admin"], name="管理员乙")
    yield first, second
    first.close()
    second.close()


@pytest.fixture(scope="module")
def jyj_admin(gateway: Gateway) -> Iterator[Session]:
    with login_as(gateway, JYJ, ["dept_admin"], name="教育局管理员") as session:
        yield session


@pytest.fixture(scope="module")
def gaj_admin(gateway: Gateway) -> Iterator[Session]:
    with login_as(gateway, GAJ, ["dept_admin"], name="公安局管理员") as session:
        yield session


def enroll_with_code(gateway: Gateway, official: str, code: str, *, login: bool) -> Session:
    """A new key for *official* from *code* (whoever holds the code holds the key)."""
    session = new_session(gateway, official)
    enrolled = session.enroll(code)
    assert enrolled.status_code == 201, enrolled.text
    if login:
        assert session.login().status_code == 200
    return session


def pending_request_id(answer: httpx.Response) -> str:
    """The first person's call opened a four-eyes request; the code is not in the answer."""
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "pending_approval" and "enrollment_code" not in body, body
    request_id: str = body["request"]["id"]
    return request_id
