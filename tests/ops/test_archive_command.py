"""The WAL archive_command as PostgreSQL runs it (``sh -c`` with %p and %f filled in), and the
object copy: what a backup relies on without a server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gateway.backup import BackupError, archive_command, copy_new_files, parse_time


def archive(wal: Path, segment: Path) -> int:
    line = archive_command(wal).replace("%p", str(segment)).replace("%f", segment.name)
    return subprocess.run(["sh", "-c", line], check=False).returncode


def test_a_segment_is_archived_once_and_a_differing_copy_is_refused(tmp_path: Path) -> None:
    wal, segment = tmp_path / "wal", tmp_path / "000000010000000000000003"
    wal.mkdir()
    segment.write_bytes(b"first")
    assert archive(wal, segment) == 0
    assert (wal / segment.name).read_bytes() == b"first"
    assert archive(wal, segment) == 0  # a retry of the same segment: identical, accepted
    segment.write_bytes(b"other")
    assert archive(wal, segment) != 0  # never overwritten: PostgreSQL keeps it and retries
    assert (wal / segment.name).read_bytes() == b"first"
    assert sorted(p.name for p in wal.iterdir()) == [segment.name]  # no temp file left


def test_a_path_the_shell_line_cannot_carry_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="characters"):
        archive_command(tmp_path / "it's here")


def test_new_object_files_are_copied_and_temp_files_skipped(tmp_path: Path) -> None:
    source, target = tmp_path / "objects", tmp_path / "copy"
    (source / "ab").mkdir(parents=True)
    (source / "ab" / ("ab" + "0" * 30)).write_bytes(b"sealed")
    (source / "ab" / ".tmp-abc-1234").write_bytes(b"half")
    assert copy_new_files(source, target) == 1
    assert copy_new_files(source, target) == 0
    assert [p.name for p in (target / "ab").iterdir()] == ["ab" + "0" * 30]


def test_restore_times_are_rfc3339_with_an_offset() -> None:
    assert parse_time("2026-12-08T10:15:00+08:00").isoformat() == "2026-12-08T02:15:00+00:00"
    with pytest.raises(BackupError, match="offset"):
        parse_time("2026-12-08T02:15:00")
    with pytest.raises(BackupError, match="RFC 3339"):
        parse_time("yesterday")
