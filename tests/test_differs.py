"""What differs between two models, measured on the built models in the real sandbox child, and
how the parent treats the child's account of it (untrusted: the student's code ran there).

The sandbox cases build four classes in one models_run (no training): LeNet5, the same with a
BatchNorm2d after each convolution, and a small net with and without its skip connections.
"""

from __future__ import annotations

import pytest

from grader.analysis import analyze
from grader.analysis.architecture import Architecture, clean_ablation, code_traces, differences, reconcile
from grader.child.protocol import Anatomy
from grader.sandbox.models_run import measured_architecture, run_models
from nbfactory import IMPORTS, LENET5, code, notebook
from submissions.comparative_examples import LENET5_BN  # the BatchNorm ablation's proposed model


# The same blocks with and without `+ x`: a functional ReLU, a loop over blocks (fx-unfriendly
# control flow is fine on the real forward) and an in-place skip.
SKIP_PAIR = """
class Block(nn.Module):
    def __init__(self, channels, skip):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.skip = skip

    def forward(self, x):
        out = self.conv(x)
        if self.skip:
            out += x
        return F.relu(out)


class PlainNet(nn.Module):
    def __init__(self, skip=False):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.blocks = nn.ModuleList([Block(16, skip) for _ in range(2)])
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        for block in self.blocks:
            x = block(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1) + 0.0)


class SkipNet(PlainNet):
    def __init__(self):
        super().__init__(skip=True)
"""


@pytest.fixture(scope="module")
def measured(isolation):
    nb = notebook(*[code(source) for source in (IMPORTS, LENET5, LENET5_BN, SKIP_PAIR)])
    run = run_models(nb, ["LeNet5", "LeNet5BN", "PlainNet", "SkipNet"], max_params=10**6, isolation=isolation)
    assert all(check.passed for check in run.models.values()), [c.message for c in run.models.values()]
    return {name: check.architecture for name, check in run.models.items()}


def test_lenet5_as_measured_in_the_sandbox(measured):
    lenet = measured["LeNet5"]
    assert (lenet.source, lenet.conv_layers, lenet.linear_layers, lenet.widths) == ("run", 2, 3, (6, 16))
    assert (lenet.norms, lenet.dropout_layers, lenet.residual) == ((), 0, 0)
    assert (lenet.pooling, lenet.activations, lenet.params) == (("MaxPool2d",), ("ReLU",), 62006)


def test_a_batchnorm_ablation_is_one_normalization_difference_and_clean(measured):
    found = differences(measured["LeNet5"], measured["LeNet5BN"])
    assert [d.factor for d in found] == ["normalization", "size"]
    assert found[0].text == "+ BatchNorm2d (2 layers)"
    assert clean_ablation(found) == "normalization"


def test_a_skip_connection_ablation_is_one_residual_difference(measured):
    plain, skip = measured["PlainNet"], measured["SkipNet"]
    assert (plain.residual, skip.residual) == (0, 2)  # `+ 0.0` (a constant) and the broadcast are not skips
    assert (plain.pooling, plain.activations) == (("AdaptiveAvgPool2d",), ("ReLU",))  # functional ones count
    found = differences(plain, skip)
    assert [d.text for d in found] == ["+ 2 residual connections"]
    assert clean_ablation(found) == "residual"


# ---- the parent's checks of the child's account ---------------------------------------------------

def test_kind_names_outside_torch_nn_are_shown_as_other():
    anatomy = Anatomy(conv_layers=1, widths=(8,), norms=("<script>alert(1)</script>", "BatchNorm2d"),
                      activations=("ReLU", "x" * 4000), pooling=("MaxPool2d",))
    arch = measured_architecture(anatomy, 100, 2000)
    assert (arch.norms, arch.activations, arch.pooling) == (("BatchNorm2d", "other"), ("ReLU", "other"), ("MaxPool2d",))


@pytest.mark.parametrize("lie", [
    dict(conv_layers=-1), dict(residual=10**9), dict(widths=(0,)), dict(widths=(2**40,)), dict(widths=(8,) * 10_001),
])
def test_an_implausible_account_is_dropped_whole(lie):
    assert measured_architecture(Anatomy(**lie), 100, 2000) is None


def test_negative_sizes_are_unknown_and_no_account_is_none():
    assert measured_architecture(Anatomy(conv_layers=1, widths=(4,)), -5, -1).params is None
    assert measured_architecture(None, 100, 200) is None


# What a measurement claims is held against the code: a kind the code never mentions is not believed.
TRACES = """
import torchvision

class Forged(nn.Module):  # a LeNet-like body and nothing else
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 5)
        self.fc = nn.Linear(6 * 14 * 14, 10)

    def forward(self, x):
        return self.fc(F.max_pool2d(F.relu(self.conv(x)), 2).flatten(1))


class Referenced(nn.Module):  # kinds named as references, methods and torch.add: traces without a layer call
    def __init__(self, norm_layer=nn.BatchNorm2d, depth=4):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3, 3, 3, padding=1) for _ in range(depth)])
        self.norm = norm_layer(3)
        self.fc = nn.Linear(3, 10)

    def forward(self, x):
        for conv in self.convs:
            x = torch.add(self.norm(conv(x)).relu(), x)
        return self.fc(x.mean((2, 3)))


class Wrapped(nn.Module):  # layers built by a library the grader does not read
    def __init__(self):
        super().__init__()
        self.net = torchvision.models.resnet18(num_classes=10)

    def forward(self, x):
        return self.net(x)
"""


