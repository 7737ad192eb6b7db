"""The generated model hooks against cattrs' own ``make_dict_structure_fn`` functions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Optional, Union

import attrs
import pytest
from cattrs.gen import make_dict_structure_fn
from conftest import RUN
from hypothesis import given
from hypothesis import strategies as st

from crewship_async import ResponseError, Run, Thread, ThreadStatus
from crewship_async._convert import converter, structure
from crewship_async.models.threads import Checkpoint

THREAD = {
    "thread_id": "th_1",
    "deployment_id": "dep_1",
    "status": "idle",
    "metadata": {"user": "u"},
    "values": {"messages": [{"role": "user", "content": "hi"}]},
    "created_at": "2024-01-15T10:35:00Z",
    "updated_at": "2024-01-15T10:36:00.5+02:00",
}
CHECKPOINT = {"checkpoint_id": "cp_1", "run_id": "run_1", "values": [1], "created_at": None}

# JSON-ish values, the kind of thing a server may send in any field.
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=5)
    | st.sampled_from(["2024-01-15T10:35:00Z", "2024-01-15", "idle", "busy"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=4,
)


def _by_cattrs(cls: type[Any]) -> Any:
    return make_dict_structure_fn(cls, converter)


def _outcome(hook: Any, data: Any, cls: type[Any]) -> Any:
    try:
        return hook(data, cls)
    except (TypeError, ValueError, KeyError):
        return "refused"


@pytest.mark.parametrize(("cls", "data"), [(Run, RUN), (Thread, THREAD), (Checkpoint, CHECKPOINT)])
def test_generated_hook_equals_cattrs_on_valid_data(cls: type[Any], data: dict[str, Any]) -> None:
    generated = converter.get_structure_hook(cls)(data, cls)
    assert generated == _by_cattrs(cls)(data, cls)
    assert generated.extra == {}


@given(
    changes=st.dictionaries(st.sampled_from(sorted(THREAD)), _JSON, max_size=3),
    dropped=st.sets(st.sampled_from(sorted(THREAD)), max_size=2),
)
def test_generated_thread_hook_accepts_and_refuses_what_cattrs_does(
    changes: dict[str, Any], dropped: set[str]
) -> None:
    data = {key: value for key, value in {**THREAD, **changes}.items() if key not in dropped}
    ours = _outcome(converter.get_structure_hook(Thread), data, Thread)
    theirs = _outcome(_by_cattrs(Thread), data, Thread)
    assert ours == theirs


def test_refused_data_gives_the_same_response_error_either_way() -> None:
    bad = {**THREAD, "created_at": 5}
    with pytest.raises(ResponseError, match="'created_at'") as info:
        structure(bad, Thread, method="GET", path="/t")
    with pytest.raises(TypeError, match="ISO-8601"):
        _by_cattrs(Thread)(bad, Thread)
    assert info.value.field == "created_at"


class _Tagged:
    """A mixin with a slot of its own that no ``__init__`` sets."""

    __slots__ = ("_tag",)

    @property
    def tag(self) -> Optional[str]:
        return getattr(self, "_tag", None)


@attrs.frozen(slots=True)
class WithMixin(_Tagged):
    name: str
    when: Optional[datetime] = None
    status: Union[ThreadStatus, str] = "idle"
    extra: Mapping[str, Any] = attrs.field(factory=dict)


def test_a_mixin_slot_outside_the_fields_is_left_unset() -> None:
    # Built through the slots, not __init__: the mixin's slot does not stop the fast path.
    hook = converter.get_structure_hook(WithMixin)
    assert "_new" in " ".join(hook.__code__.co_names)
    model = structure({"name": "n", "status": "busy", "x": 1}, WithMixin, method="G", path="/")
    assert model == WithMixin("n", None, ThreadStatus.BUSY, {"x": 1})
    assert model.tag is None
    object.__setattr__(model, "_tag", "t")
    assert model.tag == "t"
    assert model == WithMixin("n", None, ThreadStatus.BUSY, {"x": 1})
