"""AsyncPager: lazy offset/limit pages as an async iterator of items."""

from __future__ import annotations

import pytest

from crewship_async import AsyncPager
from crewship_async._pagination import validate_page_size


class Listing:
    """A fake listing of ``total`` numbered items that records the pages asked for."""

    def __init__(self, total: int, *, fail_at: int = -1) -> None:
        self.total = total
        self.fail_at = fail_at
        self.asked: list[tuple[int, int]] = []

    async def __call__(self, offset: int, limit: int) -> list[int]:
        self.asked.append((offset, limit))
        if offset == self.fail_at:
            raise RuntimeError(f"page at {offset} failed")
        return list(range(offset, min(offset + limit, self.total)))


@pytest.mark.parametrize(
    ("total", "size", "asked"),
    [
        (0, 3, [(0, 3)]),
        (2, 3, [(0, 3)]),
        (3, 3, [(0, 3), (3, 3)]),
        (7, 3, [(0, 3), (3, 3), (6, 3)]),
        (9, 3, [(0, 3), (3, 3), (6, 3), (9, 3)]),
    ],
)
async def test_items_across_pages(total: int, size: int, asked: list[tuple[int, int]]) -> None:
    listing = Listing(total)
    pager = AsyncPager(listing, page_size=size)
    assert [item async for item in pager] == list(range(total))
    assert listing.asked == asked


async def test_pages_yield_lists() -> None:
    pager = AsyncPager(Listing(7), page_size=3)
    assert [page async for page in pager.pages()] == [[0, 1, 2], [3, 4, 5], [6]]


@pytest.mark.parametrize(
    ("max_items", "expected", "asked"),
    [
        (0, [], []),
        (2, [0, 1], [(0, 3)]),
        (3, [0, 1, 2], [(0, 3)]),
        (4, [0, 1, 2, 3], [(0, 3), (3, 3)]),
        (100, list(range(8)), [(0, 3), (3, 3), (6, 3)]),
    ],
)
async def test_max_items(max_items: int, expected: list[int], asked: list[tuple[int, int]]) -> None:
    listing = Listing(8)
    pager = AsyncPager(listing, page_size=3, max_items=max_items)
    assert await pager.to_list() == expected
    assert listing.asked == asked


async def test_lazy_and_restartable() -> None:
    listing = Listing(10)
    pager = AsyncPager(listing, page_size=2)
    assert listing.asked == []
    async for item in pager:
        if item == 2:
            break
    assert listing.asked == [(0, 2), (2, 2)]
    assert await pager.to_list() == list(range(10))
    assert listing.asked[2] == (0, 2)


async def test_page_error_propagates_from_the_step_that_needed_it() -> None:
    listing = Listing(10, fail_at=4)
    seen = []

    async def consume() -> None:
        async for item in AsyncPager(listing, page_size=2):
            seen.append(item)

    with pytest.raises(RuntimeError, match="page at 4 failed"):
        await consume()
    assert seen == [0, 1, 2, 3]


async def test_page_longer_than_asked_continues() -> None:
    calls = []

    async def generous(offset: int, limit: int) -> list[int]:
        calls.append(offset)
        return [offset] * (limit + 1) if offset == 0 else []

    assert await AsyncPager(generous, page_size=2).to_list() == [0, 0, 0]
    # The next page starts after what was received, not after what was asked for.
    assert calls == [0, 3]


@pytest.mark.parametrize(
    ("size", "error"),
    [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ("2", TypeError)],
)
def test_page_size_validated(size: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="limit"):
        validate_page_size(size)
    with pytest.raises(error):
        AsyncPager(Listing(1), page_size=size)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_items", [-1, True])
def test_max_items_validated(max_items: object) -> None:
    with pytest.raises(ValueError, match="max_items"):
        AsyncPager(Listing(1), page_size=2, max_items=max_items)  # type: ignore[arg-type]
