"""JUnit XML for CI systems that read test reports (one test case per check)."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from grader.grading.result import GradeResult
from grader.report.text import clean


def junit_xml(result: GradeResult) -> str:
    failures = len(result.failing)
    suite = ET.Element("testsuite", name="grader", tests=str(len(result.checks)), failures=str(failures),
                       errors="1" if result.status == "error" else "0")
    if result.status == "error":
        case = ET.SubElement(suite, "testcase", classname="grader", name="notebook")
        ET.SubElement(case, "error", message=clean(result.error or "could not be graded"))
    for c in result.checks:
        case = ET.SubElement(suite, "testcase", classname="grader", name=c.id)
        ET.SubElement(case, "system-out").text = f"{c.points:g}/{c.max_points:g} {clean(c.message)}"
        if not c.passed:
            kind = "failure" if c.required and c.scored else "skipped"
            ET.SubElement(case, kind, message=clean(c.message)).text = clean(c.hint)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
