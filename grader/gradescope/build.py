"""`grader gradescope build`: the autograder zip Gradescope asks for.

    setup.sh            run once as root when Gradescope builds the image: system packages, a venv,
                        CPU torch, the bundled grader, the data and the references (grader.gradescope.prepare)
    run_autograder      run for each submission: `grader gradescope run` (grader.gradescope.run) under a
                        deadline below the assignment's timeout, and a fallback results.json after it
    autograder.json     the budget fitted to the machine (grader.gradescope.budget), the rubric file, the data
                        folder and the timeout (grader.gradescope.config)
    rubric.toml         the rubric, as chosen at build time
    cnn-grader/         the grader's sources (pyproject.toml, README.md, grader/, rubrics/,
                        reference_models/), installed by setup.sh without a package index
    data/               the CIFAR-10 folder given with --data, when one is

Entries are written in a fixed order with a fixed date, so the same inputs give the same bytes.
"""

from __future__ import annotations

import os
import re
import shlex
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import grader
from grader import __version__
from grader.errors import GraderError
from grader.gradescope.budget import FittedBudget, fit_budget
from grader.gradescope.config import CONFIG, DEFAULT_TIMEOUT_MINUTES, AutograderConfig, Deadline, deadline
from grader.gradescope.machine import GRADESCOPE, Machine
from grader.rubric import DEFAULT_RUBRIC, Budget, load_rubric

BUNDLED_GRADER = "cnn-grader"
"""The grader's sources inside the zip."""
SOURCE_ITEMS = ("pyproject.toml", "README.md", "grader", "rubrics", "reference_models")
"""What `pip install` needs from a checkout of the grader."""
RUBRIC = "rubric.toml"
DATA = "data"
SCRIPTS = ("setup.sh", "run_autograder")
TORCH_PACKAGES = ("torch", "torchvision")
_FIXED_DATE = (2024, 1, 1, 0, 0, 0)
_SKIPPED = {"__pycache__", ".grader-cache", ".ipynb_checkpoints"}  # caches are rebuilt where they are needed


@dataclass(frozen=True)
class BuiltAutograder:
    """What `build_autograder` wrote."""

    path: Path
    config: AutograderConfig
    rubric_sha256: str
    entries: int
    bytes: int
    fitted: FittedBudget
    """The budget as fitted to the machine, with what the build chose in words."""


def build_autograder(out: Path, *, rubric: Path | None = None, budget: Budget = "quick",
                     data_dir: Path | None = None, timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES,
                     machine: Machine = GRADESCOPE) -> BuiltAutograder:
    """Write the zip to `out`: the grader, `rubric` (default: the grader's own) and the settings for `budget`
    fitted to `machine` (the autograder's CPU and memory on Gradescope) and `timeout_minutes` (its timeout)."""
    loaded = load_rubric(rubric)  # a bad rubric fails here, not on Gradescope
    checkout = _checkout()
    if data_dir is not None:
        _check_data(data_dir, budget)
    fitted = fit_budget(loaded, budget, machine, deadline(timeout_minutes))
    config = AutograderConfig(budget=budget, rubric=RUBRIC, data=DATA if data_dir else None, grader_version=__version__,
                              timeout_minutes=timeout_minutes, machine=machine, train=fitted.train)
    config.fitted(loaded)  # the layer is checked as the rubric's own tables are, here rather than on Gradescope
    rubric_bytes = Path(rubric).read_bytes() if rubric else resources.files("rubrics").joinpath(DEFAULT_RUBRIC).read_bytes()
    entries: list[tuple[str, bytes | Path, int]] = [
        ("setup.sh", _setup_script(checkout).encode(), 0o755),
        ("run_autograder", _run_script(config.deadline).encode(), 0o755),
        (CONFIG, config.to_json().encode(), 0o644),
        (RUBRIC, rubric_bytes, 0o644),
    ]
    entries += [(f"{BUNDLED_GRADER}/{name}", path, 0o644) for name, path in _tree(checkout, SOURCE_ITEMS)]
    if data_dir is not None:
        entries += [(f"{DATA}/{name}", path, 0o644) for name, path in _tree(data_dir, None)]
    size = _write_zip(out, entries)
    return BuiltAutograder(out, config, loaded.sha256, len(entries), size, fitted)


def _checkout() -> Path:
    """The folder holding the grader's pyproject.toml: the zip installs the grader from its sources."""
    root = Path(grader.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file() or not all((root / item).exists() for item in SOURCE_ITEMS):
        raise GraderError(f"the grader at {root} was not installed from a checkout (no pyproject.toml beside it); "
                          "run `grader gradescope build` from a clone of the grader installed with `pip install -e .`")
    return root


def _check_data(data_dir: Path, budget: Budget) -> None:
    if budget == "none":
        raise GraderError("--data is for a training budget; drop --data or choose --budget quick or full")
    from grader.data import load_cifar10

    load_cifar10(data_dir)  # unreadable data fails here, with what to do, not when Gradescope builds the image


def _script(name: str) -> str:
    return resources.files("grader.gradescope").joinpath(name).read_text(encoding="utf-8")


def _setup_script(checkout: Path) -> str:
    """setup.sh with torch and torchvision pinned as the grader's pyproject.toml pins them."""
    return _script("setup.sh").replace("@TORCH_REQUIREMENTS@", " ".join(map(shlex.quote, torch_requirements(checkout))))


def _run_script(deadline: Deadline) -> str:
    """run_autograder with the grader's deadline written in (bash reads no JSON; autograder.json keeps the timeout)."""
    return (_script("run_autograder").replace("@DEADLINE_SECONDS@", str(deadline.seconds))
            .replace("@GRACE_SECONDS@", str(deadline.grace)))


def torch_requirements(checkout: Path) -> list[str]:
    """The pyproject's requirement strings for torch and torchvision ('torch>=2.2,<2.15')."""
    dependencies = tomllib.loads((checkout / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    named = {re.match(r"[A-Za-z0-9_.-]+", d).group(0).lower(): d.replace(" ", "") for d in dependencies}  # type: ignore[union-attr]
    missing = [p for p in TORCH_PACKAGES if p not in named]
    if missing:
        raise GraderError(f"{checkout / 'pyproject.toml'} does not list {missing[0]} among its dependencies; restore it")
    return [named[p] for p in TORCH_PACKAGES]


def _tree(root: Path, items: tuple[str, ...] | None) -> list[tuple[str, Path]]:
    """(name in the zip, file) for `items` under `root` (every file when None), caches left out."""
    tops = [root / item for item in items] if items else [root]
    found = []
    for top in tops:
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        found += [(p.relative_to(root).as_posix(), p) for p in files
                  if not _SKIPPED.intersection(p.relative_to(root).parts) and p.suffix != ".pyc"]
    return found


def _write_zip(out: Path, entries: list[tuple[str, bytes | Path, int]]) -> int:
    """The zip, written beside `out` and renamed: a failed build never leaves half an autograder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, content, mode in entries:
                info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
                info.external_attr = (0o100000 | mode) << 16  # a regular file with this mode: unzip keeps +x
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, content if isinstance(content, bytes) else content.read_bytes())
        os.chmod(tmp, 0o644)  # mkstemp made it 0600; the zip is uploaded and shared, like every file the grader writes
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out.stat().st_size


__all__ = ["BUNDLED_GRADER", "BuiltAutograder", "build_autograder", "torch_requirements"]
