import pytest

from grader.checks import CHECK_IDS, ids
from grader.child.config import TrainConfig
from grader.errors import RubricError
from grader.rubric import load_rubric


def test_default_rubric_loads_with_every_check(rubric):
    assert tuple(rubric.checks) == CHECK_IDS
    assert rubric.applicable("none") == ids("static") and rubric.applicable("quick") == CHECK_IDS
    assert rubric.max_score("none") == 70 and rubric.max_score("full") == 100
    assert rubric.data.train_size == 40_000 and rubric.data.split_seed == 5
    assert rubric.data.mean == (0.5, 0.5, 0.5)
    assert rubric.is_generic_name("net") and rubric.is_generic_name("Model2")
    assert not rubric.is_generic_name("ResDropNet")
    assert len(rubric.sha256) == 64


def test_quick_budget_is_train_with_overrides(rubric):
    assert (rubric.quick.epochs, rubric.quick.train_subset, rubric.quick.eval_subset) == (2, 5_000, 1_000)
    # The self-check is counted in FLOPs (3 TFLOP admits the ResNet-20 reference whole), its time limit a safety net.
    assert (rubric.quick.max_flops, rubric.quick.max_seconds) == (3e12, 300)
    assert (rubric.train.max_flops, rubric.train.max_seconds) == (0, 0)  # the grading budget trains every model whole
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
        ("[train]\nepochs = true\n", "train.epochs = True in the rubric; expected a whole number"),
        ("[train]\nnesterov = 1\n", "train.nesterov = 1 in the rubric; expected true or false"),
        ("[train]\n[train.lr]\nx = 1\n", "train.lr = {'x': 1} in the rubric; expected a number"),
        ("[references]\nbaseline = 5\n", "references.baseline = 5 in the rubric; expected a string"),
        ("[train_quick]\nepoch = 1\n", "unknown key train_quick.epoch in the rubric; expected one of: optimizer,"),
    ],
)
def test_bad_rubric_names_the_key(tmp_path, text, message):
    with pytest.raises(RubricError) as e:
        load_rubric(_write(tmp_path, text))
    assert message in str(e.value)


def test_a_table_that_is_not_a_table(tmp_path):
    (tmp_path / "r.toml").write_text('train = 3\n[assignment]\nname = "x"\n')
    with pytest.raises(RubricError, match="^train in the rubric must be a table of keys, not a number$"):
        load_rubric(tmp_path / "r.toml")


def test_rubric_without_assignment_and_missing_and_invalid_files(tmp_path):
    (tmp_path / "a.toml").write_text("[train]\nlr = 0.1\n")
    with pytest.raises(RubricError, match=r"has no \[assignment\] table"):
        load_rubric(tmp_path / "a.toml")
    with pytest.raises(RubricError, match="does not exist"):
        load_rubric(tmp_path / "missing.toml")
    (tmp_path / "b.toml").write_text("[assignment\n")
    with pytest.raises(RubricError, match="is not valid TOML"):
        load_rubric(tmp_path / "b.toml")


def test_quick_keeps_the_keys_train_sets(tmp_path):
    rubric = load_rubric(_write(tmp_path, "[train]\nlr = 0.2\nepochs = 9\n[train_quick]\nepochs = 1\n"))
    assert (rubric.train.lr, rubric.train.epochs, rubric.quick.lr, rubric.quick.epochs) == (0.2, 9, 0.2, 1)
    assert rubric.train_config("quick") == rubric.quick and rubric.train_config("full") == rubric.train


def test_integers_are_accepted_for_floats(tmp_path):
    rubric = load_rubric(_write(tmp_path, "[train]\nlr = 1\n"))
    assert rubric.train.lr == 1.0 and isinstance(rubric.train.lr, float)
    assert rubric.train.epochs == TrainConfig().epochs
