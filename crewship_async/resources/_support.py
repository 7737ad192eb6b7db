"""Helpers of the threads and tables resources.

:func:`require_str` checks a required string (the seconds and counts are checked by
:mod:`crewship_async._checks`); :class:`GuardedPager` walks listings whose paging the API
does not document.

``GET /v1/threads/{id}/history``, ``GET /v1/tables`` and ``GET /v1/tables/{id}/rows`` are
sent ``limit`` and ``offset`` like the documented listings, but nothing says the server
honours them. A server that ignores them answers every page with the whole list, which
would make a plain offset walk loop for ever or yield everything again.
:class:`GuardedPager` walks the pages the same way and stops instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable
from typing import Callable, Optional, TypeVar

from .._pagination import AsyncPager, FetchPage
from ._common import check_optional_str

__all__ = ["GuardedPager", "require_str"]

T = TypeVar("T")


def require_str(name: str, value: object) -> str:
    """``value`` if it is a non-empty string; ``TypeError``/``ValueError`` naming ``name``."""
    checked = check_optional_str(name, value)
    if checked is None:
        raise ValueError(f"{name} is required")
    return checked


class GuardedPager(AsyncPager[T]):
    """An :class:`AsyncPager` that never yields an item twice and always ends.

    Pages are requested with ``limit``/``offset`` as usual, and:

    * a page longer than ``limit`` means the server ignored ``limit``: it is taken as the
      whole listing, yielded (split into pages of ``limit``) and the iteration ends;
    * an item whose ``key`` (an id; ``None`` if it has none) was already yielded is
      skipped, and a later page that brings no new item, or that equals the first page,
      means the server ignored ``offset``: the iteration ends.

    ``.pages()`` may therefore yield pages shorter than ``limit`` before the last one.
    """

    def __init__(
        self,
        fetch_page: FetchPage[T],
        *,
        page_size: int,
        max_items: Optional[int] = None,
        key: Callable[[T], Optional[Hashable]],
    ) -> None:
        super().__init__(fetch_page, page_size=page_size, max_items=max_items)
        self._fetch = fetch_page
        self._key = key

    async def pages(self) -> AsyncIterator[list[T]]:
        """Yield each page as a list of items not yielded before."""
        size = self.page_size
        left = self.max_items
        seen: set[Hashable] = set()
        first: Optional[list[T]] = None
        offset = 0
        while left is None or left > 0:
            page = await self._fetch(offset, size)
            if first is None:
                first = page
            elif page == first:
                return
            fresh = []
            for item in page:
                key = self._key(item)
                if key is not None:
                    if key in seen:
                        continue
                    seen.add(key)
                fresh.append(item)
            if offset and not fresh:
                return
            if left is not None:
                fresh = fresh[:left]
                left -= len(fresh)
            for start in range(0, len(fresh), size):
                yield fresh[start : start + size]
            if len(page) != size:
                return
            offset += size
