"""Sandbox fixtures (imported by the sandbox test modules): the isolation, probed once per session."""

from __future__ import annotations

import os

import pytest

from grader.errors import SandboxError


@pytest.fixture(scope="session")
def isolation():
    """The strongest isolation that works here; CI (GRADER_CI=1) fails instead of skipping."""
    from grader.isolation import detect_isolation

    try:
        return detect_isolation()
    except SandboxError as e:
        if os.environ.get("GRADER_CI"):
            raise
        pytest.skip(f"no sandbox here: {e}")


@pytest.fixture(scope="session", params=["bubblewrap", "namespace"])
def each_isolation(request):
    """Each kind of network isolation in turn; skipped where it does not work (failing under CI=1 as root)."""
    from grader.isolation import detect_isolation

    try:
        return detect_isolation(prefer=request.param)
    except SandboxError as e:
        if os.environ.get("GRADER_CI") and os.geteuid() == 0:
            raise
        pytest.skip(f"{request.param} does not work here: {e}")
