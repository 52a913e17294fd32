"""The console as the real gateway serves it over HTTPS: where browsers land, the page that is
never cached, the versioned files cached for a year, the security headers, and nothing but
the static folder's own files behind the asset URLs."""

from __future__ import annotations

import http.client
import re
import shutil
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.console.assets import STATIC_DIR, ConsoleAssets, content_type_of, read_tree
from tests.conftest import REPO, Gateway, Session, login_as
from tests.exchange.conftest import issue_seal, meta_for, send
from tests.seals.seal_corpus import reportlab_pdf

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:;"
    " font-src 'self'; connect-src 'self'; worker-src 'self'; manifest-src 'self';"
    " base-uri 'none'; form-action 'self'; frame-ancestors 'none';"
    " require-trusted-types-for 'script'; trusted-types sealhub-console"
)
CONSOLE_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
IMMUTABLE = "public, max-age=31536000, immutable"
ASSET_BASE = re.compile(r"/console/assets/([0-9a-f]{16})/")


def _raw_get(gateway: Gateway, target: str) -> tuple[int, dict[str, str], bytes]:
    """A GET with the request target sent exactly as written (httpx would normalise ``..``)."""
    context = ssl.create_default_context(cafile=str(gateway.ca_path))
    host, port = gateway.base_url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def version(gateway: Gateway) -> str:
    with gateway.client() as client:
        page = client.get("/console/")
    found = ASSET_BASE.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def test_root_sends_browsers_to_the_console(gateway: Gateway) -> None:
    with gateway.client() as client:
        answer = client.get("/")
    assert answer.status_code == 302
    assert answer.headers["location"] == "/console/"
    for name, value in CONSOLE_HEADERS.items():
        assert answer.headers[name] == value, name


def test_console_page_is_filled_in_never_cached_and_locked_down(
    gateway: Gateway, version: str
) -> None:
    with gateway.client() as client:
        answer = client.get("/console/")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["cache-control"] == "no-store"
    for name, value in CONSOLE_HEADERS.items():
        assert answer.headers[name] == value, name
    assert "unsafe-inline" not in answer.headers["content-security-policy"]
    page = answer.text
    assert "%ASSET_BASE%" not in page and "%PUBLIC_ORIGIN%" not in page
    assert f'content="{gateway.base_url}"' in page  # the public origin (DPoP htu, WebAuthn)
    assert f'src="/console/assets/{version}/js/main.js"' in page
    # The version is the one the static folder's bytes give, computed here independently.
    assert version == ConsoleAssets(read_tree(STATIC_DIR), public_origin="x").version


def test_every_static_file_is_served_under_the_version_with_its_type(
    gateway: Gateway, version: str
) -> None:
    files = read_tree(STATIC_DIR)
    assert "index.html" in files
    with gateway.client() as client:
        for name, body in files.items():
            answer = client.get(f"/console/assets/{version}/{name}")
            assert answer.status_code == 200, name
            assert answer.content == body, name
            assert answer.headers["content-type"] == content_type_of(name), name
            assert answer.headers["cache-control"] == IMMUTABLE, name
            for header, value in CONSOLE_HEADERS.items():
                assert answer.headers[header] == value, (name, header)


def test_content_types_of_the_console_file_kinds() -> None:
    kinds = {
        "a.js": "text/javascript; charset=utf-8",
        "a.mjs": "text/javascript; charset=utf-8",
        "a.css": "text/css; charset=utf-8",
        "a.svg": "image/svg+xml",
        "a.png": "image/png",
        "a.woff2": "font/woff2",
        "a.json": "application/json",
        "a.js.map": "application/json",
        "LICENSE": "application/octet-stream",
    }
    assert {name: content_type_of(name) for name in kinds} == kinds


@pytest.mark.parametrize(
    "version_text", ["0000000000000000", "latest", "", "ffffffffffffffffff"], ids=repr
)
def test_another_version_is_not_found(gateway: Gateway, version: str, version_text: str) -> None:
    with gateway.client() as client:
        answer = client.get(f"/console/assets/{version_text}/index.html")
        near = version[:-1] + ("0" if version[-1] != "0" else "1")
        near_answer = client.get(f"/console/assets/{near}/index.html")
    for refused in (answer, near_answer):
        assert refused.status_code == 404
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["cache-control"] == "no-store"


