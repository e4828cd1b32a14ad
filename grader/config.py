"""Declared configuration: the data split and the fixed training setup.

These are plain frozen dataclasses with no torch import, so that the rubric (read on the fast
static path) can build them. `from_mapping` is the one loader for every config table: it rejects
unknown keys and wrong types with the key's full name, in the spirit of Otter's declared config.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Mapping, TypeVar, get_args, get_origin

from grader.errors import RubricError

T = TypeVar("T")


@dataclass(frozen=True)
class DataConfig:
    """How CIFAR-10's training images are split and normalized (the assignment's own choice)."""

    train_size: int = 40_000
    """Images kept for training out of the 50,000 official training images."""
    val_size: int = 10_000
    """Images held out for validation; train_size + val_size must not exceed 50,000."""
    split_seed: int = 5
    """Seed of the random split (the assignment notebook uses torch.Generator().manual_seed(5))."""
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Per-channel mean subtracted after scaling pixels to [0, 1]."""
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Per-channel standard deviation divided by after the mean is subtracted."""


@dataclass(frozen=True)
class TrainConfig:
    """One fixed optimization configuration, applied identically to every model."""

    optimizer: Literal["adam", "adamw", "sgd"] = "sgd"
    """Optimizer family."""
    lr: float = 0.01
    """Peak learning rate."""
    momentum: float = 0.9
    """SGD momentum (ignored by Adam)."""
    nesterov: bool = False
    """Nesterov momentum for SGD."""
    weight_decay: float = 5e-4
    """L2 weight decay (decoupled for AdamW)."""
    schedule: Literal["constant", "cosine", "onecycle"] = "cosine"
    """Learning-rate schedule over the whole run."""
    batch_size: int = 64
    """Training batch size."""
    epochs: int = 10
    """Passes over the training images."""
    train_subset: int = 0
    """Train on only this many of the training images (0 = all); used by the quick budget."""
    augment: Literal["none", "crop_flip"] = "none"
    """Training augmentation: none, or random crop with 4-pixel padding plus horizontal flip."""
    seed: int = 0
    """Seed for weight init, batch order and augmentation."""
    deterministic: bool = False
    """Bit-identical reruns (slower on CUDA: no cudnn.benchmark, deterministic kernels)."""
    select: Literal["best_val", "last"] = "best_val"
    """Which epoch's weights are evaluated on the test set."""


def from_mapping(cls: type[T], data: Mapping[str, Any], where: str, base: T | None = None) -> T:
    """Build dataclass `cls` from a TOML table, naming the offending key on any mistake.

    `where` is the table's dotted name for messages ("train", "checks.discussion").
    Fields missing from `data` take their value from `base` when given, else the default.
    """
    if not isinstance(data, Mapping):
        raise RubricError(f"[{where}] must be a table, not {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RubricError(
            f"unknown key {where}.{unknown[0]} in the rubric; expected one of: {', '.join(fields)}"
        )
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name in data:
            values[name] = _coerce(data[name], hints[name], f"{where}.{name}")
        elif base is not None:
            values[name] = getattr(base, name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise RubricError(f"missing key {where}.{name} in the rubric")
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against a type hint; return it in the dataclass's own type."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise RubricError(f"{key} = {value!r} in the rubric; expected one of {choices}")
        return value
    if origin in (types.UnionType, typing.Union):
        for arg in args:
            try:
                return _coerce(value, arg, key)
            except RubricError:
                continue
        raise RubricError(f"{key} = {value!r} in the rubric has the wrong type; expected {hint}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise RubricError(f"{key} in the rubric must be a list, not {type(value).__name__}")
        item_types = args if not (len(args) == 2 and args[1] is Ellipsis) else (args[0],) * len(value)
        if len(item_types) != len(value):
            raise RubricError(f"{key} in the rubric must have {len(item_types)} items, not {len(value)}")
        return tuple(_coerce(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, item_types)))
    if hint is type(None):
        if value is not None:
            raise RubricError(f"{key} must be empty")
        return None
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise RubricError(f"{key} = {value!r} in the rubric; expected a whole number")
    if isinstance(hint, type) and not isinstance(value, hint):
        expected = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}
        raise RubricError(
            f"{key} = {value!r} in the rubric; expected {expected.get(hint, hint.__name__)}"
        )
    return value


__all__ = ["DataConfig", "TrainConfig", "from_mapping"]
