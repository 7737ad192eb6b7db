"""The exception tree: hierarchy, messages, and pickling with every attribute."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import crewship_async
from crewship_async import errors
from crewship_async.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    CrewshipError,
    InternalServerError,
    NotFoundError,
    PartialInsertError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    ServiceUnavailableError,
    StreamError,
    ThreadBusyError,
)

API_FIELDS: dict[str, Any] = {
    "status_code": 404,
    "method": "GET",
    "path": "/v1/runs/run_1",
    "code": "not_found",
    "body": {"error": {"message": "Run not found", "code": "not_found"}},
    "request_id": "req_123",
}


def samples() -> list[CrewshipError]:
    return [
        CrewshipError("plain"),
        ClientClosedError("closed"),
        APIError("teapot", **{**API_FIELDS, "status_code": 418}),
        BadRequestError("bad", **{**API_FIELDS, "status_code": 400}),
        AuthenticationError("who", **{**API_FIELDS, "status_code": 401}),
        PermissionDeniedError("no", **{**API_FIELDS, "status_code": 403}),
        NotFoundError("Run not found", **API_FIELDS),
        ConflictError("conflict", **{**API_FIELDS, "status_code": 409}),
        ThreadBusyError("busy", thread_id="thr_1", **{**API_FIELDS, "status_code": 409}),
        RateLimitError("slow down", retry_after=2.5, **{**API_FIELDS, "status_code": 429}),
        ServiceUnavailableError("later", **{**API_FIELDS, "status_code": 503}),
        InternalServerError("boom", **{**API_FIELDS, "status_code": 500}),
        APIConnectionError("refused", method="POST", path="/v1/runs"),
        APITimeoutError("too slow", method="GET", path="/v1/runs/run_1"),
        StreamError("stream broke"),
        ResponseError("bad shape", method="GET", path="/v1/runs/x", field="status"),
        PartialInsertError(
            "partial",
            inserted=[{"id": "row_1"}],
            inserted_indices=[0],
            failed_indices=[1, 2],
            cause=BadRequestError("bad row", **{**API_FIELDS, "status_code": 400}),
        ),
    ]


@pytest.mark.parametrize("error", samples(), ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_errors_pickle_with_their_attributes(error: CrewshipError, protocol: int) -> None:
    clone = pickle.loads(pickle.dumps(error, protocol=protocol))
    assert type(clone) is type(error)
    assert str(clone) == str(error)
    assert clone.args == error.args
    for name, value in vars(error).items():
        if isinstance(value, BaseException):
            assert type(getattr(clone, name)) is type(value)
            assert str(getattr(clone, name)) == str(value)
        else:
            assert getattr(clone, name) == value, name


def test_hierarchy() -> None:
    assert issubclass(APIError, CrewshipError)
    for cls in (
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        RateLimitError,
        ServiceUnavailableError,
        InternalServerError,
    ):
        assert issubclass(cls, APIError)
    assert issubclass(ThreadBusyError, ConflictError)
    assert issubclass(APIConnectionError, CrewshipError)
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(APITimeoutError, TimeoutError)
    assert not issubclass(APIConnectionError, APIError)
    assert issubclass(StreamError, CrewshipError)
    assert issubclass(ResponseError, CrewshipError)
    assert issubclass(ClientClosedError, RuntimeError)
    for name in errors.__all__:
        assert getattr(crewship_async, name) is getattr(errors, name)


def test_api_error_str_names_request_and_answer() -> None:
    error = NotFoundError("Run not found", **API_FIELDS)
    assert str(error) == (
        "GET /v1/runs/run_1 -> 404: Run not found (code=not_found) [request_id=req_123]"
    )
    assert error.message == "Run not found"
    bare = BadRequestError("nope", status_code=400, method="POST", path="/v1/runs")
    assert str(bare) == "POST /v1/runs -> 400: nope"
    assert bare.code is None
    assert bare.body is None
    assert bare.request_id is None


def test_specific_attributes() -> None:
    limited = RateLimitError("slow", status_code=429, method="GET", path="/v1/runs")
    assert limited.retry_after is None
    busy = ThreadBusyError("busy", thread_id="thr_9", status_code=409, method="POST", path="/p")
    assert busy.thread_id == "thr_9"
    assert busy.status_code == 409
    response = ResponseError("odd")
    assert (response.method, response.path, response.field) == ("", "", None)
    partial = samples()[-1]
    assert isinstance(partial, PartialInsertError)
    assert partial.failed_indices == [1, 2]
    assert isinstance(partial.cause, BadRequestError)
