"""JSON rendering shared by every command that prints or writes a result."""

from __future__ import annotations

import json
import math
from typing import Any


def _finite(value: Any) -> Any:
    # JSON has no NaN/Infinity; a diverged loss is reported as null rather than breaking parsers.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(obj: Any) -> str:
    return json.dumps(_finite(obj), indent=2, ensure_ascii=False)
