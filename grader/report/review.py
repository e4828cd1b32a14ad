"""index.html: a graded class on one page, for the instructor.

Rendered from the class's results alone (each student's result.json, overrides included; nothing
else is read), so `grader review OUT` rebuilds what `grader grade` wrote. One self-contained file
that works from a file:// URL: styles and script inline, nothing fetched, and a
Content-Security-Policy that runs the page's own script only (by its hash) and fetches nothing.

It shows the score histogram, each check's passed / partial / failed / not-scored counts, the
students to look at first (errors, flags, a near-identical proposed model, a retraining check not
scored for them that was scored for classmates), one row per student to sort and filter, the near-identical proposed models side
by side, and an editor whose overrides.toml `grader grade --overrides` reads.

Student text (ids, class names, messages, flags that quote the notebook) reaches the page two ways,
both escaped: the HTML by Jinja's autoescaping, and the script's data as JSON in a
<script type="application/json"> block whose <, >, &, U+2028 and U+2029 are \\u escapes, so no
`</script>` or `<!--` in it can end the block. The script makes text nodes only, never markup.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Sequence
from urllib.parse import quote

from grader.analysis.similarity import SimilarPair, similar_pairs
from grader.checks import CHECK_IDS, CheckResult, ids
from grader.errors import GraderError
from grader.grading.result import RESULT, GradeResult, load_result, write_atomic
from grader.report.page import TEMPLATES, template
from grader.report.status import tone
from grader.report.text import clean

REVIEW = "index.html"
"""The class's page, in the output folder beside the students' folders."""
BUCKETS = 10
"""The histogram's bars: tenths of the maximum."""
SIDE_BY_SIDE = 3
"""Pairs of a group of near-identical models shown with their layers side by side; the rest are listed."""
LISTED_PAIRS = 50
"""Pairs of a group listed at most (every pair is in similar.csv)."""

Outcome = Literal["passed", "partial", "failed", "unscored"]
OUTCOMES: tuple[Outcome, ...] = ("passed", "partial", "failed", "unscored")


@dataclass(frozen=True)
class CheckTally:
    """One check across the class."""

    id: str
    label: str
    points: float | None
    """The check's points in the rubric as the results show them; None where no result scored it."""
    counts: dict[Outcome, int]
    unscored_reason: str
    """The commonest reason it was not scored (one student's words), with how many it was given to."""
    unscored_reason_count: int


@dataclass(frozen=True)
class Reason:
    """One reason to look at a student first."""

    what: str
    """'could not be graded', 'flag', 'near-identical model' or 'not scored: CHECK TITLE'."""
    detail: str
    """The grader's words (the error, the flag, why the check was not scored)."""


@dataclass(frozen=True)
class StudentRow:
    """One student's row, and what the filters read."""

    student: str
    folder: str
    """The student's folder as a relative URL."""
    status: str
    score: float
    max_score: float
    percent: float
    """The score as a percentage of the student's own maximum."""
    bucket: int
    error: str
    flags: tuple[str, ...]
    baseline: str
    proposed: str
    effect: float | None
    """Proposed minus baseline test accuracy, in points, as retrained."""
    effect_verdict: str
    outcomes: str
    """'check:outcome' for every check, space-separated (the check filter's)."""
    attention: tuple[Reason, ...]
    """Why to look at this student first; empty when nothing calls for it."""
    overridden: tuple[str, ...]
    """The checks whose points the instructor set, by title."""
    similar_to: tuple[str, ...]


@dataclass(frozen=True)
class SimilarGroup:
    """Students linked by near-identical proposed models, and the pairs that link them."""

    students: tuple[str, ...]
    pairs: tuple[SimilarPair, ...]


@dataclass(frozen=True)
class ClassReview:
    title: str
    facts: tuple[str, ...]
    histogram: tuple[int, ...]
    checks: tuple[CheckTally, ...]
    rows: tuple[StudentRow, ...]
    groups: tuple[SimilarGroup, ...]
    layers: dict[str, tuple[str, ...]]
    """The proposed model's layer sequence of each student in a group."""
    data: dict
    """What the page's script reads: the students, the checks, each student's [points, the autograder's points
    when overridden, scored] per check (None: not in the result), and the overrides in effect."""


def load_class(folder: Path) -> tuple[list[GradeResult], list[str]]:
    """The results in `folder` (the --out of grader grade), and one line per student folder without a readable one."""
    if not folder.is_dir():
        raise GraderError(f"{folder} is not a folder; give the --out folder of grader grade")
    results: list[GradeResult] = []
    problems: list[str] = []
    for student in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        result = load_result(student / RESULT)
        if result is None:
            problems.append(f"{student.name}: no readable {RESULT} (its grading did not finish); run grader grade again")
        else:
            results.append(result)
    if not results:
        raise GraderError(f"{folder} holds no graded results (STUDENT/{RESULT}); give the --out folder of grader grade")
    return results, problems


