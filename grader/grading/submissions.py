"""What there is to grade: a class's folder of submissions, or a repository's one notebook."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

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


def find_notebook(path: Path) -> Path:
    """The repository's one notebook (checkpoints ignored); a file path is taken as it is."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise GraderError(f"{path} does not exist; run grader ci in the repository or give its path")
    notebooks = notebooks_in(path)
    if not notebooks:
        raise GraderError(f"no .ipynb notebook in {path}; commit your notebook to the repository")
    if len(notebooks) > 1:
        names = ", ".join(str(p.relative_to(path)) for p in notebooks[:5])
        raise GraderError(f"several notebooks in {path} ({names}); pass the one to grade: grader ci PATH/TO/NOTEBOOK.ipynb")
    return notebooks[0]


__all__ = ["Submission", "discover", "find_notebook", "notebooks_in"]
