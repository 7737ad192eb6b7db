"""Both JSON back-ends (orjson and the stdlib fallback) encode and refuse alike."""

from __future__ import annotations

import json
import math
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crewship_async import _json

try:
    import orjson
except ImportError:  # the suite also runs without the orjson extra
    orjson = None

needs_orjson = pytest.mark.skipif(orjson is None, reason="orjson is not installed")
DUMPS = [
    pytest.param(_json.stdlib_dumps, id="stdlib"),
    pytest.param(
        _json.make_orjson_dumps(orjson) if orjson else None, id="orjson", marks=needs_orjson
    ),
]
LOADS = [
    pytest.param(_json.stdlib_loads, id="stdlib"),
    pytest.param(orjson.loads if orjson else None, id="orjson", marks=needs_orjson),
]


@pytest.mark.parametrize("dumps", DUMPS)
@pytest.mark.parametrize(
    "value",
    [{"topic": "AI", "n": 1, "ok": True, "none": None}, ["é", "\u2028"], {"nested": {"a": [1.5]}}],
)
def test_encodes_compact_utf8(dumps: Callable[[Any], bytes], value: Any) -> None:
    encoded = dumps(value)
    assert json.loads(encoded) == value
    assert b", " not in encoded
    assert b": " not in encoded


@pytest.mark.parametrize("dumps", DUMPS)
@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        {"a": math.inf},
        [1, [-math.inf]],
        {1, 2},
        {"x": object()},
        {1: "int key"},
        {"n": 2**70},
        [-(2**63) - 1],
    ],
)
def test_refuses_what_json_cannot_hold(dumps: Callable[[Any], bytes], value: Any) -> None:
    with pytest.raises(TypeError):
        dumps(value)


HOSTILE_JSON = {
    "truncated": b"{",
    "invalid UTF-8": b'"\xff"',
    "NaN": b"NaN",
    "Infinity": b"[-Infinity]",
    "100,000 digits": b"1" * 100_000,
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "BOM": b"\xef\xbb\xbf{}",
}


@pytest.mark.parametrize("loads", LOADS)
@pytest.mark.parametrize("text", HOSTILE_JSON.values(), ids=HOSTILE_JSON.keys())
def test_what_either_decoder_cannot_take_raises_json_decode_error(
    loads: Callable[[bytes], Any], text: bytes
) -> None:
    with pytest.raises(_json.JSONDecodeError):
        loads(text)
    with pytest.raises(_json.STDLIB_DECODE_ERRORS):
        _json.loads(text)


@pytest.mark.parametrize("loads", LOADS)
def test_both_decoders_read_bytes_and_str_alike(loads: Callable[[Any], Any]) -> None:
    document = {"a": [1, 2.5, None, True], "é": "ü"}
    encoded = json.dumps(document)
    assert loads(encoded) == loads(encoded.encode()) == document


def test_without_orjson_the_stdlib_back_end_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise ImportError(name)

    monkeypatch.setattr(_json.importlib, "import_module", missing)
    assert _json._import_orjson() is None


def _decode_outcome(decode: Callable[[str], Any], text: str) -> tuple[str, Any]:
    try:
        return "value", decode(text)
    except (ValueError, RecursionError) as exc:
        return type(exc).__name__, str(exc)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)
PADDING = st.sampled_from(["", " ", "\n", "\t ", "x", "]", "{", "NaN", "1"])


@settings(derandomize=True, deadline=None, database=None, max_examples=300)
@given(value=JSON_VALUES, before=PADDING, after=PADDING, cut=st.integers(0, 40))
def test_stdlib_loads_matches_the_stdlib_decoder(
    value: Any, before: str, after: str, cut: int
) -> None:
    # The single-scan fast path gives the decoder's value or error, for whole documents,
    # padded ones, ones with trailing data and truncated ones alike.
    text = json.dumps(value)
    reference = json.JSONDecoder(parse_constant=_json._refuse_constant).decode
    for candidate in (text, before + text + after, text[:cut]):
        assert _decode_outcome(_json.stdlib_loads, candidate) == _decode_outcome(
            reference, candidate
        )