def write_review(out: Path, results: Iterable[GradeResult], similar: Sequence[SimilarPair] | None = None) -> Path:
    """OUT/index.html for `results` (`similar`: the class's near-identical pairs, found here when not given)."""
    results = sorted(results, key=lambda r: r.student)
    if similar is None:
        similar = similar_pairs({r.student: r.signature for r in results})
    path = out / REVIEW
    write_atomic(path, review_html(class_review(results, similar, title=f"Class review: {out.resolve().name}")))
    return path


def histogram(results: Iterable[GradeResult], buckets: int = BUCKETS) -> list[int]:
    """How many students scored in each tenth of their maximum (the last bar holds full marks)."""
    counts = [0] * buckets
    for r in results:
        counts[score_bucket(r, buckets)] += 1
    return counts


def class_review(results: Sequence[GradeResult], similar: Sequence[SimilarPair], *, title: str) -> ClassReview:
    checks = _tallies(results)
    scored_somewhere = {c.id for c in checks if c.counts["unscored"] < sum(c.counts.values())}
    linked: dict[str, list[str]] = {}
    for pair in similar:
        linked.setdefault(pair.a, []).append(pair.b)
        linked.setdefault(pair.b, []).append(pair.a)
    rows = tuple(_row(r, scored_somewhere, linked.get(r.student, [])) for r in results)
    groups = _groups(similar)
    in_groups = {s for g in groups for s in g.students}
    by_student = {r.student: r for r in results}
    return ClassReview(
        title=title, facts=_facts(results, rows), histogram=tuple(histogram(results)), checks=checks, rows=rows,
        groups=groups, layers={s: by_student[s].signature.layers for s in sorted(in_groups) if s in by_student},
        data=_script_data(results, checks))


def score_fraction(result: GradeResult) -> float:
    """The score as a share of the student's own maximum (0 where nothing could be scored)."""
    return result.score / result.max_score if result.max_score else 0.0


def score_bucket(result: GradeResult, buckets: int = BUCKETS) -> int:
    """The histogram bar `result` falls in."""
    return min(int(score_fraction(result) * buckets), buckets - 1)


def page_outcome(check: CheckResult) -> Outcome:
    """passed / partial / failed / unscored; a check worth no points is passed or failed by its verdict."""
    t = tone(check)
    if t == "info":
        return "passed" if check.passed else "failed"
    return t


def _tallies(results: Sequence[GradeResult]) -> tuple[CheckTally, ...]:
    by_check: dict[str, list[CheckResult]] = {}
    for r in results:
        for c in r.checks:
            by_check.setdefault(c.id, []).append(c)
    tallies = []
    for check_id in sorted(by_check, key=lambda i: CHECK_IDS.index(i) if i in CHECK_IDS else len(CHECK_IDS)):
        found = by_check[check_id]
        counts: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)
        for c in found:
            counts[page_outcome(c)] += 1
        known = [c.max_points for c in found if c.scored or c.overridden_from is not None]
        reasons = Counter(clean(c.message) for c in found if not c.scored).most_common(1)
        reason, count = reasons[0] if reasons else ("", 0)
        tallies.append(CheckTally(check_id, found[0].label, max(known) if known else None, counts, reason, count))
    return tuple(tallies)


def _row(result: GradeResult, scored_somewhere: set[str], similar_to: list[str]) -> StudentRow:
    effect = result.effect.test_accuracy if result.effect else None
    return StudentRow(
        student=result.student, folder=quote(result.student, safe=""), status=result.status, score=result.score,
        max_score=result.max_score, percent=round(100 * score_fraction(result), 1),
        bucket=score_bucket(result),
        error=clean(result.error or "") if result.status == "error" else "", flags=tuple(map(clean, result.flags)),
        baseline=result.baseline or "", proposed=result.proposed or "",
        effect=None if effect is None else round(100 * effect, 1),
        effect_verdict=result.effect.verdict if result.effect else "",
        outcomes=" ".join(f"{c.id}:{page_outcome(c)}" for c in result.checks),
        attention=_attention(result, scored_somewhere, similar_to),
        overridden=tuple(c.label for c in result.checks if c.overridden_from is not None),
        similar_to=tuple(sorted(similar_to)))


_RUN_CHECKS = frozenset(ids("run"))


