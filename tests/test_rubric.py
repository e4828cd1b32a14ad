import pytest

from grader.config import TrainConfig
from grader.errors import RubricError
from grader.rubric import STATIC_CHECK_IDS, load_rubric


def test_default_rubric_loads_with_every_static_check(rubric):
    assert set(STATIC_CHECK_IDS) <= set(rubric.checks)
    assert rubric.data.train_size == 40_000 and rubric.data.split_seed == 5
    assert rubric.data.mean == (0.5, 0.5, 0.5)
    assert rubric.is_generic_name("net") and rubric.is_generic_name("Model2")
    assert not rubric.is_generic_name("ResDropNet")
    assert len(rubric.sha256) == 64


def test_quick_budget_is_train_with_overrides(rubric):
    assert rubric.quick.epochs == 1 and rubric.quick.train_subset == 5_000
    assert rubric.quick.optimizer == rubric.train.optimizer and rubric.quick.lr == rubric.train.lr


def _write(tmp_path, text):
    path = tmp_path / "r.toml"
    path.write_text('[assignment]\nname = "x"\n' + text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("[train]\nlr = 'fast'\n", "train.lr = 'fast' in the rubric; expected a number"),
        ("[train]\nlearning_rate = 0.1\n", "unknown key train.learning_rate"),
        ("[train]\noptimizer = 'rmsprop'\n", "train.optimizer = 'rmsprop' in the rubric; expected one of 'adam', 'adamw', 'sgd'"),
        ("[checks.discusion]\npoints = 3\n", "unknown check checks.discusion"),
        ("[checks.discussion]\nhint = 'x'\n", "missing key checks.discussion.points"),
        ("[data]\nmean = [0.5, 0.5]\n", "data.mean in the rubric must have 3 items, not 2"),
        ("[data]\ntrain_size = 45000\n", "train_size + data.val_size must be positive and at most 50000"),
        ("[grading]\nx = 1\n", "unknown table [grading]"),
        ("[train]\nepochs = true\n", "expected a whole number"),
    ],
)
def test_bad_rubric_names_the_key(tmp_path, text, message):
    with pytest.raises(RubricError) as e:
        load_rubric(_write(tmp_path, text))
    assert message in str(e.value)


def test_rubric_without_assignment_and_missing_and_invalid_files(tmp_path):
    (tmp_path / "a.toml").write_text("[train]\nlr = 0.1\n")
    with pytest.raises(RubricError, match=r"has no \[assignment\] table"):
        load_rubric(tmp_path / "a.toml")
    with pytest.raises(RubricError, match="does not exist"):
        load_rubric(tmp_path / "missing.toml")
    (tmp_path / "b.toml").write_text("[assignment\n")
    with pytest.raises(RubricError, match="is not valid TOML"):
        load_rubric(tmp_path / "b.toml")


def test_integers_are_accepted_for_floats(tmp_path):
    rubric = load_rubric(_write(tmp_path, "[train]\nlr = 1\n"))
    assert rubric.train.lr == 1.0 and isinstance(rubric.train.lr, float)
    assert rubric.train.epochs == TrainConfig().epochs
