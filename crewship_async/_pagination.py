"""Offset/limit pagination as an async iterator of items."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Callable, Generic, Optional, TypeVar

from ._checks import check_count, check_optional_count

__all__ = ["AsyncPager", "validate_page_size"]

T = TypeVar("T")

FetchPage = Callable[[int, int], Awaitable[list[T]]]


def validate_page_size(limit: object) -> int:
    """Return ``limit`` if it is an int >= 1, else raise ``TypeError``/``ValueError``."""
    return check_count("limit", limit)


class AsyncPager(Generic[T]):
    """Walks an offset/limit listing lazily: ``async for item in pager``.

    Pages of ``page_size`` are fetched one at a time, only as the caller consumes them;
    a page shorter than ``page_size`` (or empty) is the last one. ``max_items`` stops after
    that many items. :meth:`pages` yields whole pages (lists) instead. Each iteration starts
    from the first page again; nothing is cached. Errors of a page fetch propagate from the
    iteration step that needed that page.

    Raises ``TypeError`` for a ``page_size``/``max_items`` that is not an ``int`` (``bool``
    included; for ``max_items`` also a ``ValueError``) and ``ValueError`` for a
    ``page_size`` < 1 or a ``max_items`` < 0.
    """

    def __init__(
        self, fetch_page: FetchPage[T], *, page_size: int, max_items: Optional[int] = None
    ) -> None:
        self._fetch_page = fetch_page
        self.page_size: int = validate_page_size(page_size)
        self.max_items: Optional[int] = check_optional_count("max_items", max_items, minimum=0)

    async def pages(self) -> AsyncIterator[list[T]]:
        """Yield each page as a list of items."""
        offset = 0
        left = self.max_items
        while left is None or left > 0:
            size = self.page_size
            page = await self._fetch_page(offset, size)
            received = len(page)
            if left is not None:
                page = page[:left]
                left -= len(page)
            if page:
                yield page
            if received < size:
                return
            # A server that sends more than asked still gets the next offset right.
            offset += received

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def _items(self) -> AsyncIterator[T]:
        pages = self.pages()
        try:
            async for page in pages:
                for item in page:
                    yield item
        finally:
            await pages.aclose()  # type: ignore[attr-defined]

    async def to_list(self) -> list[T]:
        """Collect every item (mind the size of the listing)."""
        return [item async for item in self]
