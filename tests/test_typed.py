"""grader.typed: plain data into typed records and back, naming the key that is wrong."""

from dataclasses import dataclass, field
from typing import Literal, Mapping

import pytest

from grader.typed import PlainError, from_plain, to_plain


@dataclass(frozen=True)
class Inner:
    kind: Literal["a", "b"]
    size: float | None = None


@dataclass(frozen=True)
class Outer:
    name: str
    shape: tuple[int, int]
    inner: Inner
    items: tuple[Inner, ...] = ()
    table: Mapping[str, int] = field(default_factory=dict)
    note: str | None = None


VALUE = Outer("x", (2, 3), Inner("a", 1.5), (Inner("b"),), {"k": 1}, None)


def test_round_trip():
    plain = to_plain(VALUE)
    assert plain == {"name": "x", "shape": [2, 3], "inner": {"kind": "a", "size": 1.5},
                     "items": [{"kind": "b", "size": None}], "table": {"k": 1}, "note": None}
    assert from_plain(Outer, plain, "outer") == VALUE


def test_non_finite_floats_become_null_and_ints_are_accepted_as_floats():
    assert to_plain(Inner("a", float("nan"))) == {"kind": "a", "size": None}
    assert from_plain(Inner, {"kind": "a", "size": 2}, "inner").size == 2.0


@pytest.mark.parametrize("plain, message", [
    ({**to_plain(VALUE), "shape": [2]}, "outer.shape must have 2 items, not 1"),
    ({**to_plain(VALUE), "inner": {"kind": "c"}}, "outer.inner.kind = 'c'; expected one of 'a', 'b'"),
    ({**to_plain(VALUE), "inner": {"kind": "a", "size": True}}, "outer.inner.size = True; expected a number"),
    ({**to_plain(VALUE), "table": {"k": "1"}}, "outer.table.k = '1'; expected a whole number"),
    ({**to_plain(VALUE), "items": {"kind": "a"}}, "outer.items = {'kind': 'a'}; expected a list"),
    ({k: v for k, v in to_plain(VALUE).items() if k != "inner"}, "missing key outer.inner"),
    ({**to_plain(VALUE), "extra": 1}, "unknown key outer.extra; expected one of: name, shape, inner"),
    ("x", "outer must be a table of keys, not a string"),
])
def test_the_message_names_the_key(plain, message):
    with pytest.raises(PlainError) as e:
        from_plain(Outer, plain, "outer")
    assert str(e.value).startswith(message)


def test_untrusted_input_drops_unknown_keys_and_cuts_strings():
    plain = {**to_plain(VALUE), "extra": 1, "name": "y" * 100}
    read = from_plain(Outer, plain, "report", unknown="drop", max_string=10, context="in the child's report")
    assert read.name == "y" * 10
    with pytest.raises(PlainError, match=r"^report.shape in the child's report must have 2 items, not 1$"):
        from_plain(Outer, {**plain, "shape": [1]}, "report", unknown="drop", context="in the child's report")


def test_a_base_fills_missing_fields_but_unknown_keys_are_still_refused():
    base = Inner("b", 4.0)
    assert from_plain(Inner, {"kind": "a"}, "quick", base=base) == Inner("a", 4.0)
    with pytest.raises(PlainError, match="unknown key quick.sise"):
        from_plain(Inner, {"sise": 1}, "quick", base=base)
