"""Case ``decode``: turning a 1,000-thread list page into models (in-process, no network).

The page is the canned upstream's ``GET /v1/threads`` body (:func:`thread_page_body`):
1,000 Thread objects with metadata, a few messages in ``values``, and two ISO-8601
timestamps each. Every client decodes the same bytes ``I`` times (default 100) after a
warm-up; the figure is client CPU (and wall) time per page.

* ``SDK structure_list``: ``crewship_async._convert.structure_list(
  crewship_async._json.loads(body), "threads", Thread, method="GET", path="/v1/threads")``
  (SKIP while the ``Thread`` model is not available).
* ``pydantic model_validate_json``: ``ThreadListModel.model_validate_json(body)`` with a
  pydantic v2 model equivalent to ``Thread`` (``extra="allow"``, datetimes parsed, status
  ``Union[ThreadStatus, str]``): the SDK must be at least as fast (<= 1.0x).
* ``pydantic TypeAdapter``: ``TypeAdapter(ThreadListModel).validate_json(body)``
  (informational; the same work through a TypeAdapter).
* ``JSON parse only``: ``crewship_async._json.loads(body)`` (informational: the share of
  the SDK's figure that is JSON parsing rather than model building).
"""

from __future__ import annotations

import enum
from typing import Any, Optional, Union

from benchmarks._harness import Meter, Unavailable
from benchmarks._report import Figure, Row, Target, compare
from benchmarks.upstream import thread_page_body

NAME = "decode"
MODULE = __name__.rpartition(".")[2]
TITLE = "list decode"
NEEDS_UPSTREAM = False
WARMUP = 3


def _thread_model() -> Any:
    try:
        from crewship_async.models.threads import Thread
    except ImportError:
        try:
            from crewship_async import Thread  # type: ignore[attr-defined]
        except ImportError:
            raise Unavailable("the Thread model is not available") from None
    return Thread


def sdk_structure_list(meter: Meter, params: dict[str, Any]) -> None:
    """``structure_list(loads(body), "threads", Thread, ...)``."""
    from crewship_async._convert import structure_list
    from crewship_async._json import loads

    thread = _thread_model()
    body = thread_page_body(params["threads"])

    def decode() -> list[Any]:
        return structure_list(loads(body), "threads", thread, method="GET", path="/v1/threads")

    for _ in range(WARMUP):
        page = decode()
    _check_sdk(page, params["threads"])
    iterations = params["iterations"]
    with meter.measure(iterations):
        for _ in range(iterations):
            decode()


def _check_sdk(page: list[Any], count: int) -> None:
    from datetime import datetime

    if len(page) != count or not isinstance(page[0].created_at, datetime):
        raise RuntimeError("the SDK decoded an unexpected page")


def _pydantic_models() -> Any:
    try:
        import pydantic
    except ImportError:
        raise Unavailable("pydantic is not installed (pip install -e '.[bench]')") from None
    from datetime import datetime

    class ThreadStatus(str, enum.Enum):
        IDLE = "idle"
        BUSY = "busy"
        INTERRUPTED = "interrupted"
        ERROR = "error"

    class ThreadModel(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="allow", frozen=True)
        thread_id: str
        status: Union[ThreadStatus, str]
        deployment_id: Optional[str] = None
        metadata: Optional[dict[str, Any]] = None
        values: Optional[dict[str, Any]] = None
        created_at: Optional[datetime] = None
        updated_at: Optional[datetime] = None

    class ThreadListModel(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="allow")
        threads: list[ThreadModel]

    return pydantic, ThreadListModel


def _run_pydantic(meter: Meter, params: dict[str, Any], *, adapter: bool) -> None:
    from datetime import datetime

    pydantic, thread_list = _pydantic_models()
    body = thread_page_body(params["threads"])
    decode = (
        pydantic.TypeAdapter(thread_list).validate_json
        if adapter
        else thread_list.model_validate_json
    )
    for _ in range(WARMUP):
        page = decode(body)
    if len(page.threads) != params["threads"] or not isinstance(
        page.threads[0].created_at, datetime
    ):
        raise RuntimeError("pydantic decoded an unexpected page")
    iterations = params["iterations"]
    with meter.measure(iterations):
        for _ in range(iterations):
            decode(body)


def pydantic_model(meter: Meter, params: dict[str, Any]) -> None:
    """``ThreadListModel.model_validate_json(body)``."""
    _run_pydantic(meter, params, adapter=False)


def pydantic_adapter(meter: Meter, params: dict[str, Any]) -> None:
    """``TypeAdapter(ThreadListModel).validate_json(body)``."""
    _run_pydantic(meter, params, adapter=True)


def json_only(meter: Meter, params: dict[str, Any]) -> None:
    """``crewship_async._json.loads(body)`` alone."""
    from crewship_async._json import loads

    body = thread_page_body(params["threads"])
    for _ in range(WARMUP):
        loads(body)
    iterations = params["iterations"]
    with meter.measure(iterations):
        for _ in range(iterations):
            loads(body)


VARIANTS = {
    "sdk_structure_list": sdk_structure_list,
    "pydantic_model": pydantic_model,
    "pydantic_adapter": pydantic_adapter,
    "json_only": json_only,
}

LABELS = {
    "sdk_structure_list": "SDK structure_list",
    "pydantic_model": "pydantic model_validate_json",
    "pydantic_adapter": "pydantic TypeAdapter",
    "json_only": "JSON parse only (SDK _json)",
}


def run(ctx: Any) -> list[Row]:
    """Measure every decoder and compare them."""
    params = {"threads": ctx.sizes.decode_threads, "iterations": ctx.sizes.decode_iterations}
    figures: dict[str, Figure] = ctx.measure(
        MODULE, {LABELS[v]: (v, params) for v in VARIANTS}, profile=["sdk_structure_list"]
    )
    sdk = figures["SDK structure_list"]

    def cpu(figure: Figure) -> float:
        return figure.per_op("cpu") * 1e3

    metric = f"CPU/page ({params['threads']:,} threads)"
    return [
        compare(
            TITLE,
            metric,
            sdk,
            figures["pydantic model_validate_json"],
            value=cpu,
            unit="ms",
            target=Target(1.0),
        ),
        compare(TITLE, metric, sdk, figures["pydantic TypeAdapter"], value=cpu, unit="ms"),
        compare(TITLE, metric, sdk, figures["JSON parse only (SDK _json)"], value=cpu, unit="ms"),
    ]
