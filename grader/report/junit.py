"""JUnit XML for CI systems that read test reports (GitLab, GitHub publishers): one test case per check.

The layout is the one Jenkins, GitLab and the GitHub JUnit actions agree on: a `<testsuites>` root
holding one `<testsuite>` for the notebook, whose counts match its test cases exactly. A check is
a test case named by its title (`CheckResult.label`), with the check id in `classname`
(`grader.<id>`) and in a `check` property, and the notebook's repository path in `file`. Outcomes:

- a required check that was scored and failed: `<failure>` (message: what was found; text: the hint);
- a check the budget could not score: `<skipped>` with the reason; it is not a failure;
- a check that is not required (informational) and not met: a PASSED test case, because it never
  fails the job (`grader ci` exits 0 on it); what was found is in `<system-out>` and its
  `outcome` property says "not met (informational)", so reports do not turn it into a red test;
- an unusable notebook: exactly one test case with one `<error>` (tests=1, errors=1).

Time: the grader times the notebook as a whole (`provenance.seconds`), so the suite carries that
time and each check 0; only the unusable notebook's one test case carries it all.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree import ElementTree as ET

from grader.checks import CheckResult
from grader.grading.result import GradeResult
from grader.report.text import clean

SUITE = "grader"


@dataclass(frozen=True)
class _Case:
    """One test case as written: what the counts are computed from."""

    element: ET.Element
    outcome: str
    """"passed", "failure", "skipped" or "error"."""


def junit_xml(result: GradeResult, file: str) -> str:
    """The JUnit report of `result`; `file` is the notebook's path relative to the repository."""
    seconds = f"{result.provenance.seconds:.3f}"
    cases = [_unusable(result, file, seconds)] if result.status == "error" else [_check(c, file) for c in result.checks]
    counts = {kind: str(sum(case.outcome == kind for case in cases)) for kind in ("failure", "error", "skipped")}
    totals = {"tests": str(len(cases)), "failures": counts["failure"], "errors": counts["error"],
              "skipped": counts["skipped"], "time": seconds}
    root = ET.Element("testsuites", name=SUITE, **totals)
    suite = ET.SubElement(root, "testsuite", name=f"{SUITE}: {clean(file)}", **totals,
                          timestamp=_timestamp(result.provenance.graded_at), file=clean(file))
    suite.extend(case.element for case in cases)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _check(check: CheckResult, file: str) -> _Case:
    case = _case(check, file, "0.000")
    score = f"{check.points:g}/{check.max_points:g} points" if check.scored else "not scored"
    outcome = {"passed": "passed", "failed": "failure", "not_met": "passed", "unscored": "skipped"}[check.outcome]
    if check.outcome == "unscored":
        ET.SubElement(case, "skipped", message=clean(check.message))
    elif check.outcome == "failed":
        ET.SubElement(case, "failure", message=clean(check.message), type=f"grader.{check.id}").text = clean(check.hint)
    elif check.outcome == "not_met":  # informational: never fails the job (see the module docstring)
        _property(case, "outcome", "not met (informational)")
    ET.SubElement(case, "system-out").text = f"{score}: {clean(check.message)}"
    return _Case(case, outcome)


def _unusable(result: GradeResult, file: str, seconds: str) -> _Case:
    # The notebook_valid check says the same as result.error: one test case, one error, not both.
    valid = next((c for c in result.checks if c.id == "notebook_valid"), None)
    case = _case(valid, file, seconds) if valid else ET.Element(
        "testcase", classname=f"{SUITE}.notebook", name="The notebook can be graded", file=clean(file), time=seconds)
    ET.SubElement(case, "error", message=clean(result.error or "could not be graded"),
                  type="grader.unusable").text = clean(valid.hint) if valid else ""
    return _Case(case, "error")


def _case(check: CheckResult, file: str, seconds: str) -> ET.Element:
    case = ET.Element("testcase", classname=f"{SUITE}.{check.id}", name=clean(check.label), file=clean(file),
                      time=seconds)
    _property(case, "check", check.id)
    _property(case, "required", str(check.required).lower())
    if check.cell is not None:
        _property(case, "cell", str(check.cell))
    return case


def _property(case: ET.Element, name: str, value: str) -> None:
    properties = case.find("properties")
    if properties is None:
        properties = ET.SubElement(case, "properties")
    ET.SubElement(properties, "property", name=name, value=value)


def _timestamp(graded_at: str) -> str:
    # JUnit's schema wants a local ISO 8601 time without an offset; graded_at is UTC ("...+00:00").
    return graded_at.split("+")[0].removesuffix("Z")


__all__ = ["junit_xml"]