def _held(name: str, measured: Architecture):
    analysis = analyze(notebook(IMPORTS, TRACES))
    return reconcile(measured, analysis.architecture(name), code_traces(analysis.definitions, name))


def test_kinds_the_code_never_mentions_are_replaced_by_the_codes_reading():
    claims = Architecture("run", conv_layers=1, linear_layers=1, widths=(6,), norms=("BatchNorm2d",), norm_layers=2,
                          dropout_layers=1, residual=2, pooling=("MaxPool2d",), activations=("GELU", "ReLU"), params=10)
    kept, untraced = _held("Forged", claims)
    assert untraced == ("BatchNorm2d", "GELU", "dropout", "2 residual connections")
    assert (kept.norms, kept.norm_layers, kept.dropout_layers, kept.residual, kept.activations) == ((), 0, 0, 0, ("ReLU",))
    assert (kept.source, kept.conv_layers, kept.widths, kept.pooling, kept.params) == ("run", 1, (6,), ("MaxPool2d",), 10)


def test_what_the_code_shows_a_trace_of_is_believed_beyond_its_counts():
    """A loop builds four convolutions where the code reads one; a norm layer handed over as a
    reference, a method's relu and torch.add are traces: the measurement stands."""
    measured = Architecture("run", conv_layers=4, linear_layers=1, widths=(3,) * 4, norms=("BatchNorm2d",),
                            norm_layers=4, residual=4, pooling=(), activations=("ReLU",))
    assert _held("Referenced", measured) == (measured, ())


def test_layers_built_by_a_library_leave_the_measurement_as_it_is():
    measured = Architecture("run", conv_layers=20, linear_layers=1, widths=(64,) * 20, norms=("BatchNorm2d",),
                            norm_layers=20, residual=8, pooling=("AdaptiveAvgPool2d", "MaxPool2d"), activations=("ReLU",))
    assert _held("Wrapped", measured) == (measured, ())


# ---- the feedback and the gradebook ----------------------------------------------------------------

from dataclasses import replace  # noqa: E402

from grader.analysis.architecture import Architecture  # noqa: E402
from grader.grading.grade import grade_submission  # noqa: E402
from grader.notebook import load_notebook  # noqa: E402
from grader.report.differs import FACTOR_COLUMNS, factor_cells  # noqa: E402
from grader.report.feedback import feedback_markdown, write_feedback  # noqa: E402
from grader.report.gradebook import gradebook_csv  # noqa: E402
from grader.training.effect import effect_of  # noqa: E402
from support import SUBMISSIONS, needs_chromium, pixels_of, screenshot  # noqa: E402
from support import with_runs  # noqa: E402  (the synthetic retraining of the complete example)

TABLE_HEADER = (246, 248, 250)  # th { background: #f6f8fa } in templates/page.html.j2


def with_architectures(result, architectures, seed_spread=0.01):
    """`result` with each run's measured architecture and the effect the grader computes from the runs."""
    runs = {name: replace(r, architecture=architectures.get(name)) for name, r in result.runs.items()}
    return replace(result, runs=runs, effect=effect_of(runs[result.baseline], runs[result.proposed], seed_spread))


@pytest.fixture(scope="module")
def complete(rubric, isolation):
    """The complete example, its two models measured in the sandbox, its runs synthetic (no training)."""
    static = with_runs(grade_submission(SUBMISSIONS / "complete.ipynb", student="alice", rubric=rubric))
    checked = run_models(load_notebook(SUBMISSIONS / "complete.ipynb"), ["LeNet5", "ResDropNet"], max_params=10**7,
                         isolation=isolation)
    return with_architectures(static, {name: c.architecture for name, c in checked.models.items()},
                              rubric.references.seed_spread)


def test_the_feedback_shows_what_differs_and_the_effect_with_its_spread(complete):
    text = feedback_markdown(complete)
    section = text[text.index("## What differs"):text.index("## Against the references")]
    print(section)
    assert "| Factor | Baseline: LeNet5 | Proposed: ResDropNet |" in section
    assert "| **Depth (weight layers)** | 5 (2 conv, 3 linear) | 7 (6 conv, 1 linear) |" in section
    assert "| **Width (conv channels)** | 6, 16 (widest 16) | 32, 32, 32, 64, 64, 64 (widest 64) |" in section
    assert "| **Normalization** | none | BatchNorm2d (6 layers) |" in section
    assert "| **Residual connections** | none | 2 |" in section
    assert "| Activation | ReLU | ReLU |" in section  # the same in both: not in bold
    assert "- \\+ BatchNorm2d (6 layers)\n- \\+ dropout (0\u21921 layers)\n- \\+ 2 residual connections\n" in section
    assert "clean ablation" not in section  # ResDropNet changes several factors at once
    assert "| Test accuracy | 55.0% | 70.0% | +15.0 points |" in section
    assert "**+15.0 points, larger than the seed-to-seed spread of about 1 point**" in section


