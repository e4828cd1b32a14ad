"""The class review page (index.html) of a large class: how long writing it and drawing it take.

Builds a class of --students notebooks with bench_class.py's pool, grades it under the static budget
(`grader grade --no-train`, which also writes the page), then measures, --runs times each:

- write: `grader review OUT --no-open` as a new process (the instructor's wait: Python, reading every
  result.json, finding the near-identical pairs, rendering, writing), and inside one process the
  reading and the rendering + writing apart;
- render: headless Chromium (driven as tests/browser.py drives it) opening the page from its file://
  URL in a fresh tab: from the navigation's start to the end of the page's script (its
  `review-ready` mark: rows sortable, editor ready) and to the load event, and the wall time of the
  whole open as seen from here.

    PYTHONPATH=. python bench/bench_review.py --students 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the DevTools driver the page's tests use

from bench_class import write_class  # noqa: E402  (bench/ is this script's own folder)
from browser import Browser  # noqa: E402


def median_seconds(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="build and grade in this folder (kept; graded once)")
    args = ap.parse_args()

    from grader.report.review import REVIEW, load_class, review_html, class_review
    from grader.analysis.similarity import similar_pairs

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_review_"))
    submissions, out = work / "submissions", work / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if not (out / "gradebook.csv").exists():
        submissions.mkdir(parents=True, exist_ok=True)
        write_class(submissions, args.students)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "grader.cli", "grade", str(submissions), "--out", str(out), "--no-train"],
                       env=env, check=True, capture_output=True)
        print(f"graded {args.students} students under the static budget in {time.perf_counter() - start:.1f} s")
    page = out / REVIEW

    command = [sys.executable, "-m", "grader.cli", "review", str(out), "--no-open"]
    write = median_seconds(args.runs, lambda: subprocess.run(command, env=env, check=True, capture_output=True))
    results, _ = load_class(out)
    read = median_seconds(args.runs, lambda: load_class(out))
    pairs = similar_pairs({r.student: r.signature for r in results})
    render_py = median_seconds(args.runs, lambda: review_html(class_review(results, pairs, title="t")))
    find_pairs = median_seconds(args.runs, lambda: similar_pairs({r.student: r.signature for r in results}))
    print(f"page: {page.stat().st_size / 1024:.0f} KiB, {len(results)} students, {len(pairs)} near-identical pairs")
    print(f"write: `grader review --no-open` {write:.2f} s (a new process); in one process: reading the results "
          f"{read:.2f} s, finding the pairs {find_pairs:.2f} s, rendering {render_py:.2f} s (median of {args.runs})")

    ready, loaded, walls = [], [], []
    with Browser(work / "chromium-profile") as browser:
        for _ in range(args.runs):
            start = time.perf_counter()
            tab = browser.open(page.as_uri())
            walls.append(time.perf_counter() - start)
            ready.append(tab.evaluate("performance.getEntriesByName('review-ready')[0].startTime") / 1000)
            loaded.append(tab.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000)
            problems = tab.problems
            if problems:
                print(f"console: {problems}")
    print(f"render in headless Chromium (median of {args.runs}; the first, in a browser just started, in brackets): "
          f"script done {statistics.median(ready):.2f} s ({ready[0]:.2f}) and load event {statistics.median(loaded):.2f} s "
          f"({loaded[0]:.2f}) after the navigation started; the open as seen from here {statistics.median(walls):.2f} s "
          f"({walls[0]:.2f})")


if __name__ == "__main__":
    main()
