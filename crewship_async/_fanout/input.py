"""What ``create_many`` takes, and how the fan-out pulls it one item at a time."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Iterable, Mapping
from typing import Any, Callable, Union

from ..models.runs import RequestItem, RunRequest

__all__ = ["END", "Pull", "RequestSource", "check_source", "puller"]

RequestSource = Union[Iterable[RequestItem], AsyncIterable[RequestItem]]
"""What ``create_many`` takes: any iterable or async iterable of :class:`RunRequest` or
mappings with its fields. Items are still checked at run time: a bad one is an error
outcome whose ``request`` is the item as given."""

Pull = Callable[[], Awaitable[Any]]
"""Returns the source's next item, or :data:`END` when it is exhausted."""

#: What a :data:`Pull` returns once the source is exhausted.
END: Any = object()


def check_source(requests: object) -> None:
    """Raise ``TypeError`` unless ``requests`` is an iterable or async iterable of items.

    A string, bytes, a mapping or a single :class:`RunRequest` is refused: iterating it
    would not give requests.
    """
    if isinstance(requests, (str, bytes, bytearray, Mapping, RunRequest)) or not isinstance(
        requests, (Iterable, AsyncIterable)
    ):
        raise TypeError(
            "requests must be an iterable or async iterable of RunRequest or mappings, "
            f"got a single {type(requests).__name__}"
        )


def puller(requests: RequestSource) -> Pull:
    """A coroutine function pulling one item of ``requests`` per call (:data:`END` at the
    end). A sync iterable is pulled with ``next()`` on the event loop."""
    if isinstance(requests, AsyncIterable):
        aiterator = requests.__aiter__()

        async def pull_async() -> Any:
            try:
                return await aiterator.__anext__()
            except StopAsyncIteration:
                return END

        return pull_async
    iterator = iter(requests)

    async def pull() -> Any:
        return next(iterator, END)

    return pull