TRAVERSALS = [
    "../assets.py",
    "../../app.py",
    "..%2fassets.py",
    "..%2F..%2Fapp.py",
    "%2e%2e/assets.py",
    "%2e%2e%2f%2e%2e%2fapp.py",
    "js/../../assets.py",
    "/etc/passwd",
    "//etc/passwd",
    "..\\assets.py",
    "..%5cassets.py",
    "%252e%252e%252fassets.py",
    "index.html/",
    "./index.html",
]


@pytest.mark.parametrize("tail", TRAVERSALS)
def test_paths_out_of_the_static_folder_are_not_found(
    gateway: Gateway, version: str, tail: str
) -> None:
    status, headers, body = _raw_get(gateway, f"/console/assets/{version}/{tail}")
    assert status == 404, (tail, body[:200])
    assert headers["content-type"].startswith("application/problem+json")
    assert b"import" not in body and b"root:" not in body


def test_the_console_folder_itself_is_not_browsable(gateway: Gateway) -> None:
    for target in ("/console/../gateway/app.py", "/console/static/index.html", "/console/assets/"):
        status, _, body = _raw_get(gateway, target)
        assert status == 404, (target, body[:200])


def test_links_leading_out_of_the_static_folder_are_never_served(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("root:x:0:0")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "inner.js").write_text("leaked()")
    static = tmp_path / "static"
    (static / "js").mkdir(parents=True)
    (static / "index.html").write_text("<p>%ASSET_BASE%</p>")
    (static / "js" / "main.js").write_text("main()")
    (static / "js" / "alias.js").symlink_to(static / "js" / "main.js")
    (static / "leak.txt").symlink_to(outside)
    (static / "up").symlink_to(tmp_path)
    (static / "linked").symlink_to(elsewhere, target_is_directory=True)
    (static / "dangling.js").symlink_to(tmp_path / "nothing.js")
    files = read_tree(static)
    assert sorted(files) == ["index.html", "js/alias.js", "js/main.js"]
    assets = ConsoleAssets(files, public_origin="https://example.invalid")
    for name in ("leak.txt", "up/secret.txt", "linked/inner.js", "../secret.txt", "js/../leak.txt"):
        assert assets.asset(assets.version, name) is None, name
    assert assets.asset(assets.version, "js/alias.js") is not None
    assert assets.index_html == f"<p>/console/assets/{assets.version}/</p>".encode()


def test_the_version_follows_every_byte_and_name(tmp_path: Path) -> None:
    base = {"index.html": b"<p></p>", "js/a.js": b"a()"}
    version = ConsoleAssets(base, public_origin="o").version
    assert len(version) == 16 and int(version, 16) >= 0
    changed = [
        {**base, "js/a.js": b"a() "},
        {"index.html": b"<p></p>", "js/b.js": b"a()"},
        {**base, "js/c.js": b""},
    ]
    assert all(ConsoleAssets(files, public_origin="o").version != version for files in changed)
    assert ConsoleAssets(dict(reversed(base.items())), public_origin="o").version == version


def test_the_static_folder_is_package_data_of_an_install(tmp_path: Path) -> None:
    """A non-editable install (setuptools' build_py, what a wheel is made of) carries every
    file the console serves."""
    source = tmp_path / "source"
    for part in ("gateway", "seals", "storage", "keys"):
        shutil.copytree(REPO / part, source / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / part, source / part)
    build = tmp_path / "build"
    setup = "import setuptools; setuptools.setup()"
    subprocess.run(
        [sys.executable, "-c", setup, "-q", "build_py", "-d", str(build)],
        cwd=source,
        check=True,
        capture_output=True,
    )
    installed = read_tree(build / "gateway" / "console" / "static")
    assert installed == read_tree(STATIC_DIR)