LENET = Architecture("run", conv_layers=2, linear_layers=3, widths=(6, 16), pooling=("MaxPool2d",), activations=("ReLU",),
                     params=62006)
LENET_BN = replace(LENET, norms=("BatchNorm2d",), norm_layers=2, params=62050)


@pytest.fixture(scope="module")
def ablation(rubric):
    """The complete example as if its proposed model were LeNet5 with BatchNorm, 0.5 points ahead."""
    static = with_runs(grade_submission(SUBMISSIONS / "complete.ipynb", student="bea", rubric=rubric))
    runs = {**static.runs, "ResDropNet": replace(static.runs["ResDropNet"], history=replace(
        static.runs["ResDropNet"].history, test_accuracy=0.555))}
    return with_architectures(replace(static, runs=runs), {"LeNet5": LENET, "ResDropNet": LENET_BN})


def test_a_clean_ablation_is_named_and_a_small_gap_is_within_the_noise(ablation):
    text = feedback_markdown(ablation)
    assert "- \\+ BatchNorm2d (2 layers)\n- params x1.0\n" in text
    assert "This is **a clean ablation of normalization**" in text
    assert "**+0.5 points, within the noise (seeds alone move test accuracy by about 1 point)**" in text


def test_the_gradebook_has_factor_columns_to_sort_by(ablation, complete):
    rows = gradebook_csv([ablation, replace(complete, student="cy")], [], {}, 100).splitlines()
    header = rows[0].split(",")
    start = header.index(FACTOR_COLUMNS[0])
    assert header[start:start + len(FACTOR_COLUMNS)] == list(FACTOR_COLUMNS)
    cells = [row.split(",")[start:start + len(FACTOR_COLUMNS)] for row in rows[1:]]
    assert cells[0] == ["5", "16", "BatchNorm2d", "0", "0", "1", "normalization size", "normalization", "0.005", "no"]
    assert cells[1][:5] == ["7", "64", "BatchNorm2d", "1", "2"] and cells[1][7:] == ["", "0.15", "yes"]
    assert cells[1][6] == "depth width normalization dropout residual pooling size"


def test_result_json_keeps_the_architectures_and_the_effect(complete):
    from grader.grading.result import GradeResult, architectures_of

    back = GradeResult.from_dict(__import__("json").loads(complete.to_json()))
    assert back.runs["ResDropNet"].architecture == complete.runs["ResDropNet"].architecture
    assert architectures_of(back)["LeNet5"].widths == (6, 16) and back.effect == complete.effect
    assert factor_cells(back) == factor_cells(complete)


def test_a_page_without_runs_says_what_differs_as_read_from_the_code(rubric):
    page = feedback_markdown(grade_submission(SUBMISSIONS / "complete.ipynb", student="dee", rubric=rubric))
    assert "## What differs" in page and "read them from your code" in page and "The effect" not in page
    assert "| **Residual connections** | none | 2 |" in page  # the skip in ResidualBlock.forward, read statically


@needs_chromium
def test_the_complete_examples_page_shows_what_differs_and_the_effect(complete, tmp_path):
    """The page with the section against the same page without it (no architectures, no effect):
    whole pages (the feedback is about 6,600 pixels tall), so the only difference is the section."""
    without = replace(complete, effect=None, architectures={},
                      runs={n: replace(r, architecture=None) for n, r in complete.runs.items()})
    grey = {}
    for name, result in (("with", complete), ("without", without)):
        folder = tmp_path / name
        folder.mkdir()
        write_feedback(result, folder)
        grey[name] = pixels_of(screenshot(folder / "feedback.html", folder, height=9000), TABLE_HEADER, 0.01)
    html = (tmp_path / "with" / "feedback.html").read_text()
    assert "<h2>What differs</h2>" in html and "<strong>Normalization</strong>" in html
    assert "<li>+ BatchNorm2d (6 layers)</li>" in html and "<li>depth 5\u21927 weight layers (6 conv, 1 linear)</li>" in html
    assert "larger than the seed-to-seed spread of about 1 point" in html
    assert grey["with"] - grey["without"] > 40_000  # the header rows of the factor table and of the effect's


@pytest.mark.parametrize("spread", ["-0.01", "1.5"])
def test_a_seed_spread_outside_a_fraction_is_a_rubric_error_saying_what_to_write(spread):
    from grader.errors import RubricError
    from grader.rubric import parse_rubric

    with pytest.raises(RubricError, match=r"references.seed_spread must be a fraction .* \(0.01 is one point\)"):
        parse_rubric({"assignment": {}, "references": {"seed_spread": float(spread)}}, source="r.toml")
