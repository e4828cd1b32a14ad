"""Wall time of `grader check` on every example submission, as a user runs it (a new process).

Prints the median of several runs per notebook, and, for scale, the time a new Python process
takes just to `import torch` (the cost the static path avoids). Also complete.ipynb with one more
cell in 3.12 syntax (an f-string reusing its quotes): what a cell only the newer-syntax reader (a
sandboxed LibCST child) reads costs. With --corpus DIR, also the static reading (`analyze`, in this
process) of every notebook in DIR (../shared/corpus: real notebooks up to 1 MB of output), slowest
first. Run from the repository root:

    python bench/bench_check.py [--runs 5] [--corpus ../shared/corpus]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=None, help="also time the static reading of every notebook here")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {args.runs} runs each, median wall seconds")
    torch_import = wall([sys.executable, "-c", "import torch"], args.runs)
    worst = 0.0
    for notebook in sorted((REPO / "submissions").glob("*.ipynb")):
        seconds = wall([sys.executable, "-m", "grader.cli", "check", str(notebook), "--json"], args.runs)
        worst = max(worst, seconds)
        print(f"  grader check {notebook.name:<28} {seconds:6.3f} s")
    with tempfile.TemporaryDirectory() as folder:
        newer = with_newer_syntax(Path(folder) / "complete_312.ipynb")
        seconds = wall([sys.executable, "-m", "grader.cli", "check", str(newer), "--json"], args.runs)
        print(f"  grader check {'complete.ipynb + a 3.12 cell':<28} {seconds:6.3f} s")
    print(f"  python -c 'import torch'             {torch_import:6.3f} s")
    print(f"slowest check {worst:.3f} s; import torch alone takes {torch_import / worst:.1f}x as long")
    if args.corpus:
        corpus(args.corpus, args.runs)


def corpus(folder: Path, runs: int) -> None:
    """The median seconds of `analyze` per notebook of `folder` (loaded once), the five slowest and the total."""
    from grader.analysis import analyze
    from grader.notebook import load_notebook

    seconds: dict[str, float] = {}
    for path in sorted(folder.glob("*.ipynb")):
        notebook = load_notebook(path)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            analyze(notebook)
            times.append(time.perf_counter() - start)
        seconds[path.name] = statistics.median(times)
    print(f"static reading of {len(seconds)} notebooks in {folder.name}/: {sum(seconds.values()):.2f} s in all; slowest:")
    for name, s in sorted(seconds.items(), key=lambda item: -item[1])[:5]:
        print(f"  {name:<60} {s:6.3f} s")


def with_newer_syntax(path: Path) -> Path:
    """complete.ipynb with a last code cell that only Python 3.12 parses."""
    notebook = json.loads((REPO / "submissions" / "complete.ipynb").read_text(encoding="utf-8"))
    notebook["cells"].append({"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                              "source": 'names = {"model": "ResDropNet"}\nprint(f"trained {names["model"]}")\n'})
    path.write_text(json.dumps(notebook), encoding="utf-8")
    return path


if __name__ == "__main__":
    main()
