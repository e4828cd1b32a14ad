"""The analysis against hand-checked labels of real notebooks (../shared/corpus/labels.json)."""

import pytest

from grader.analysis import METRICS, analyze
from grader.notebook import load_notebook

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def analyses(corpus_dir, corpus_labels):
    return {name: analyze(load_notebook(corpus_dir / name)) for name in corpus_labels}


def test_every_cnn_class_found_and_no_helper_counted(analyses, corpus_labels):
    for name, label in corpus_labels.items():
        a = analyses[name]
        found = {m.name: m.model.is_cnn for m in a.models}
        expected = {c["name"]: c["is_cnn"] for c in label["classes"] if not c.get("helper")}
        assert found == expected, name
        assert {h.name for h in a.helpers} == {c["name"] for c in label["classes"] if c.get("helper")}, name


def test_reported_values_extracted_and_attributed(analyses, corpus_labels):
    right = total = wrong_nulls = 0
    misses = []
    for name, label in corpus_labels.items():
        reported = analyses[name].reported
        assert set(reported) <= set(label["reported"]), f"{name}: values attributed to a model the labels do not list"
        for model, values in label["reported"].items():
            got = reported.get(model)
            for metric in (*METRICS, "epochs"):
                want = values["epochs_reported" if metric == "epochs" else metric]
                have = getattr(got, metric) if got else None
                if want is None:
                    wrong_nulls += have is not None and metric != "epochs"
                    continue
                total += 1
                if have is not None and have == pytest.approx(want, rel=1e-6):
                    right += 1
                else:
                    misses.append(f"{name} {model}.{metric}: {have} != {want}")
    assert total >= 40
    assert right / total >= 0.9, misses
    assert wrong_nulls == 0


def test_roles_agree_with_the_notebooks_words(analyses, corpus_labels):
    for name, label in corpus_labels.items():
        roles = {m.name: m.role for m in analyses[name].models}
        for c in label["classes"]:
            if c.get("helper"):
                continue
            role = roles[c["name"]]
            if c["role"] == "unknown":
                # The notebook does not say: the grader may guess, but must say it is a guess.
                assert role.role == "unknown" or role.guessed, (name, c["name"], role)
            else:
                assert role.role == c["role"], (name, c["name"], role)


def test_discussion_matches_labels(analyses, corpus_labels):
    for name, label in corpus_labels.items():
        assert analyses[name].discussion.present == label["discussion_present"], name


def test_magics_match_labels(analyses, corpus_labels):
    for name, label in corpus_labels.items():
        assert analyses[name].uses_magics == label["uses_magics"], name


def test_non_pytorch_models_are_named(analyses, corpus_labels):
    keras = [n for n, l in corpus_labels.items() if l["framework"] == "keras"]
    assert keras
    for name in keras:
        assert analyses[name].models == ()
        assert any(o.kind == "Keras model" for o in analyses[name].other_models)
