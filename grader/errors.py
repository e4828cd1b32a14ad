"""The one exception type a user can cause, and its kinds.

Every error a user can fix (a bad notebook, a bad rubric, missing data) is a `GraderError`
whose message says what is wrong and what to do. The CLI prints it on one line, without a
traceback, and exits with code 2. Anything else is a bug in the grader.
"""

from __future__ import annotations


class GraderError(Exception):
    """A problem the user can fix; the message says how."""


class NotebookError(GraderError):
    """The notebook file cannot be read as a Jupyter notebook."""


class RubricError(GraderError):
    """The rubric TOML is malformed or names unknown keys."""


class DataError(GraderError):
    """The CIFAR-10 data is missing, corrupt or of the wrong shape."""


class SandboxError(GraderError):
    """Student code could not be run in isolation as the user asked."""
