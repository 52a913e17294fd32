"""``__all__`` is exactly the surface README.md documents, and every name in it exists,
is public and has a docstring (classes and functions; their public methods too)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import sealhub_sdk

README = Path(sealhub_sdk.__file__).resolve().parent.parent / "README.md"


def documented_names() -> set[str]:
    text = README.read_text("utf-8")
    section = text.split("## Public API", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", section)) - {"sealhub_sdk", "_internal"}


def test_all_matches_the_readme() -> None:
    assert set(sealhub_sdk.__all__) == documented_names()
    assert len(sealhub_sdk.__all__) == len(set(sealhub_sdk.__all__))


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in sealhub_sdk.__all__:
        value = getattr(sealhub_sdk, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_client_methods_have_docstrings_and_match_between_sync_and_async() -> None:
    def public(cls: type) -> dict[str, object]:
        return {n: m for n, m in vars(cls).items() if not n.startswith("_") and callable(m)}

    sync, asynchronous = public(sealhub_sdk.Client), public(sealhub_sdk.AsyncClient)
    assert set(sync) - {"close"} == set(asynchronous) - {"aclose"}
    for name, method in {**sync, **asynchronous}.items():
        assert inspect.getdoc(method), f"{name} has no docstring"
    for name in set(sync) & set(asynchronous):
        assert inspect.signature(sync[name]).parameters.keys() == (  # type: ignore[arg-type]
            inspect.signature(asynchronous[name]).parameters.keys()  # type: ignore[arg-type]
        ), name


def test_internal_modules_are_not_reexported_by_name() -> None:
    assert all(not n.startswith("_") or n == "__version__" for n in sealhub_sdk.__all__)
