"""Reading the organisation CSV (``code,name,name_en,parent,kind``) into departments."""

from __future__ import annotations

import csv
import io
from importlib import resources

from keys.codes import Code, CodedError
from storage.directory import CODE_PATTERN, KIND_PATTERN, Department

EXPECTED_HEADER = ["code", "name", "name_en", "parent", "kind"]
DEMO_GROUP_CODE = "all-county-governments"
DEMO_GROUP_NAME = "各县（市、区）人民政府"


class OrgFileError(CodedError):
    """A row of the organisation CSV that cannot be a unit (its line number in the detail)."""

    code = Code.INVALID_ORG_FILE


def parse_orgs_csv(text: str) -> list[Department]:
    """Every row checked; the first bad one is reported with its line number."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    if header is None or [column.strip() for column in header] != EXPECTED_HEADER:
        raise OrgFileError(f"line 1: the header must be {','.join(EXPECTED_HEADER)}")
    departments: list[Department] = []
    seen: set[str] = set()
    for line_number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(EXPECTED_HEADER):
            raise OrgFileError(f"line {line_number}: expected 5 columns, found {len(row)}")
        code, name, name_en, parent, kind = (cell.strip() for cell in row)
        if not CODE_PATTERN.fullmatch(code):
            raise OrgFileError(f"line {line_number}: invalid code {code!r}")
        if code in seen:
            raise OrgFileError(f"line {line_number}: code {code!r} appears twice")
        if not name or len(name) > 200:
            raise OrgFileError(f"line {line_number}: name must have 1 to 200 characters")
        if parent and not CODE_PATTERN.fullmatch(parent):
            raise OrgFileError(f"line {line_number}: invalid parent code {parent!r}")
        if not KIND_PATTERN.fullmatch(kind):
            raise OrgFileError(f"line {line_number}: invalid kind {kind!r}")
        seen.add(code)
        departments.append(Department(code, name, name_en, parent or None, kind))
    # Parents missing from the file may already be in the database: the import's
    # deferred foreign key decides at commit.
    return departments


def demo_orgs_csv() -> str:
    """The Yulin organisation units shipped with the package for ``serve --demo``."""
    return resources.files("gateway.demo_data").joinpath("yulin_orgs.csv").read_text("utf-8")


def county_governments(departments: list[Department]) -> list[str]:
    return sorted(d.code for d in departments if d.kind == "county")
