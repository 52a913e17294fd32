"""Links into the console that the server's command lines print. The enrollment code rides
in the fragment (after ``#``), which browsers never send: the console reads it and at once
takes it out of the address bar and history."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

CONSOLE_PATH = "/console/"


def console_url(public_origin: str) -> str:
    return public_origin.rstrip("/") + CONSOLE_PATH


def enrollment_link(public_origin: str, official_id: str, code: str) -> str:
    """``<origin>/console/#/enroll/<id>/<code>``: the console enrolls this browser's key."""
    return (
        f"{console_url(public_origin)}#/enroll/{quote(official_id, safe='')}/{quote(code, safe='')}"
    )


ORIGIN_FILE = "public-url"


def remember_origin(data_dir: Path, public_origin: str) -> None:
    """``serve`` notes where it serves, so the command lines of the same data directory print
    links that work (``official create`` is not told the port)."""
    (data_dir / ORIGIN_FILE).write_text(public_origin + "\n", "utf-8")


def served_origin(data_dir: Path, configured: str, *, explicit: bool) -> str:
    """An explicitly configured ``SEALHUB_PUBLIC_URL`` wins; else where this data directory's
    gateway last served; else the configured default."""
    if not explicit:
        try:
            noted = (data_dir / ORIGIN_FILE).read_text("utf-8").strip()
        except OSError:
            noted = ""
        if noted.startswith("https://"):
            return noted
    return configured
