"""The sync client is generated from the async one (clients/python_sdk/tools/unasync.py):
the committed sync_client.py must be exactly what the script writes today."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "clients" / "python_sdk" / "tools" / "unasync.py"


@pytest.fixture(scope="module")
def unasync() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sealhub_unasync", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_sync_client_is_what_the_script_writes(unasync: ModuleType) -> None:
    expected = unasync.generate(unasync.SOURCE.read_text("utf-8"))
    committed = unasync.TARGET.read_text("utf-8")
    assert committed == expected, "sync_client.py is stale: run clients/python_sdk/tools/unasync.py"


def test_rewrites_awaits_threads_and_one_line_yield_loops(unasync: ModuleType) -> None:
    source = (
        "async def f(self) -> AsyncIterator[int]:\n"
        "    size = (await asyncio.to_thread(path.stat)).st_size\n"
        "    check(await self.g(), (await self.h(1)).x)\n"
        "    for item in items:\n"
        "        yield item\n"
        "    for item in items:\n"
        "        yield item\n"
        "        await asyncio.sleep(1.0)\n"
    )
    assert unasync.unasync(source) == (
        "def f(self) -> Iterator[int]:\n"
        "    size = path.stat().st_size\n"
        "    check(self.g(), self.h(1).x)\n"
        "    yield from items\n"
        "    for item in items:\n"
        "        yield item\n"
        "        time.sleep(1.0)\n"
    )


def test_an_async_construct_it_does_not_know_is_refused(unasync: ModuleType) -> None:
    with pytest.raises(ValueError, match="asyncio"):
        unasync.unasync("async def f() -> None:\n    await asyncio.gather(a(), b())\n")
