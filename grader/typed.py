"""Plain data (JSON, TOML) into typed frozen dataclasses and back, by the dataclasses' type hints.

One mechanism for every place where plain data becomes a record: rubric tables (a typo must not
silently change a grade), the sandboxed child's report (written by code a student controls), and
result.json (read back to resume a batch). `from_plain` checks each value against its field's
type and names the dotted key that is wrong; `to_plain` is its inverse (records become objects,
tuples lists, non-finite floats null), so `from_plain(T, to_plain(x)) == x` for every record here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args, get_origin

T = TypeVar("T")

_EXPECTED = {int: "a whole number", float: "a number", bool: "true or false", str: "a string", type(None): "null"}


class PlainError(ValueError):
    """Plain data that does not fit its declared type; the message names the dotted key."""


@dataclass(frozen=True)
class _Rules:
    context: str
    """Said after the key in messages ('in the rubric')."""
    unknown: Literal["reject", "drop"]
    """What to do with keys a record does not declare."""
    max_string: int | None
    """Strings are cut to this length (untrusted input)."""

    def where(self, key: str) -> str:
        return f"{key} {self.context}" if self.context else key

    def assigned(self, key: str, value: Any) -> str:
        """'train.lr = 'fast' in the rubric': the key, its value as given, and where."""
        return self.where(f"{key} = {_show(value)}")


def from_plain(kind: type[T], value: Any, key: str, *, context: str = "", unknown: Literal["reject", "drop"] = "reject",
               base: T | None = None, max_string: int | None = None) -> T:
    """`value` as an instance of `kind` (a dataclass or any supported type hint).

    `key` names `value` in messages ('train', 'result'). A record's missing fields take their
    value from `base` when given, else their default; a field without one is required unless it
    admits None. Raises PlainError naming the first key that is wrong.
    """
    rules = _Rules(context, unknown, max_string)
    if base is not None:
        if not isinstance(value, Mapping):
            raise PlainError(f"{rules.where(key)} must be a table of keys, not {_kind(value)}")
        _reject_unknown(kind, value, key, rules)
        value = {**to_plain(base), **value}
    return _convert(kind, value, key, rules)


def to_plain(value: Any) -> Any:
    """Records as dicts, tuples as lists, non-finite floats as None: what JSON can hold."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(hint: Any, value: Any, key: str, rules: _Rules) -> Any:
    if dataclasses.is_dataclass(hint):
        return _record(hint, value, key, rules)
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin is Literal:
        if not any(value == a and type(value) is type(a) for a in args):
            raise PlainError(f"{rules.assigned(key, value)}; expected {_expected(hint)}")
        return value
    if origin in (types.UnionType, typing.Union):
        return _union(args, value, key, rules, hint)
    if origin is tuple:
        return _tuple(args, value, key, rules)
    if origin in (list, Sequence):
        if not isinstance(value, (list, tuple)):
            raise PlainError(f"{rules.assigned(key, value)}; expected a list")
        return [_convert(args[0] if args else Any, v, f"{key}[{i}]", rules) for i, v in enumerate(value)]
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise PlainError(f"{rules.where(key)} must be a table of keys, not {_kind(value)}")
        item = args[1] if len(args) == 2 else Any
        return {str(k): _convert(item, v, f"{key}.{k}", rules) for k, v in value.items()}
    return _scalar(hint, value, key, rules)


def _record(cls: type, value: Any, key: str, rules: _Rules) -> Any:
    if not isinstance(value, Mapping):
        raise PlainError(f"{rules.where(key)} must be a table of keys, not {_kind(value)}")
    _reject_unknown(cls, value, key, rules)
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in value:
            values[f.name] = _convert(hints[f.name], value[f.name], f"{key}.{f.name}", rules)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if not _admits_none(hints[f.name]):
                raise PlainError(f"missing key {rules.where(f'{key}.{f.name}')}")
            values[f.name] = None
    return cls(**values)


def _reject_unknown(cls: type, value: Mapping, key: str, rules: _Rules) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(map(str, value)) - set(names))
    if unknown and rules.unknown == "reject":
        raise PlainError(f"unknown key {rules.where(f'{key}.{unknown[0]}')}; expected one of: {', '.join(names)}")


def _union(args: tuple, value: Any, key: str, rules: _Rules, hint: Any) -> Any:
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    if len(options) == 1:  # Optional[X]: X's own message says precisely what is wrong
        return _convert(options[0], value, key, rules)
    for option in options:
        try:
            return _convert(option, value, key, rules)
        except PlainError:
            continue
    raise PlainError(f"{rules.assigned(key, value)}; expected {_expected(hint)}")


def _tuple(args: tuple, value: Any, key: str, rules: _Rules) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise PlainError(f"{rules.assigned(key, value)}; expected a list")
    if len(args) == 2 and args[1] is Ellipsis:
        items = (args[0],) * len(value)
    elif not args:
        items = (Any,) * len(value)
    else:
        items = args
        if len(items) != len(value):
            raise PlainError(f"{rules.where(key)} must have {len(items)} items, not {len(value)}")
    return tuple(_convert(t, v, f"{key}[{i}]", rules) for i, (t, v) in enumerate(zip(items, value)))


def _scalar(hint: Any, value: Any, key: str, rules: _Rules) -> Any:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok = isinstance(value, hint) if isinstance(hint, type) else False
    if hint in (int, float) and isinstance(value, bool):
        ok = False  # true is not 1 here
    if hint is type(None):
        ok = value is None
    if not ok:
        raise PlainError(f"{rules.assigned(key, value)}; expected {_expected(hint)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise PlainError(f"{rules.assigned(key, value)}; expected a finite number")
    if isinstance(value, str) and rules.max_string is not None:
        return value[:rules.max_string]
    return value


def _admits_none(hint: Any) -> bool:
    return hint is type(None) or hint is Any or (
        get_origin(hint) in (types.UnionType, typing.Union) and type(None) in get_args(hint))


def _expected(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_expected(a) for a in args)
    if origin in (list, tuple, Sequence):
        return "a list"
    if dataclasses.is_dataclass(hint) or origin in (dict, Mapping):
        return "a table of keys"
    return _EXPECTED.get(hint, getattr(hint, "__name__", str(hint)))


def _kind(value: Any) -> str:
    kinds = {dict: "a table", list: "a list", bool: "a boolean", type(None): "null", int: "a number", float: "a number",
             str: "a string"}
    return kinds.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["PlainError", "from_plain", "to_plain"]
