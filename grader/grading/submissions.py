"""What there is to grade: a class's folder of submissions, or a repository's one notebook.

Everything in these folders is the students': they are searched without following a symbolic link
(a link out of the folder would hand a student the instructor's files), to a bounded depth, and a
found notebook is read later only through grader.untrusted with the folder as `below`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.errors import GraderError


@dataclass(frozen=True)
class Submission:
    """One student's hand-in, as found in the submissions folder."""

    student: str
    notebook: Path | None
    """None when the student's folder holds no single notebook (the problem is in `problem`)."""
    problem: str = ""
    below: Path | None = None
    """The trusted folder the notebook lies in (the submissions folder): nothing under it is read through a link."""


def discover(root: Path) -> list[Submission]:
    """Notebooks directly in `root` (id = file name) and student folders holding one notebook.

    A link to a folder is that student's problem; a notebook that is a link, a FIFO or too big is
    found here and refused when it is read (grader.notebook.read_notebook_bytes), as that student's error."""
    if not root.is_dir():
        raise GraderError(f"{root} is not a folder; give a folder of notebooks or of student folders")
    found: list[Submission] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            notebooks = notebooks_in(path)
            if len(notebooks) == 1:
                found.append(Submission(_student_id(entry.name), notebooks[0], below=root))
            else:
                what = "no notebook" if not notebooks else f"{len(notebooks)} notebooks ({', '.join(p.name for p in notebooks[:4])})"
                found.append(Submission(_student_id(entry.name), None, f"the folder holds {what}; hand in exactly one .ipynb"))
        elif entry.name.endswith(".ipynb"):
            found.append(Submission(_student_id(path.stem), path, below=root))
        elif entry.is_symlink() and entry.is_dir():
            found.append(Submission(_student_id(entry.name), None, f"{entry.name} is a symbolic link to a folder, which the "
                                    "grader does not follow; put the student's folder itself in the submissions folder"))
    if not found:
        raise GraderError(f"{root} holds no .ipynb files or student folders; nothing to grade")
    ids = [s.student for s in found]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise GraderError(f"several submissions map to the student id {duplicates[0]!r}; rename one of them")
    return found


MAX_DEPTH = 8
"""Folders searched below a student's folder or a repository: deeper notebooks are not looked for."""


def notebooks_in(folder: Path) -> list[Path]:
    """The notebooks anywhere under `folder` (to MAX_DEPTH), sorted; hidden files and folders left out
    (.ipynb_checkpoints, macOS's ._NAME copies in a zip); no link to a folder is followed."""
    found: list[Path] = []
    todo = [(folder, 0)]
    while todo:  # a loop, not recursion: a folder nested thousands deep costs no stack
        here, depth = todo.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:  # unreadable or gone: nothing of it can be graded either
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if depth < MAX_DEPTH:
                    todo.append((Path(entry.path), depth + 1))
            elif entry.name.endswith(".ipynb"):
                found.append(Path(entry.path))
    return sorted(found)


def _student_id(name: str) -> str:
    # Ids become folder names in the output: keep them safe to use as one.
    return re.sub(r"[^\w.@+-]", "_", name).strip("._") or "student"


def find_notebook(path: Path, pattern: str = "") -> Path:
    """The notebook `grader ci` grades: `path` itself when a file, else the repository's one notebook.

    In a folder, hidden folders (.git, .ipynb_checkpoints) are ignored; `pattern` (the rubric's
    assignment.notebook glob, matched against paths relative to the folder, from the right as
    pathlib matches) picks one among several.
    """
    if not path.is_dir():
        if not path.exists() and not path.is_symlink():
            raise GraderError(f"{path} does not exist; run grader ci in the repository or give its path")
        return path  # whatever it is, reading it says (grader.notebook.read_notebook_bytes)
    notebooks = notebooks_in(path)
    if not notebooks:
        raise GraderError(f"no .ipynb notebook in {path}; commit your notebook to the repository")
    names = [p.relative_to(path).as_posix() for p in notebooks]
    picked = [p for p, name in zip(notebooks, names) if not pattern or PurePosixPath(name).match(pattern)]
    if len(picked) == 1:
        return picked[0]
    listed = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    if not picked:
        raise GraderError(f"no notebook in {path} matches the rubric's assignment.notebook = {pattern!r} "
                          f"(found: {listed}); rename the notebook, or pass it: grader ci PATH/TO/NOTEBOOK.ipynb")
    which = f"that match assignment.notebook = {pattern!r} " if pattern else ""
    listed = ", ".join(p.relative_to(path).as_posix() for p in picked[:8]) + (", ..." if len(picked) > 8 else "")
    raise GraderError(f"several notebooks {which}in {path} ({listed}); name the one to grade: "
                      "grader ci PATH/TO/NOTEBOOK.ipynb, or the rubric's [assignment] notebook = \"GLOB\"")


def repository_path(notebook: Path, root: Path | None) -> str:
    """The notebook's path as CI shows it: relative to the repository `root` when inside it, else as given.

    GitHub places annotations and test reports by a path relative to the repository, with '/'.
    """
    if root is not None:
        try:
            return notebook.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return notebook.as_posix()


__all__ = ["Submission", "discover", "find_notebook", "notebooks_in", "repository_path"]
