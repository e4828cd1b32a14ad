"""Every regular expression the static reading runs on a student's text, timed on adversarial input.

Each pattern found in grader/analysis (module-level patterns, and those kept in lists and dicts) is
run with `finditer` over strings built to make a backtracking engine slow: runs of spaces, of `<`,
of `[`, of digits, of dots, of newlines, a keyword repeated, a very long line. Each input is timed at
two sizes, N and 4N; the growth exponent (log of the time ratio over log 4) is about 1 for a linear
pattern and 2 or more for one that backtracks. Patterns growing faster than linear are listed first.

    python bench/bench_patterns.py [--size 20000]
"""

from __future__ import annotations

import argparse
import ast
import importlib
import math
import pkgutil
import re
import signal
import time
from pathlib import Path
from typing import Callable

import grader.analysis
from grader.analysis import discussion, metrics

# Each makes a text of about n characters built to trigger one kind of backtracking.
INPUTS = {
    "spaces": lambda n: " " * n,
    "a keyword then spaces": lambda n: "loss" + " " * n,
    "'model' then spaces": lambda n: "model" + " " * n,
    "'add' then spaces": lambda n: "add" + " " * n,
    "tabs and newlines": lambda n: " \t\n" * (n // 3),
    "newlines": lambda n: "\n" * n,
    "blank lines with spaces": lambda n: "\n   " * (n // 4),
    "lt": lambda n: "<" * n,
    "comment openers": lambda n: "<!--" * (n // 4),
    "fences": lambda n: "```" * (n // 3),
    "brackets": lambda n: "[" * n,
    "image openers": lambda n: "![" * (n // 2),
    "image links": lambda n: "![](" * (n // 4),
    "parens": lambda n: "(" * n,
    "digits": lambda n: "1" * n,
    "digits and dots": lambda n: "1." * (n // 2),
    "dots": lambda n: "." * n,
    "a comparison repeated": lambda n: "better " * (n // 7),
    "keywords": lambda n: "loss acc val " * (n // 13),
    "data uris": lambda n: "data:" * (n // 5),
    "underscores": lambda n: "a_" * (n // 2),
    "quotes": lambda n: "'\"" * (n // 2),
    "pipes": lambda n: "| 1/" * (n // 4),
    "epoch": lambda n: "epoch " * (n // 6),
    "precision": lambda n: "precision " * (n // 10),
    "letters": lambda n: "A" * n,
    "one word": lambda n: "a" * n,
}
TOO_SLOW_S = 0.2
MEASURABLE_S = 0.005  # below this, timer noise decides the growth


def patterns() -> dict[str, re.Pattern]:
    """name -> pattern: every compiled pattern a module of grader.analysis holds (alone, in a list or
    a dict), every literal pattern its code hands to a function of `re`, and those it builds at run time."""
    found: dict[str, re.Pattern] = {}
    for info in pkgutil.iter_modules(grader.analysis.__path__):
        module = importlib.import_module(f"grader.analysis.{info.name}")
        for name, value in vars(module).items():
            values = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
            for i, item in enumerate(values):
                if isinstance(item, re.Pattern):
                    found[f"{info.name}.{name}" + (f"[{i}]" if item is not value else "")] = item
        for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr != "compile"
                    and getattr(node.func.value, "id", "") == "re" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found[f"{info.name} line {node.lineno}"] = re.compile(node.args[0].value, re.I | re.M)
    names = metrics._Names(["LeNet5", "ResNetLike"], {"baseline": "LeNet5"})
    found["metrics._Names classes"], found["metrics._Names keys"] = names._classes, names._keys
    for words in (discussion._BASELINE_WORDS, discussion._PROPOSED_WORDS):
        found[f"discussion._mentions {words[:12]}"] = re.compile(rf"\b(?:{words})\b", re.I)
    return found


class _TooSlow(Exception):
    pass


def _stop(signum, frame):
    raise _TooSlow  # Python's regex engine checks for signals while it matches


def seconds(pattern: re.Pattern, text: str, limit: float = 5.0) -> float:
    """Wall seconds of all of `pattern`'s matches in `text`, or `limit` where it takes longer."""
    signal.signal(signal.SIGALRM, _stop)
    start = time.perf_counter()
    try:
        signal.setitimer(signal.ITIMER_REAL, limit)
        for _ in pattern.finditer(text):
            pass
    except _TooSlow:
        return limit
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return time.perf_counter() - start


def growth(pattern: re.Pattern, make: Callable[[int], str], size: int) -> tuple[float, float]:
    """(seconds at 4N, growth exponent between N and 4N characters); a pattern that already takes
    TOO_SLOW_S at N is not run at 4N: (seconds at N, inf)."""
    small, large = make(size), make(4 * size)
    t_small = seconds(pattern, small)
    if t_small > TOO_SLOW_S:
        return t_small, math.inf
    t_small = max(min([t_small] + [seconds(pattern, small) for _ in range(2)]), 1e-6)  # the least disturbed of 3 runs
    t_large = max(min(seconds(pattern, large) for _ in range(3)), 1e-6)
    return t_large, math.log(t_large / t_small) / math.log(4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=5_000, help="characters of the smaller input (default 5,000)")
    args = parser.parse_args()
    rows = []
    for name, pattern in patterns().items():
        timed = [growth(pattern, make, args.size) + (label,) for label, make in INPUTS.items()]
        # The fastest growth among inputs slow enough to time well, else the slowest input.
        measurable = [r for r in timed if r[0] > MEASURABLE_S]
        worst = max(measurable, key=lambda r: r[1]) if measurable else max(timed, key=lambda r: r[0])
        rows.append((name, *worst))
    rows.sort(key=lambda r: (-r[2], -r[1]))
    print(f"{len(rows)} patterns, inputs of {args.size:,} and {4 * args.size:,} characters; the slowest input of each:")
    for name, t, exponent, label in rows:
        if math.isinf(exponent):
            print(f"  {name:<34} {t * 1000:9.1f} ms at N   (not run at 4N)  ({label})  <- superlinear")
            continue
        flag = "  <- superlinear" if exponent > 1.5 and t > MEASURABLE_S else ""
        print(f"  {name:<34} {t * 1000:9.1f} ms at 4N  growth N^{exponent:4.1f}  ({label}){flag}")


if __name__ == "__main__":
    main()