def _attention(result: GradeResult, scored_somewhere: set[str], similar_to: list[str]) -> tuple[Reason, ...]:
    """Why the instructor should look at this student first: the error, each flag, a proposed model near-identical
    to classmates', and each retraining check left unscored for this student though it was scored for a classmate
    (the same budget could judge it)."""
    reasons = [Reason("could not be graded", clean(result.error or "no reason recorded"))] if result.status == "error" else []
    reasons += [Reason("flag", clean(flag)) for flag in result.flags]
    if similar_to:
        reasons.append(Reason("near-identical model", f"the proposed model, {result.proposed}, is near-identical to "
                              f"the proposed model of {', '.join(sorted(similar_to))} (Near-identical models, below)"))
    reasons += [Reason(f"not scored: {c.label}", clean(c.message)) for c in result.checks
                if c.id in _RUN_CHECKS and not c.scored and c.id in scored_somewhere and result.status != "error"]
    return tuple(reasons)


def attention_summary(reasons: Sequence[Reason]) -> str:
    """The reasons in a few words: 'could not be graded', '2 flags', 'not scored: Both models learn'."""
    counts = Counter(r.what for r in reasons)
    return "; ".join(f"{n} flags" if what == "flag" and n > 1 else what for what, n in counts.items())


def _groups(similar: Sequence[SimilarPair]) -> tuple[SimilarGroup, ...]:
    """The near-identical pairs gathered into groups of students linked by them, the largest first."""
    leader: dict[str, str] = {}

    def find(s: str) -> str:
        while leader.setdefault(s, s) != s:
            s = leader[s]
        return s

    for pair in similar:
        leader[find(pair.a)] = find(pair.b)
    members: dict[str, list[str]] = {}
    for student in sorted(leader):
        members.setdefault(find(student), []).append(student)
    groups = [SimilarGroup(tuple(students), tuple(p for p in similar if find(p.a) == root))
              for root, students in members.items()]
    return tuple(sorted(groups, key=lambda g: (-len(g.students), g.students)))


def _facts(results: Sequence[GradeResult], rows: Sequence[StudentRow]) -> tuple[str, ...]:
    percents = [row.percent for row in rows]
    errors = sum(r.status == "error" for r in results)
    budgets = sorted({r.provenance.budget for r in results})
    versions = sorted({r.provenance.grader_version for r in results})
    graded = sorted(r.provenance.graded_at for r in results if r.provenance.graded_at)
    facts = [f"{len(results)} students ({errors} could not be graded)" if errors else f"{len(results)} students",
             f"mean {statistics.mean(percents):.0f}%, median {statistics.median(percents):.0f}% of each student's maximum",
             f"budget {', '.join(budgets)}; grader {', '.join(versions)}"]
    if graded:
        facts.append(f"graded {graded[0]}" + (f" to {graded[-1]}" if graded[-1] != graded[0] else ""))
    return tuple(clean(f) for f in facts)


def _script_data(results: Sequence[GradeResult], checks: Sequence[CheckTally]) -> dict:
    order = [c.id for c in checks]
    points = []
    for r in results:
        held = {c.id: c for c in r.checks}
        points.append([[held[i].points, held[i].overridden_from, held[i].scored] if i in held else None for i in order])
    overrides = [{"student": r.student, "check": c.id, "points": c.points, "comment": c.instructor_comment}
                 for r in results for c in r.checks if c.overridden_from is not None]
    return {"students": [r.student for r in results],
            "checks": [{"id": c.id, "label": c.label, "points": c.points} for c in checks],
            "points": points, "overrides": overrides}


_SCRIPT_DATA_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                      "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(data: object) -> str:
    """`data` as JSON that is safe inside a <script> block: no `</script>`, `<!--` or line separator can
    end or change it (each of < > & U+2028 U+2029 is a \\u escape, which JSON.parse reads back)."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).translate(_SCRIPT_DATA_ESCAPES)


def review_html(review: ClassReview) -> str:
    from markupsafe import Markup

    script = _script()
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return template("review.html.j2").render(
        review=review, summary=attention_summary, outcomes=OUTCOMES, side_by_side=SIDE_BY_SIDE,
        listed_pairs=LISTED_PAIRS, max_bar=max(review.histogram, default=0) or 1,
        data=Markup(script_json(review.data)), script=Markup(script), script_hash=f"sha256-{digest}")


@functools.lru_cache(maxsize=1)
def _script() -> str:
    return (TEMPLATES / "review.js").read_text(encoding="utf-8")


__all__ = ["BUCKETS", "REVIEW", "ClassReview", "Reason", "attention_summary", "class_review", "histogram", "load_class",
           "page_outcome", "review_html", "score_bucket", "score_fraction", "script_json", "write_review"]
