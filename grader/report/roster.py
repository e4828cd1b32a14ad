"""A Canvas roster: the CSV Canvas exports from its gradebook, and which graded student is whom.

Canvas's gradebook export (Grades > Export) starts with the columns Student, ID, SIS User ID,
SIS Login ID and Section, then one column per assignment; a 'Points Possible' row (and, in newer
exports, posting-policy rows) follow the header without a student id. A graded student's id (the
notebook's or its folder's name) is matched, ignoring case, against SIS Login ID, then SIS User
ID, then ID, then the login part of any of them that is an email address (alice@uni.edu -> alice).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError
from grader.report.text import clean

IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
"""The columns that say who a row of a Canvas gradebook file is, in Canvas's order."""

KEYS = ("SIS Login ID", "SIS User ID", "ID", "the login of an email address")
"""What a graded id is matched against, best first."""


@dataclass(frozen=True)
class RosterStudent:
    """One student as Canvas knows them (the identity columns of its gradebook export)."""

    name: str
    canvas_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""

    @property
    def identity(self) -> tuple[str, str, str, str, str]:
        """The values of the IDENTITY columns."""
        return (self.name, self.canvas_id, self.sis_user_id, self.sis_login_id, self.section)

    def keys(self) -> tuple[frozenset[str], ...]:
        """What a graded id may equal (lower case), one set per kind of KEYS, best first."""
        ids = [i.strip().lower() for i in (self.sis_login_id, self.sis_user_id, self.canvas_id)]
        logins = frozenset(i.split("@", 1)[0] for i in ids if "@" in i)
        return (*(frozenset({i}) for i in ids), logins)


@dataclass(frozen=True)
class RosterMatch:
    """Graded ids matched to roster students, and one line for each that could not be."""

    students: dict[str, RosterStudent]
    """Graded id -> the roster student it matched."""
    problems: tuple[str, ...]
    """One line per graded student not in the roster and per roster student with no submission."""


def load_roster(path: Path) -> tuple[RosterStudent, ...]:
    """The students of a Canvas gradebook export (its Points Possible and other rows without an id skipped)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel and Canvas may start the file with a BOM
    except FileNotFoundError:
        raise GraderError(f"roster {path} does not exist; export it from Canvas (Grades > Export) and pass its path") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise GraderError(f"roster {path} cannot be read ({e}); pass the CSV file Canvas exports from its gradebook") from None
    rows = list(csv.reader(text.splitlines()))
    header = [cell.strip() for cell in rows[0]] if rows else []
    if "Student" not in header or not {"ID", "SIS User ID", "SIS Login ID"} & set(header):
        raise GraderError(f"roster {path} is not a Canvas gradebook export: its header needs Student and ID, SIS User ID "
                          "or SIS Login ID; export it from Canvas (Grades > Export)")
    where = {column: header.index(column) for column in IDENTITY if column in header}
    students = []
    for row in rows[1:]:
        values = [row[where[c]].strip() if c in where and where[c] < len(row) else "" for c in IDENTITY]
        if any(values[1:4]):  # 'Points Possible' and posting-policy rows have no id
            students.append(RosterStudent(*values))
    return tuple(students)


def match_roster(graded: Iterable[str], roster: tuple[RosterStudent, ...]) -> RosterMatch:
    """Each graded id's roster student: the first kind of key that names exactly one of them."""
    index: list[dict[str, list[RosterStudent]]] = [{} for _ in KEYS]
    for student in roster:
        for level, keys in zip(index, student.keys()):
            for key in keys - {""}:
                level.setdefault(key, []).append(student)
    matched: dict[str, RosterStudent] = {}
    problems: list[str] = []
    claimed: dict[RosterStudent, str] = {}
    for graded_id in graded:
        found = next((hits for level in index if (hits := level.get(graded_id.lower()))), [])
        if len(found) == 1 and found[0] not in claimed:
            matched[graded_id] = found[0]
            claimed[found[0]] = graded_id
        elif len(found) > 1:
            names = ", ".join(repr(s.name) for s in found)
            problems.append(f"graded {graded_id!r} matches several roster students ({names}); not matched, exported under its own id")
        elif found:
            problems.append(f"graded {graded_id!r} matches roster student {found[0].name!r}, already matched by "
                            f"{claimed[found[0]]!r}; not matched, exported under its own id")
        else:
            problems.append(f"graded {graded_id!r} is not in the roster; exported under its own id (SIS Login ID)")
    problems += [f"roster student {s.name!r} ({clean(s.sis_login_id or s.sis_user_id or s.canvas_id)}) has no graded "
                 "submission; left out of the file" for s in roster if s not in claimed]
    return RosterMatch(matched, tuple(problems))


__all__ = ["IDENTITY", "RosterMatch", "RosterStudent", "load_roster", "match_roster"]
