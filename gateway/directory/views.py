"""The directory endpoints' JSON, both ways: new units and groups in (models), units,
groups and their pages out (TypedDicts, shown in /openapi.json)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field
from typing_extensions import TypedDict  # pydantic needs its TypedDict below Python 3.12

from gateway.http.bodies import encode_cursor
from gateway.http.errors import ApiError
from gateway.http.models import ClosedBody, Line, SingleLine
from gateway.paging import Page
from storage import directory

MAX_GROUP_MEMBERS = 2000

UnitCode = Annotated[str, Field(pattern=rf"^{directory.CODE_PATTERN.pattern}$")]
"""A unit or group code: a-z, 0-9, '.', '-' (1 to 63 characters)."""
Kind = Annotated[str, Field(pattern=rf"^{directory.KIND_PATTERN.pattern}$")]
"""city, county, department, ...: 1 to 32 of a-z and '_'."""
StrippedLine = Annotated[SingleLine, AfterValidator(str.strip)]
"""One line, possibly empty, kept without its surrounding white space."""


class NewDepartment(ClosedBody):
    """A new organisation unit (admin)."""

    code: UnitCode
    name: Line = Field(max_length=200)
    name_en: StrippedLine = Field(default="", max_length=300)
    parent: UnitCode | None = None
    kind: Kind

    def department(self) -> directory.Department:
        return directory.Department(self.code, self.name, self.name_en, self.parent, self.kind)


class NewGroup(ClosedBody):
    """A new distribution group: its code may then stand for its members."""

    code: UnitCode
    name: Line = Field(max_length=200)
    members: list[UnitCode] = Field(min_length=1, max_length=MAX_GROUP_MEMBERS)


class Department(TypedDict):
    """An organisation unit."""

    code: UnitCode
    name: Annotated[str, Field(min_length=1, max_length=200)]
    name_en: Annotated[str, Field(max_length=300)]
    parent: str | None
    kind: Kind


class Group(TypedDict):
    """A distribution group with its members."""

    code: str
    name: str
    members: list[str]


class DepartmentPage(TypedDict):
    items: list[Department]
    next_cursor: str | None


class GroupPage(TypedDict):
    items: list[Group]
    next_cursor: str | None


def after_code(cursor: dict[str, Any] | None) -> str | None:
    """The code a list page starts after (lists of units and of groups are in code order)."""
    if cursor is None:
        return None
    after = cursor.get("after")
    if not isinstance(after, str):
        raise ApiError("invalid_cursor", "the cursor is not one this server issued")
    return after


def department_json(unit: directory.Department) -> Department:
    return {
        "code": unit.code,
        "name": unit.name,
        "name_en": unit.name_en,
        "parent": unit.parent,
        "kind": unit.kind,
    }


def group_json(group: directory.Group) -> Group:
    return {"code": group.code, "name": group.name, "members": list(group.members)}


def _next_cursor(page: Page[directory.Department] | Page[directory.Group]) -> str | None:
    last = page.last
    return None if last is None else encode_cursor({"after": last.code})


def departments_json(page: Page[directory.Department]) -> DepartmentPage:
    return {
        "items": [department_json(unit) for unit in page.items],
        "next_cursor": _next_cursor(page),
    }


def groups_json(page: Page[directory.Group]) -> GroupPage:
    return {"items": [group_json(group) for group in page.items], "next_cursor": _next_cursor(page)}
