"""The effect of the architecture: the proposed model minus the baseline, both retrained under the
grader's fixed config, set against the noise the grader measured between training seeds.

The noise is the rubric's `references.seed_spread`: how far one model's test accuracy moves when
only the seed changes (bench/bench_stability.py measures it; BENCHMARKS.md records it). A gap
wider than that is the architecture's doing; a narrower one may be the seed's.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean

from grader.training.runs import ModelRun


@dataclass(frozen=True)
class Effect:
    """Proposed minus baseline, under the same config and seed."""

    test_accuracy: float | None
    """Difference in test accuracy, as a fraction (0.098 is 9.8 points)."""
    val_loss: float | None
    """Difference in validation loss at each model's selected epoch (negative: the proposed fits better)."""
    seconds_per_epoch: float | None
    """Difference in mean wall time per epoch on the grading machine."""
    seed_spread: float
    """Test-accuracy spread between training seeds (a fraction), from the rubric."""

    @property
    def beyond_noise(self) -> bool | None:
        """The accuracy gap is wider than the seed-to-seed spread; None when there is no gap to judge."""
        return None if self.test_accuracy is None else abs(self.test_accuracy) > self.seed_spread

    @property
    def verdict(self) -> str:
        """'+9.8 points, larger than the seed-to-seed spread of about 1 point', or '... within the noise'."""
        if self.test_accuracy is None:
            return "not measured"
        gap, spread = _points(self.test_accuracy, signed=True), _points(self.seed_spread)
        if self.beyond_noise:
            return f"{gap}, larger than the seed-to-seed spread of about {spread}"
        return f"{gap}, within the noise (seeds alone move test accuracy by about {spread})"


def effect_of(baseline: ModelRun | None, proposed: ModelRun | None, seed_spread: float) -> Effect | None:
    """The effect when both models trained; None otherwise."""
    if baseline is None or proposed is None or baseline.history is None or proposed.history is None:
        return None
    return Effect(_minus(proposed.test_accuracy, baseline.test_accuracy),
                  _minus(_val_loss(proposed), _val_loss(baseline)),
                  _minus(_epoch_seconds(proposed), _epoch_seconds(baseline)), seed_spread)


def _val_loss(run: ModelRun) -> float | None:
    selected = run.history.selected if run.history else None
    return selected.val_loss if selected else None


def _epoch_seconds(run: ModelRun) -> float | None:
    epochs = run.history.epochs if run.history else ()
    return fmean(e.seconds for e in epochs) if epochs else None


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 6)


def _points(fraction: float, signed: bool = False) -> str:
    points = fraction * 100
    text = f"{points:+.1f}" if signed else f"{points:.1f}".removesuffix(".0")
    return f"{text} point" + ("" if abs(points) == 1 else "s")


__all__ = ["Effect", "effect_of"]
