"""client.tables and client.tables.rows against aioresponses."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Callable

import anyio
import anyio.lowlevel
import pytest
from aioresponses import CallbackResult, aioresponses

from crewship_async import (
    APITimeoutError,
    AsyncCrewship,
    BadRequestError,
    Column,
    NotFoundError,
    PartialInsertError,
    ResponseError,
    RetryPolicy,
    Row,
    RowMeta,
    Table,
    _deadline,
)
from crewship_async.resources import NOT_GIVEN
from crewship_async.resources._row_batches import partial_insert_error
from crewship_async.testing import CrewshipEmulator

BASE = "https://api.example.test"
TABLE = {
    "id": "tbl_1",
    "name": "qualified_leads",
    "description": "Only qualified prospects",
    "columns": [
        {"name": "company", "type": "text", "required": True},
        {"name": "score", "type": "number", "required": False},
    ],
    "row_count": 42,
    "created_at": "2024-01-15T10:35:00Z",
    "updated_at": "2024-01-20T08:12:00Z",
}
META = {
    "created_at": "2024-01-15T10:35:00Z",
    "created_by": "api:Production Key",
    "updated_at": "2024-01-15T10:35:00Z",
    "updated_by": "api:Production Key",
}
TABLE_URL = f"{BASE}/v1/tables/tbl_1"
ROWS_URL = f"{BASE}/v1/tables/tbl_1/rows"
ROWS_PATH = "/v1/tables/tbl_1/rows"
TABLES_LIST = re.compile(r"^https://api\.example\.test/v1/tables\?.*$")
ROWS_LIST = re.compile(r"^https://api\.example\.test/v1/tables/tbl_1/rows\?.*$")


def table(**changes: Any) -> dict[str, Any]:
    return {**TABLE, **changes}


def calls(mock: aioresponses, method: str, path: str) -> list[Any]:
    out = []
    for (m, url), made in mock.requests.items():
        if m == method and url.path == path:
            out.extend(made)
    return out


def body(call: Any) -> Any:
    return json.loads(call.kwargs["data"])


@pytest.fixture
async def client() -> AsyncIterator[AsyncCrewship]:
    policy = RetryPolicy(initial_delay=0.001, max_delay=0.01)
    async with AsyncCrewship(api_key="k", base_url=BASE, retry_policy=policy) as c:
        yield c


class RowServer:
    """Answers row inserts like the API: ``{"rows": [...]}`` with ids that say which input
    row they came from (each test row carries its input index under ``n``).

    ``together``: no batch is answered before that many are in flight at once (or 10 s
    passed: then ``max_in_flight`` shows the shortfall). ``answer_order``: those batches
    answer in that order, each once the ones before it have answered. ``delays``: seconds
    a batch waits after that, before answering.
    """

    def __init__(
        self,
        *,
        fail_batches: Any = (),
        delays: Any = None,
        together: int = 0,
        answer_order: Sequence[int] = (),
    ) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.fail_batches = set(fail_batches)
        self.delays = delays or {}
        self.together = together
        self.answer_order = list(answer_order)
        self.in_flight = 0
        self.max_in_flight = 0
        self._events: dict[Any, anyio.Event] = {}

    def _event(self, key: Any) -> anyio.Event:
        if key not in self._events:
            self._events[key] = anyio.Event()
        return self._events[key]

    async def answer(self, url: Any, **kwargs: Any) -> CallbackResult:
        rows = json.loads(kwargs["data"])
        number = len(self.batches)
        self.batches.append(rows)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.in_flight >= self.together:
            self._event("together").set()
        try:
            with anyio.move_on_after(10):
                await self._event("together").wait()
                if number in self.answer_order:
                    for earlier in self.answer_order[: self.answer_order.index(number)]:
                        await self._event(earlier).wait()
            await anyio.sleep(self.delays.get(number, 0))
        finally:
            self.in_flight -= 1
            self._event(number).set()
        if number in self.fail_batches:
            return CallbackResult(status=400, payload={"error": {"message": f"bad batch {number}"}})
        stored = [{"id": f"row_{row['n']}", **row, "_meta": META} for row in rows]
        return CallbackResult(status=201, payload={"rows": stored})


def numbered(count: int) -> list[dict[str, Any]]:
    return [{"n": n, "company": f"c{n}"} for n in range(count)]


# --- models ----------------------------------------------------------------------------------


def test_column_validation() -> None:
    assert Column("company", "text", required=True).to_json() == {
        "name": "company",
        "type": "text",
        "required": True,
    }
    with pytest.raises(ValueError, match=r"Column\.name"):
        Column("", "text")
    with pytest.raises(ValueError, match=r"Column\.type"):
        Column("a", "  ")
    with pytest.raises(TypeError):
        Column("a", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Column("a", "text", required="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Column("a", "text", extra={1: 2})  # type: ignore[dict-item]


def test_column_coerce() -> None:
    column = Column("a", "text")
    assert Column.coerce(column) is column
    made = Column.coerce({"name": "a", "type": "number", "unique": True})
    assert made == Column("a", "number", extra={"unique": True})
    assert made.to_json() == {"unique": True, "name": "a", "type": "number", "required": False}
    with pytest.raises(ValueError, match="'type'"):
        Column.coerce({"name": "a"})
    with pytest.raises(TypeError):
        Column.coerce(("a", "text"))


def test_table_column_lookup() -> None:
    made = Table("tbl_1", "t", columns=[Column("a", "text")])
    assert made.column("a") == Column("a", "text")
    assert made.column("b") is None


def test_row_indexing() -> None:
    row = Row("row_1", values={"company": "Acme"})
    assert row["company"] == "Acme"
    assert row.meta == RowMeta()


# --- tables ------------------------------------------------------------------------------------


async def test_create(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(
            f"{BASE}/v1/tables",
            status=201,
            payload=table(
                columns=[{"name": "company", "type": "text", "required": True, "unique": True}]
            ),
        )
        made = await client.tables.create(
            "leads",
            columns=[Column("company", "text", required=True), {"name": "score", "type": "number"}],
        )
    assert isinstance(made, Table)
    assert made.columns == [Column("company", "text", required=True, extra={"unique": True})]
    assert made.row_count == 42
    assert made.updated_at == datetime(2024, 1, 20, 8, 12, tzinfo=UTC)
    [call] = calls(m, "POST", "/v1/tables")
    assert body(call) == {
        "name": "leads",
        "columns": [
            {"name": "company", "type": "text", "required": True},
            {"name": "score", "type": "number", "required": False},
        ],
    }


async def test_create_with_description(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(f"{BASE}/v1/tables", status=201, payload=TABLE)
        await client.tables.create("leads", columns=(), description="All leads")
    [call] = calls(m, "POST", "/v1/tables")
    assert body(call) == {"name": "leads", "columns": [], "description": "All leads"}


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("",), {"columns": []}, ValueError, "name"),
        ((None,), {"columns": []}, ValueError, "name"),
        (("t",), {"columns": "company:text"}, TypeError, "columns"),
        (("t",), {"columns": {"name": "a", "type": "text"}}, TypeError, "columns"),
        (("t",), {"columns": Column("a", "text")}, TypeError, "columns"),
        (("t",), {"columns": 5}, TypeError, "columns"),
        (("t",), {"columns": [Column("a", "text"), 7]}, TypeError, r"columns\[1\]"),
        (("t",), {"columns": [{"name": "", "type": "text"}]}, ValueError, r"columns\[0\]"),
        (("t",), {"columns": [Column("a", "text"), Column("a", "number")]}, ValueError, "dup"),
        (("t",), {"columns": [], "description": 3}, TypeError, "description"),
    ],
)
async def test_create_checks_arguments_before_sending(
    client: AsyncCrewship,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    with aioresponses() as m:
        with pytest.raises(error, match=match):
            await client.tables.create(*args, **kwargs)
        assert not m.requests


async def test_get_and_bad_shape(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.get(TABLE_URL, payload=TABLE)
        m.get(TABLE_URL, payload=table(columns=[{"name": "", "type": "text"}]))
        got = await client.tables.get("tbl_1")
        assert got.description == "Only qualified prospects"
        assert got.column("score") == Column("score", "number")
        with pytest.raises(ResponseError, match="columns"):
            await client.tables.get("tbl_1")


async def test_get_unknown(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.get(f"{BASE}/v1/tables/tbl%2Fx", status=404, payload={"error": {"message": "nope"}})
        with pytest.raises(NotFoundError):
            await client.tables.get("tbl/x")


async def test_list_walks_pages(client: AsyncCrewship) -> None:
    items = [table(id=f"tbl_{n}") for n in range(5)]
    with aioresponses() as m:
        m.get(TABLES_LIST, payload={"tables": items[:2]})
        m.get(TABLES_LIST, payload={"tables": items[2:4]})
        m.get(TABLES_LIST, payload={"tables": items[4:]})
        got = [t.id async for t in client.tables.list(limit=2)]
    assert got == [f"tbl_{n}" for n in range(5)]
    sent = [dict(c.kwargs["params"]) for c in calls(m, "GET", "/v1/tables")]
    assert sent == [{"limit": 2, "offset": o} for o in (0, 2, 4)]


async def test_list_server_ignoring_paging(client: AsyncCrewship) -> None:
    items = [table(id=f"tbl_{n}") for n in range(5)]
    with aioresponses() as m:
        m.get(TABLES_LIST, payload={"tables": items}, repeat=True)
        got = [t.id async for t in client.tables.list(limit=2)]
        assert got == [f"tbl_{n}" for n in range(5)]
        assert len(calls(m, "GET", "/v1/tables")) == 1
        # Exactly `limit` tables: the second page repeats them and ends the walk.
        got = [t.id async for t in client.tables.list(limit=5)]
        assert got == [f"tbl_{n}" for n in range(5)]
        assert len(calls(m, "GET", "/v1/tables")) == 3


async def test_update_sends_only_what_is_given(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.patch(TABLE_URL, payload=TABLE, repeat=True)
        await client.tables.update("tbl_1", name="leads_v2")
        await client.tables.update("tbl_1", description=None)
        await client.tables.update("tbl_1", description="new", columns=[Column("a", "text")])
        await client.tables.update("tbl_1", name="x", description=NOT_GIVEN)
    sent = [body(call) for call in calls(m, "PATCH", "/v1/tables/tbl_1")]
    assert sent == [
        {"name": "leads_v2"},
        {"description": None},
        {"description": "new", "columns": [{"name": "a", "type": "text", "required": False}]},
        {"name": "x"},
    ]
    assert '"description":null' in calls(m, "PATCH", "/v1/tables/tbl_1")[1].kwargs[
        "data"
    ].decode().replace(" ", "")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "nothing to update"),
        ({"name": None}, TypeError, "name cannot be None"),
        ({"name": ""}, ValueError, "name"),
        ({"description": 5}, TypeError, "description"),
        ({"columns": None}, TypeError, "columns"),
    ],
)
async def test_update_checks_arguments_before_sending(
    client: AsyncCrewship, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with aioresponses() as m:
        with pytest.raises(error, match=match):
            await client.tables.update("tbl_1", **kwargs)
        assert not m.requests


def test_not_given_is_falsy_and_named() -> None:
    assert not NOT_GIVEN
    assert repr(NOT_GIVEN) == "NOT_GIVEN"


async def test_delete(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.delete(TABLE_URL, status=204)
        await client.tables.delete("tbl_1")
    assert len(calls(m, "DELETE", "/v1/tables/tbl_1")) == 1


# --- rows: the model ---------------------------------------------------------------------------


async def test_rows_list_and_row_model(client: AsyncCrewship) -> None:
    rows = [
        {"id": "row_1", "company": "Acme", "score": 92, "_meta": META},
        {"id": "row_2", "company": "Beta", "values": 3, "_meta": None},
        {"id": "row_3", "company": "Gamma"},
    ]
    with aioresponses() as m:
        m.get(ROWS_LIST, payload={"rows": rows[:2]})
        m.get(ROWS_LIST, payload={"rows": rows[2:]})
        got = await client.tables.rows.list("tbl_1", limit=2).to_list()
    first, second, third = got
    assert first.id == "row_1"
    assert first.values == {"company": "Acme", "score": 92}
    assert first.meta.created_by == "api:Production Key"
    assert first.meta.created_at == datetime(2024, 1, 15, 10, 35, tzinfo=UTC)
    assert first.extra == {}
    assert second.values == {"company": "Beta", "values": 3}
    assert second.meta == RowMeta()
    assert third.meta == RowMeta()
    sent = [dict(c.kwargs["params"]) for c in calls(m, "GET", ROWS_PATH)]
    assert sent == [{"limit": 2, "offset": 0}, {"limit": 2, "offset": 2}]


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"company": "no id"}, r"rows\[0\]\.id"),
        ({"id": 5}, r"rows\[0\]\.id"),
        ({"id": "row_1", "_meta": "yesterday"}, r"rows\[0\]\._meta"),
        ({"id": "row_1", "_meta": {"created_at": 7}}, r"rows\[0\]\._meta\.created_at"),
        ("row_1", r"rows\[0\]"),
    ],
)
async def test_rows_bad_shapes(client: AsyncCrewship, row: Any, match: str) -> None:
    with aioresponses() as m:
        m.get(ROWS_LIST, payload={"rows": [row]})
        with pytest.raises(ResponseError, match=match):
            await client.tables.rows.list("tbl_1").to_list()


async def test_rows_list_server_ignoring_paging(client: AsyncCrewship) -> None:
    rows = [{"id": f"row_{n}", "n": n} for n in range(3)]
    with aioresponses() as m:
        m.get(ROWS_LIST, payload={"rows": rows}, repeat=True)
        got = await client.tables.rows.list("tbl_1", limit=3).to_list()
    assert [r.id for r in got] == ["row_0", "row_1", "row_2"]


async def test_row_update_and_delete(client: AsyncCrewship) -> None:
    url = f"{ROWS_URL}/row_1"
    with aioresponses() as m:
        m.patch(url, payload={"id": "row_1", "company": "Acme", "score": 99, "_meta": META})
        m.delete(url, status=204)
        row = await client.tables.rows.update("tbl_1", "row_1", {"score": 99})
        await client.tables.rows.delete("tbl_1", "row_1")
    assert row.values == {"company": "Acme", "score": 99}
    [call] = calls(m, "PATCH", f"{ROWS_PATH}/row_1")
    assert body(call) == {"score": 99}
    assert len(calls(m, "DELETE", f"{ROWS_PATH}/row_1")) == 1


@pytest.mark.parametrize(
    ("values", "error"),
    [({}, ValueError), (None, TypeError), (["score"], TypeError), ({1: 2}, TypeError)],
)
async def test_row_update_checks_values(
    client: AsyncCrewship, values: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await client.tables.rows.update("tbl_1", "row_1", values)
    with pytest.raises(ValueError, match="row_id"):
        await client.tables.rows.update("tbl_1", "..", {"a": 1})


# --- rows.insert -------------------------------------------------------------------------------


async def test_insert_250_rows_in_3_batches_in_input_order(client: AsyncCrewship) -> None:
    # All three in flight at once, the first batch answering last: the result still
    # follows the input order.
    server = RowServer(together=3, answer_order=[2, 1, 0])
    with aioresponses() as m:
        m.post(ROWS_URL, callback=server.answer, repeat=True)
        rows = await client.tables.rows.insert("tbl_1", numbered(250))
    assert sorted(len(batch) for batch in server.batches) == [50, 100, 100]
    assert [row["n"] for batch in server.batches for row in batch] == list(range(250))
    assert [row.id for row in rows] == [f"row_{n}" for n in range(250)]
    assert rows[0].values == {"n": 0, "company": "c0"}
    assert rows[0].meta.updated_by == "api:Production Key"
    assert server.max_in_flight == 3


async def test_insert_respects_concurrency(client: AsyncCrewship) -> None:
    server = RowServer(together=2, delays=dict.fromkeys(range(10), 0.01))
    with aioresponses() as m:
        m.post(ROWS_URL, callback=server.answer, repeat=True)
        rows = await client.tables.rows.insert("tbl_1", numbered(1000), concurrency=2)
    assert len(rows) == 1000
    assert len(server.batches) == 10
    assert server.max_in_flight == 2


async def test_insert_one_mapping(client: AsyncCrewship) -> None:
    server = RowServer()
    with aioresponses() as m:
        m.post(ROWS_URL, callback=server.answer)
        rows = await client.tables.rows.insert("tbl_1", {"n": 0, "company": "Acme"})
    assert server.batches == [[{"n": 0, "company": "Acme"}]]
    [row] = rows
    assert row.id == "row_0"


async def test_insert_accepts_a_single_row_answer(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(ROWS_URL, status=201, payload={"id": "row_1", "company": "Acme", "_meta": META})
        [row] = await client.tables.rows.insert("tbl_1", [{"company": "Acme"}])
    assert row.values == {"company": "Acme"}


async def test_insert_nothing(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        assert await client.tables.rows.insert("tbl_1", []) == []
        assert await client.tables.rows.insert("tbl_1", iter(())) == []
        assert not m.requests


async def test_insert_reads_a_generator_lazily(client: AsyncCrewship) -> None:
    consumed = 0
    seen_at_post: list[int] = []

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal consumed
        for n in range(450):
            consumed += 1
            yield {"n": n}

    async def answer(url: Any, **kwargs: Any) -> CallbackResult:
        seen_at_post.append(consumed)
        batch = json.loads(kwargs["data"])
        return CallbackResult(
            status=201, payload={"rows": [{"id": f"row_{r['n']}"} for r in batch]}
        )

    with aioresponses() as m:
        m.post(ROWS_URL, callback=answer, repeat=True)
        got = await client.tables.rows.insert("tbl_1", rows(), concurrency=1)
    assert len(got) == 450
    # With one batch in flight, at most one batch is read ahead of the one being sent.
    assert all(seen <= 100 * (k + 1) for k, seen in enumerate(seen_at_post))


async def test_insert_async_iterable(client: AsyncCrewship) -> None:
    async def rows() -> AsyncIterator[dict[str, Any]]:
        for n in range(150):
            await anyio.lowlevel.checkpoint()
            yield {"n": n}

    server = RowServer()
    with aioresponses() as m:
        m.post(ROWS_URL, callback=server.answer, repeat=True)
        got = await client.tables.rows.insert("tbl_1", rows())
    assert [r.id for r in got] == [f"row_{n}" for n in range(150)]
    assert [len(b) for b in server.batches] == [100, 50]


async def test_failing_middle_batch_sequential(client: AsyncCrewship) -> None:
    server = RowServer(fail_batches={1})
    with aioresponses() as m:
        m.post(ROWS_URL, callback=server.answer, repeat=True)
        with pytest.raises(PartialInsertError) as caught:
            await client.tables.rows.insert("tbl_1", numbered(250), concurrency=1)
    error = caught.value
    assert len(server.batches) == 2  # the third batch was never sent
    assert error.inserted_indices == list(range(100))
    assert [row.id for row in error.inserted] == [f"row_{n}" for n in range(100)]
    assert error.failed_indices == list(range(100, 250))
    assert isinstance(error.cause, BadRequestError)
    assert error.__cause__ is error.cause
    assert "rows 100-199: BadRequestError" in str(error)
    assert "inserted 100 rows; 150 rows (100-249) were not" in str(error)


async def test_failing_middle_batch_of_a_generator(client: AsyncCrewship) -> None:
    server = RowServer(fail_batches={1})
    source = iter(numbered(450))
    with aioresponses() as m:
        m.post(ROWS_URL, callback=server.answer, repeat=True)
        with pytest.raises(PartialInsertError) as caught:
            await client.tables.rows.insert("tbl_1", (row for row in source), concurrency=1)
    error = caught.value
    assert error.inserted_indices == list(range(100))
    assert error.failed_indices == list(range(100, 200))  # what was read, no more
    assert next(source)["n"] == 200  # reading stopped at the failure


async def test_failing_batch_with_concurrency(client: AsyncCrewship) -> None:
    # Batch 1 fails while 0 and 2 are in flight; they finish, nothing new is sent.
    server = RowServer(fail_batches={1}, together=3, answer_order=[1, 0, 2])
    with aioresponses() as m:
        m.post(ROWS_URL, callback=server.answer, repeat=True)
        with pytest.raises(PartialInsertError) as caught:
            await client.tables.rows.insert("tbl_1", numbered(1000), concurrency=3)
    error = caught.value
    inserted, failed = error.inserted_indices, error.failed_indices
    assert sorted(inserted + failed) == list(range(1000))  # each index exactly once
    assert set(range(100, 200)) <= set(failed)
    assert set(range(100)) | set(range(200, 300)) <= set(inserted)
    assert len(server.batches) < 10
    assert [row.values["n"] for row in error.inserted] == inserted == sorted(inserted)


async def test_two_failing_batches_are_both_reported(client: AsyncCrewship) -> None:
    server = RowServer(fail_batches={0, 1}, together=2, answer_order=[1, 0])
    with aioresponses() as m:
        m.post(ROWS_URL, callback=server.answer, repeat=True)
        with pytest.raises(PartialInsertError) as caught:
            await client.tables.rows.insert("tbl_1", numbered(200), concurrency=2)
    error = caught.value
    assert error.inserted == []
    assert error.failed_indices == list(range(200))
    assert "bad batch 1" in str(error.cause)  # the first to fail in time
    assert "rows 0-99" in str(error)
    assert "rows 100-199" in str(error)


async def test_bad_row_before_anything_is_sent(client: AsyncCrewship) -> None:
    rows: list[Any] = [*numbered(50), "not a row"]
    with aioresponses() as m:
        with pytest.raises(TypeError, match=r"rows\[50\]"):
            await client.tables.rows.insert("tbl_1", rows)
        with pytest.raises(TypeError, match=r"rows\[1\] keys"):
            await client.tables.rows.insert("tbl_1", [{"a": 1}, {2: "b"}])  # type: ignore[dict-item]
        assert not m.requests


async def test_bad_row_after_batches_were_sent(client: AsyncCrewship) -> None:
    server = RowServer()
    rows: list[Any] = numbered(250)
    rows[230] = ["not", "a", "row"]
    with aioresponses() as m:
        m.post(ROWS_URL, callback=server.answer, repeat=True)
        with pytest.raises(PartialInsertError) as caught:
            await client.tables.rows.insert("tbl_1", rows, concurrency=1)
    error = caught.value
    assert isinstance(error.cause, TypeError)
    assert "rows[230]" in str(error.cause)
    assert error.inserted_indices == list(range(200))
    assert error.failed_indices == list(range(200, 250))
    assert len(server.batches) == 2


async def test_iterator_error(client: AsyncCrewship) -> None:
    def broken(after: int) -> Iterator[dict[str, Any]]:
        yield from numbered(after)
        raise RuntimeError("source failed")

    server = RowServer()
    with aioresponses() as m:
        m.post(ROWS_URL, callback=server.answer, repeat=True)
        with pytest.raises(RuntimeError, match="source failed"):
            await client.tables.rows.insert("tbl_1", broken(30))
        assert not m.requests
        with pytest.raises(PartialInsertError) as caught:
            await client.tables.rows.insert("tbl_1", broken(100), concurrency=1)
    error = caught.value
    assert isinstance(error.cause, RuntimeError)
    assert error.inserted_indices == list(range(100))
    assert error.failed_indices == []
    assert "reading rows[100]: RuntimeError" in str(error)


async def test_wrong_answer_counts_as_a_failed_batch(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(ROWS_URL, status=201, payload={"rows": [{"id": "row_1"}]})
        with pytest.raises(PartialInsertError) as caught:
            await client.tables.rows.insert("tbl_1", numbered(2))
    error = caught.value
    assert isinstance(error.cause, ResponseError)
    assert "sent 2 rows, the response holds 1" in str(error.cause)
    assert error.failed_indices == [0, 1]


async def test_unserialisable_value(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        with pytest.raises(PartialInsertError) as caught:
            await client.tables.rows.insert("tbl_1", [{"when": object()}])
        assert not m.requests
    assert isinstance(caught.value.cause, TypeError)


async def test_insert_deadline(client: AsyncCrewship, monkeypatch: pytest.MonkeyPatch) -> None:
    offset = 0.0
    real: Callable[[], float] = _deadline.now
    monkeypatch.setattr(_deadline, "now", lambda: real() + offset)

    async def late(url: Any, **kwargs: Any) -> CallbackResult:
        nonlocal offset
        offset += 100  # this batch went through, the next one is past the deadline
        batch = json.loads(kwargs["data"])
        return CallbackResult(status=201, payload={"rows": [{"id": f"r{r['n']}"} for r in batch]})

    with aioresponses() as m:
        m.post(ROWS_URL, callback=late, repeat=True)
        with pytest.raises(PartialInsertError) as caught:
            await client.tables.rows.insert("tbl_1", numbered(150), concurrency=1, timeout=10)
    error = caught.value
    assert isinstance(error.cause, APITimeoutError)
    assert "timeout of 10s passed" in str(error.cause)
    assert error.inserted_indices == list(range(100))
    assert len(calls(m, "POST", ROWS_PATH)) == 1


@pytest.mark.parametrize(
    ("rows", "kwargs", "error"),
    [
        ("company", {}, TypeError),
        (b"company", {}, TypeError),
        (42, {}, TypeError),
        ([{"a": 1}], {"concurrency": 0}, ValueError),
        ([{"a": 1}], {"concurrency": True}, TypeError),
        ([{"a": 1}], {"concurrency": 2.0}, TypeError),
        ([{"a": 1}], {"timeout": 0}, ValueError),
    ],
)
async def test_insert_checks_arguments(
    client: AsyncCrewship, rows: Any, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with aioresponses() as m:
        with pytest.raises(error):
            await client.tables.rows.insert("tbl_1", rows, **kwargs)
        assert not m.requests


def test_partial_insert_error_names_the_rows_not_stored_as_ranges() -> None:
    row = Row("row_1")
    path = "/v1/tables/tbl_1/rows"
    failures: list[tuple[int, int, Exception]] = [(0, 3, ValueError("boom"))]
    error = partial_insert_error(path, {3: [row, row], 6: [row]}, failures, 9)
    assert error.failed_indices == [0, 1, 2, 5, 7, 8]
    assert error.inserted_indices == [3, 4, 6]
    assert "6 rows (0-2, 5, 7-8) were not: rows 0-2: ValueError: boom" in str(error)
    assert error.__cause__ is failures[0][2]
    stored_odd = {2 * n + 1: [row] for n in range(10)}
    many = partial_insert_error(path, stored_odd, failures, 20)
    assert "(0, 2, 4, 6, 8, 10, ...)" in str(many)


# --- end to end, against the emulator --------------------------------------------------------


@pytest.fixture
async def emulator() -> AsyncIterator[CrewshipEmulator]:
    async with CrewshipEmulator(step_delay=0.005) as emu:
        yield emu


@pytest.fixture
async def live(emulator: CrewshipEmulator) -> AsyncIterator[AsyncCrewship]:
    async with emulator.client(retry_policy=RetryPolicy(initial_delay=0.001, max_delay=0.01)) as c:
        yield c


async def test_e2e_insert_250_rows_in_3_batches(
    emulator: CrewshipEmulator, live: AsyncCrewship
) -> None:
    made = await live.tables.create(
        "leads",
        columns=[Column("company", "text", required=True), {"name": "n", "type": "number"}],
        description="e2e",
    )
    emulator.clear_requests()
    rows = await live.tables.rows.insert(
        made.id, ({"company": f"c{n}", "n": n} for n in range(250))
    )
    posts = [r for r in emulator.requests if r.method == "POST"]
    assert sorted(len(r.body) for r in posts) == [50, 100, 100]
    assert [row.values["n"] for row in rows] == list(range(250))
    assert len({row.id for row in rows}) == 250
    assert rows[0].meta.created_by is not None
    assert rows[0].meta.created_by.startswith("api:")
    assert (await live.tables.get(made.id)).row_count == 250

    listed = await live.tables.rows.list(made.id, limit=7).to_list()
    assert [row.id for row in listed] == [row.id for row in rows]


async def test_e2e_failed_batch_is_reported(live: AsyncCrewship) -> None:
    made = await live.tables.create("strict", columns=[Column("n", "number", required=True)])
    rows: list[dict[str, Any]] = [{"n": n} for n in range(250)]
    rows[150] = {"n": "not a number"}
    with pytest.raises(PartialInsertError) as caught:
        await live.tables.rows.insert(made.id, rows, concurrency=1)
    error = caught.value
    assert isinstance(error.cause, BadRequestError)
    assert error.inserted_indices == list(range(100))
    assert error.failed_indices == list(range(100, 250))
    # Re-sending exactly the failed indices (fixed) completes the table without duplicates.
    rows[150] = {"n": 150}
    await live.tables.rows.insert(made.id, [rows[i] for i in error.failed_indices])
    stored = await live.tables.rows.list(made.id, limit=100).to_list()
    assert sorted(row.values["n"] for row in stored) == list(range(250))


async def test_e2e_table_lifecycle_and_listing(live: AsyncCrewship) -> None:
    ids = [(await live.tables.create(f"t{n}", columns=[Column("a", "text")])).id for n in range(5)]
    listed = [t.id async for t in live.tables.list(limit=2)]
    assert sorted(listed) == sorted(ids)  # once each, whatever the server does with limit
    updated = await live.tables.update(
        ids[0], name="renamed", description="d", columns=[Column("b", "number")]
    )
    assert (updated.name, updated.description) == ("renamed", "d")
    assert [c.name for c in updated.columns] == ["b"]
    cleared = await live.tables.update(ids[0], description=None)
    assert cleared.description is None
    assert cleared.name == "renamed"
    [row] = await live.tables.rows.insert(ids[0], {"b": 1})
    changed = await live.tables.rows.update(ids[0], row.id, {"b": 2})
    assert changed["b"] == 2
    await live.tables.rows.delete(ids[0], row.id)
    assert await live.tables.rows.list(ids[0]).to_list() == []
    await live.tables.delete(ids[0])
    with pytest.raises(NotFoundError):
        await live.tables.get(ids[0])
