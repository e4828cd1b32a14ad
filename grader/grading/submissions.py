"""What there is to grade: a class's folder of submissions, or a repository's one notebook."""

from __future__ import annotations

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


def discover(root: Path) -> list[Submission]:
    """Notebooks directly in `root` (id = file name) and student folders holding one notebook."""
    if not root.is_dir():
        raise GraderError(f"{root} is not a folder; give a folder of notebooks or of student folders")
    found: list[Submission] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            found.append(Submission(_student_id(entry.stem), entry))
        elif entry.is_dir():
            notebooks = notebooks_in(entry)
            if len(notebooks) == 1:
                found.append(Submission(_student_id(entry.name), notebooks[0]))
            else:
                what = "no notebook" if not notebooks else f"{len(notebooks)} notebooks ({', '.join(p.name for p in notebooks[:4])})"
                found.append(Submission(_student_id(entry.name), None, f"the folder holds {what}; hand in exactly one .ipynb"))
    if not found:
        raise GraderError(f"{root} holds no .ipynb files or student folders; nothing to grade")
    ids = [s.student for s in found]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise GraderError(f"several submissions map to the student id {duplicates[0]!r}; rename one of them")
    return found


def notebooks_in(folder: Path) -> list[Path]:
    """The notebooks anywhere under `folder`, sorted; hidden files and folders left out (.ipynb_checkpoints,
    macOS's ._NAME copies in a zip)."""
    return sorted(p for p in folder.rglob("*.ipynb") if not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _student_id(name: str) -> str:
    # Ids become folder names in the output: keep them safe to use as one.
    return re.sub(r"[^\w.@+-]", "_", name).strip("._") or "student"


def find_notebook(path: Path, pattern: str = "") -> Path:
    """The notebook `grader ci` grades: `path` itself when a file, else the repository's one notebook.

    In a folder, hidden folders (.git, .ipynb_checkpoints) are ignored; `pattern` (the rubric's
    assignment.notebook glob, matched against paths relative to the folder, from the right as
    pathlib matches) picks one among several.
    """
    if path.is_file():
        return path
    if not path.is_dir():
        raise GraderError(f"{path} does not exist; run grader ci in the repository or give its path")
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
