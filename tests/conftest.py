from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SUBMISSIONS = REPO / "submissions"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    corpus = SHARED / "corpus"
    if not (corpus / "labels.json").exists():
        pytest.skip("../shared/corpus is not present (only in the course's development checkout)")
    return corpus


@pytest.fixture(scope="session")
def corpus_labels(corpus_dir: Path) -> dict[str, dict]:
    return {entry["file"]: entry for entry in json.loads((corpus_dir / "labels.json").read_text())}


@pytest.fixture(scope="session")
def rubric():
    from grader.rubric import load_rubric

    return load_rubric()
