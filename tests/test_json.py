"""Both JSON back-ends (orjson and the stdlib fallback) encode and refuse alike."""

from __future__ import annotations

import json
import math
from typing import Any, Callable

import orjson
import pytest

from crewship_async import _json

DUMPS: list[Callable[[Any], bytes]] = [_json.stdlib_dumps, _json.make_orjson_dumps(orjson)]


@pytest.mark.parametrize("dumps", DUMPS, ids=["stdlib", "orjson"])
@pytest.mark.parametrize(
    "value",
    [{"topic": "AI", "n": 1, "ok": True, "none": None}, ["é", "\u2028"], {"nested": {"a": [1.5]}}],
)
def test_encodes_compact_utf8(dumps: Callable[[Any], bytes], value: Any) -> None:
    encoded = dumps(value)
    assert json.loads(encoded) == value
    assert b", " not in encoded
    assert b": " not in encoded


@pytest.mark.parametrize("dumps", DUMPS, ids=["stdlib", "orjson"])
@pytest.mark.parametrize(
    "value", [math.nan, {"a": math.inf}, [1, [-math.inf]], {1, 2}, {"x": object()}]
)
def test_refuses_what_json_cannot_hold(dumps: Callable[[Any], bytes], value: Any) -> None:
    with pytest.raises(TypeError):
        dumps(value)


def test_decode_errors_cover_both_back_ends() -> None:
    for bad in (b"{", b"\xff"):
        with pytest.raises(_json.JSONDecodeError):
            _json.loads(bad)
        with pytest.raises(_json.STDLIB_DECODE_ERRORS):
            json.loads(bad)


def test_without_orjson_the_stdlib_back_end_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise ImportError(name)

    monkeypatch.setattr(_json.importlib, "import_module", missing)
    assert _json._import_orjson() is None
