"""The learning-curve picture of a result: training loss and validation accuracy per epoch.

Drawn only when a curve has a shape: a one-epoch budget gives one dot per model, which says
nothing a table does not, so there is no picture then.
"""

from __future__ import annotations

import io

from grader.child.protocol import History
from grader.grading.result import GradeResult

MIN_EPOCHS = 2
"""A series needs this many epochs to be a curve."""


def _series(result: GradeResult) -> dict[str, History]:
    """Each model's and reference's history, by its label in the legend (runs without epochs left out)."""
    series = {f"{n} (yours)": r.history for n, r in result.runs.items()}
    series.update({f"{n} (reference)": r.history for n, r in result.references.items()})
    return {label: h for label, h in series.items() if h is not None and h.epochs}


def learning_curves_png(result: GradeResult) -> bytes | None:
    """Both models' and the references' curves side by side; None when no series is a curve."""
    series = _series(result)
    if not any(len(h.epochs) >= MIN_EPOCHS for h in series.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display on grading machines
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for label, history in series.items():
        epochs = [e.epoch for e in history.epochs]
        style = "--" if "reference" in label else "-"
        loss_ax.plot(epochs, [e.train_loss for e in history.epochs], style, marker="o", label=label)
        acc_ax.plot(epochs, [e.val_accuracy for e in history.epochs], style, marker="o", label=label)
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_ax.set(title="Training loss", xlabel="epoch", ylabel="cross-entropy")
    acc_ax.set(title="Validation accuracy", xlabel="epoch", ylabel="accuracy")
    acc_ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


__all__ = ["MIN_EPOCHS", "learning_curves_png"]
