"""Idempotency-Key records: a repeat with the same key and body gets the first answer."""

from __future__ import annotations

import dataclasses
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

import asyncpg

from keys.codes import Code, CodedError
from storage.db import DbConnection


class IdempotencyConflict(CodedError):
    code = Code.IDEMPOTENCY_CONFLICT
    default_detail = "this Idempotency-Key was already used with a different request"


@dataclass(frozen=True)
class Scope:
    official: str
    method: str
    path: str
    key: str


MAX_KEY_LENGTH = 200


class InvalidKey(CodedError):
    code = Code.INVALID_REQUEST
    default_detail = f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters"


@dataclass(frozen=True)
class Key:
    """An ``Idempotency-Key`` as the client sent it, with the request it came on. Checked
    only when the unit of work asks for its scope (after deciding who may act)."""

    method: str
    path: str
    value: str


def scope_of(key: Key | None, official: str) -> Scope | None:
    """The stored answers *key* names for *official* (None without a key)."""
    if key is None:
        return None
    if not 1 <= len(key.value) <= MAX_KEY_LENGTH or not key.value.isprintable():
        raise InvalidKey()
    return Scope(official, key.method, key.path, key.value)


class Replayable:
    """A service's answer (a dataclass) that is stored as JSON under its Idempotency-Key and
    rebuilt from it when the same request comes again: one field, one JSON key; UUIDs travel
    as strings."""

    def as_json(self) -> dict[str, Any]:
        return {
            field.name: str(value) if isinstance(value, uuid.UUID) else value
            for field in dataclasses.fields(self)  # type: ignore[arg-type]
            for value in (getattr(self, field.name),)
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Self:
        hints = typing.get_type_hints(cls)
        return cls(
            **{
                field.name: uuid.UUID(body[field.name])
                if hints[field.name] is uuid.UUID
                else body[field.name]
                for field in dataclasses.fields(cls)  # type: ignore[arg-type]
            }
        )


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


async def find(connection: DbConnection, scope: Scope, request_hash: str) -> StoredResponse | None:
    row = await connection.fetchrow(
        "SELECT request_hash, status, response FROM idempotency_keys"
        " WHERE official = $1 AND method = $2 AND path = $3 AND key = $4",
        scope.official,
        scope.method,
        scope.path,
        scope.key,
    )
    if row is None:
        return None
    if row["request_hash"] != request_hash:
        raise IdempotencyConflict()
    return StoredResponse(row["status"], row["response"])


async def remember(
    connection: DbConnection,
    scope: Scope,
    request_hash: str,
    response: StoredResponse,
    at: datetime,
) -> None:
    """Inside the transaction that made the response: both commit or neither does.

    A concurrent twin that committed first wins; the caller sees the unique violation
    as :class:`asyncpg.UniqueViolationError` and answers with the stored response.
    """
    await connection.execute(
        "INSERT INTO idempotency_keys"
        " (official, method, path, key, request_hash, status, response, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        scope.official,
        scope.method,
        scope.path,
        scope.key,
        request_hash,
        response.status,
        response.body,
        at,
    )


UniqueViolation = asyncpg.UniqueViolationError
