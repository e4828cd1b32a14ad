"""Declared configuration: the data split, the one loader for every rubric table, where things live.

Plain frozen dataclasses with no torch import, so that the rubric (read on the fast static path)
can build them. The training configuration, TrainConfig, lives in grader.child.config: the
sandboxed trainer needs it and may import nothing from outside its own package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, TypeVar

from grader.errors import RubricError
from grader.typed import PlainError, from_plain

T = TypeVar("T")


def user_cache_dir() -> Path:
    """The grader's cache root: $GRADER_CACHE, else $XDG_CACHE_HOME/cnn-grader or ~/.cache/cnn-grader.

    $GRADER_CACHE lets CI keep the trained references and the data in a workspace folder that its
    cache step saves and restores (ci-templates/), without moving every other tool's cache.
    """
    own = os.environ.get("GRADER_CACHE")
    if own:
        return Path(own).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cnn-grader"


def default_data_dir() -> Path:
    """Where CIFAR-10 lives when no folder is given: $GRADER_DATA, else <user cache>/data."""
    env = os.environ.get("GRADER_DATA")
    return Path(env).expanduser() if env else user_cache_dir() / "data"


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


def from_mapping(cls: type[T], data: Mapping[str, Any], where: str, base: T | None = None) -> T:
    """Build dataclass `cls` from a TOML table, naming the offending key on any mistake.

    `where` is the table's dotted name for messages ("train", "checks.discussion"). Fields
    missing from `data` take their value from `base` when given, else the default. Unknown keys
    are rejected: a typo must never silently leave a setting at its default.
    """
    try:
        return from_plain(cls, data, where, context="in the rubric", base=base)
    except PlainError as e:
        raise RubricError(str(e)) from None


__all__ = ["DataConfig", "default_data_dir", "from_mapping", "user_cache_dir"]