# --- API answers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keeper(gateway: Gateway) -> Iterator[Session]:
    admins = (
        login_as(gateway, "yl", ["admin"], name="管理员甲"),
        login_as(gateway, "yl", ["admin"], name="管理员乙"),
    )
    issue_seal(admins, "yl-bgs")
    for admin in admins:
        admin.close()
    with login_as(gateway, "yl-bgs", ["seal_keeper", "clerk"], name="用印员") as session:
        yield session


def test_api_answers_are_not_sniffed_referred_or_stored(gateway: Gateway, keeper: Session) -> None:
    number = f"玉政办发〔2026〕{uuid.uuid4().int % 10**8}号"
    sent = send(keeper, meta_for(["yl-fgw"], number), reportlab_pdf(pages=1))
    assert sent.status_code == 201, sent.text
    document = sent.json()["id"]
    answers = {
        "me": keeper.get("/v1/me"),
        "content": keeper.get(f"/v1/documents/{document}/content"),
        "range": keeper.get(f"/v1/documents/{document}/content", headers={"Range": "bytes=0-9"}),
        "draft": keeper.get(f"/v1/documents/{document}/draft"),
        "refused": keeper.get(f"/v1/documents/{uuid.uuid4()}/content"),
    }
    for name, answer in answers.items():
        assert answer.status_code in (200, 206, 404), (name, answer.text)
        assert answer.headers["cache-control"] == "no-store", name
        assert answer.headers["x-content-type-options"] == "nosniff", name
        assert answer.headers["referrer-policy"] == "no-referrer", name
        assert "content-security-policy" not in answer.headers, name
    assert answers["content"].content.startswith(b"%PDF-")
    assert answers["draft"].content.startswith(b"%PDF-")
    with gateway.client() as client:
        health = client.get("/healthz")
    assert health.headers["referrer-policy"] == "no-referrer"


# --- the console's lists over the wire ------------------------------------------------------

BOX_ITEM_KEYS = {
    "id",
    "title",
    "doc_number",
    "urgency",
    "classification",
    "status",
    "created_at",
    "deadline",
    "drafter",
    "recipients",
    "cc",
    "sha256",
    "draft_sha256",
    "deliveries",
}


def test_lists_answer_as_the_contract_says(gateway: Gateway, keeper: Session) -> None:
    number = f"玉政办发〔2026〕{uuid.uuid4().int % 10**8}号"
    sent = send(keeper, meta_for(["yl-fgw"], number), reportlab_pdf(pages=1))
    assert sent.status_code == 201, sent.text
    box = keeper.get("/v1/documents?box=sent&limit=1")
    assert box.status_code == 200, box.text
    (item,) = box.json()["items"]
    assert set(item) == BOX_ITEM_KEYS
    assert item["id"] == sent.json()["id"] and item["recipients"] == ["yl-fgw"]
    assert item["deliveries"] == {"total": 1, "pending": 1, "received": 0, "rejected": 0}
    assert item["drafter"] == {"id": keeper.official_id, "name": "用印员"}
    assert keeper.get("/v1/documents?box=everything").status_code == 400
    assert keeper.get("/v1/documents").status_code == 400

    officials = keeper.get("/v1/officials", params={"q": "用印"}).json()["items"]
    assert {
        "id": keeper.official_id,
        "name": "用印员",
        "department": "yl-bgs",
        "roles": ["clerk", "seal_keeper"],
        "status": "active",
        "has_key": True,
    } in officials
    hidden = keeper.get("/v1/officials?department=yl-fgw")
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "not_found"

    with login_as(gateway, "yl-fgw", ["clerk"], name="乙收文员") as reader:
        both = reader.get("/v1/inbox?state=pending&state=fetched&q=安全生产").json()["items"]
        mine = [entry for entry in both if entry["document"]["id"] == sent.json()["id"]]
        assert mine and mine[0]["document"]["classification"] == "internal"
        assert "deadline" in mine[0]["document"]
        assert reader.get("/v1/inbox?state=pending&state=nonsense").status_code == 400
        assert reader.get("/v1/approvals").json() == {"items": [], "next_cursor": None}
        assert reader.get("/v1/documents?box=sent").json()["items"] == []
