"""One page of a keyset-paginated list, as services return it (cursors are the handlers')."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    more: bool

    @classmethod
    def of(cls, fetched: Sequence[T], limit: int) -> Page[T]:
        """From up to ``limit + 1`` rows: the extra one only says that another page exists."""
        return cls(list(fetched[:limit]), len(fetched) > limit)

    @property
    def last(self) -> T | None:
        """The item the next page starts after; None when this is the last page."""
        return self.items[-1] if self.more and self.items else None
