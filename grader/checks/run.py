"""The run checks: judged from the grader's own runs of the student's models.

Every number compared here was produced by the grader under one fixed configuration: the
student's two models and the reference networks, same data, same seed, same budget. The student's
reported figures are compared with the reproduced ones only to flag a gap for review; a gap is
never penalised automatically, because the student may have trained longer or differently.

A comparison a budget cannot support is not scored, with the reason, rather than passed or failed
by noise: the comparisons with the references need the baseline reference to have learned under
the budget (and no run shorter than the budget's: a plan its cost cut, or the safety net, as the grader's clock has it);
the notebook's own figures are compared with the grading budget's retraining only. Learning is
judged from the validation loss and accuracy the grader computed, never from the child's account.

A model whose accuracy on the test images as published is far beyond its accuracy on slightly
perturbed ones has memorized the public test set (grader.training.memorization): it is flagged for
the instructor, and every comparison here takes its accuracy on the perturbed images
(`ModelRun.test_accuracy`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

from grader.analysis import Analysis
from grader.checks import Scored, Verdict, ids
from grader.child.protocol import History
from grader.rubric import Budget, Rubric
from grader.sandbox.models_run import NUM_CLASSES, ModelCheck
from grader.training.memorization import memorizing_flag
from grader.training.runs import ModelRun


@dataclass(frozen=True)
class RunFacts:
    """What the run checks judge."""

    analysis: Analysis
    models: Mapping[str, ModelCheck]
    """Class name -> whether it builds and maps images to logits."""
    runs: Mapping[str, ModelRun]
    """Class name -> its training under the fixed config."""
    references: Mapping[str, ModelRun]
    """Reference class name -> its training under the same config."""
    rubric: Rubric
    budget: Budget = "full"

    def accuracy(self, name: str | None, reference: bool = False) -> float | None:
        """The reproduced test accuracy of a student's class or of a reference: on the perturbed test
        images alone for a model flagged as memorizing the test set."""
        run = (self.references if reference else self.runs).get(name or "")
        return run.test_accuracy if run else None

    def memorizing(self, name: str | None) -> bool:
        """The student's class is flagged as memorizing the test set."""
        run = self.runs.get(name or "")
        return bool(run and run.memorization and run.memorization.flagged)


def run_checks(facts: RunFacts) -> Scored:
    """Every run check the rubric scores, in registry order, and the flags for the instructor."""
    verdicts = {check_id: JUDGES[check_id](facts) for check_id in ids("run") if check_id in facts.rubric.checks}
    memorized = tuple(memorizing_flag(name, run.memorization) for name, run in facts.runs.items()
                      if run.memorization and run.memorization.flagged)
    return Scored(tuple(facts.rubric.score(check_id, v) for check_id, v in verdicts.items()),
                  memorized + tuple(v.flag for v in verdicts.values() if v.flag))


def models_run(facts: RunFacts) -> Verdict:
    """Points for the share of models that run; the message says what each failure was."""
    models = facts.models
    if not models:
        return Verdict(False, "no baseline or proposed model class to run")
    passed = [m for m in models.values() if m.passed]
    lines = [m.message for m in models.values() if m.message] + [m.note for m in models.values() if m.note]
    if len(passed) == len(models) and not lines:
        lines = [f"{', '.join(models)} build and map (N, 3, 32, 32) to (N, 10) logits"]
    return Verdict(len(passed) == len(models), "\n".join(lines), len(passed) / len(models))


CHANCE = 1 / NUM_CLASSES
"""A label-blind model's expected accuracy on ten balanced classes."""
NOISE_Z = 4.0
"""Standard errors above chance an accuracy must be to show learning: a label-blind model gets
there with probability 3e-5 an epoch (a 15-epoch run: 5e-4)."""
LOSS_NOISE = 20.0
"""A label-blind model's validation loss is ln 10 less at most the divergence of the sample's
class counts from uniform, about chi-square(9) / 2n: below ln 10 - LOSS_NOISE / n it is not
(chi-square(9) > 2 * LOSS_NOISE with probability 1e-5)."""


@dataclass(frozen=True)
class Learning:
    """What the grader's own scoring of a run's epochs says of its learning."""

    learns: bool
    accuracy: float
    """The best epoch's validation accuracy."""
    loss: float
    """The best epoch's validation loss."""
    images: int
    """Validation images each epoch was scored on."""
    accuracy_bound: float
    """The most a label-blind model reaches on that many images, but rarely."""
    loss_bound: float
    """The least validation loss a label-blind model gets on that many images, but rarely."""

    def facts(self) -> str:
        return (f"{self.accuracy:.1%} validation accuracy on {self.images:,} images (chance is {CHANCE:.0%}; a model "
                f"that learned nothing reaches {self.accuracy_bound:.1%} at most), validation loss {self.loss:.3g} "
                f"(chance: {math.log(1 / CHANCE):.3g})")


def learning(history: History) -> Learning | None:
    """Whether the validation loss and accuracy the grader computed from the run's logits, in its
    best epoch, are beyond what a model that learned nothing gets on that many images (binomial
    noise around chance; the class counts' noise below ln 10); None when no epoch was scored."""
    epochs = [e for e in history.epochs if e.val_accuracy is not None and e.val_loss is not None]
    n = history.val_images
    if not epochs or n <= 0:
        return None
    accuracy = max(e.val_accuracy for e in epochs)  # type: ignore[type-var]
    loss = min(e.val_loss for e in epochs)  # type: ignore[type-var]
    accuracy_bound = CHANCE + NOISE_Z * math.sqrt(CHANCE * (1 - CHANCE) / n)
    loss_bound = math.log(1 / CHANCE) - LOSS_NOISE / n
    return Learning(accuracy > accuracy_bound or loss < loss_bound, accuracy, loss, n, accuracy_bound, loss_bound)  # type: ignore[arg-type]


def models_learn(facts: RunFacts) -> Verdict:
    """Each model that runs learns, by the validation loss and accuracy the grader computed from its
    logits: beyond what chance gives on the images scored. The child's training losses are its
    account, shown; one that says the loss fell where the grader sees chance is a flag."""
    lines, flags, learning_models, judged = [], [], 0, 0
    for name, check in facts.models.items():
        run = facts.runs.get(name)
        if not check.passed or run is None:
            continue
        history = run.history
        found = learning(history) if history is not None and history.status == "ok" else None
        if history is None or (history.status == "ok" and found is None):
            judged += 1
            lines.append(f"{name} did not train: {run.error or 'no epoch was scored'}")
            continue
        if history.status != "ok" or found is None:
            judged += 1
            lines.append(f"{name}: {history.message}")
            continue
        account = (f"; its training loss went {history.loss_start:.3g} -> {history.loss_end:.3g} (as its child reported)"
                   if history.loss_start is not None and history.loss_end is not None else "")
        if found.learns:
            judged, learning_models = judged + 1, learning_models + 1
            lines.append(f"{name} learns: {found.facts()}{account}")
        elif history.stopped_early:  # fewer images than the budget's, or stopped: too little training to judge
            lines.append(f"{name} is not judged: it {STOPPED[history.budget_cut or 'time']} and showed no learning "
                         f"({found.facts()}); the grading budget judges it")
        else:
            judged += 1
            lines.append(f"{name} does not learn: {found.facts()}: check that forward returns logits and that the "
                         f"model's layers are used{account}")
            if history.loss_start is not None and history.loss_end is not None and history.loss_end < 0.75 * history.loss_start:
                flags.append(f"{name}: its child's account says the training loss fell from {history.loss_start:.3g} to "
                             f"{history.loss_end:.3g}, yet the grader's scoring of its validation logits is at chance "
                             f"({found.accuracy:.1%} on {found.images:,} images): the model code may have forged the "
                             "account, or the model memorizes its training images")
    ran = sum(1 for check in facts.models.values() if check.passed)
    if not ran:
        return Verdict(False, "no model ran, so none could train (see models_run)")
    if not judged:
        return Verdict(False, "; ".join(lines), scored=False)
    return Verdict(learning_models == judged, "; ".join(lines), learning_models / judged, flag="; ".join(flags))


def _not_run(students: tuple[tuple[str, float | None], ...],
             references: tuple[tuple[str, float | None], ...] = ()) -> Verdict | None:
    """A comparison that lacks a figure: failed when a student's model has none (it did not train), not
    scored when a reference has none (no fault of the student's)."""
    missing = [name for name, value in students if value is None]
    if missing:
        return Verdict(False, f"no retrained test accuracy for {', '.join(missing)} (it did not train), so there is "
                              "nothing to compare")
    lacking = [f"the reference {name}" for name, value in references if value is None]
    return Verdict(False, f"not scored: no test accuracy for {', '.join(lacking)}", scored=False) if lacking else None


def _unsupported(facts: RunFacts, names: tuple[str | None, ...], references: tuple[str, ...] = ()) -> Verdict | None:
    """Not scored when the budget cannot tell these models apart (the student's `names` compared
    with each other or with the `references`), with the reason."""
    refs = facts.rubric.references
    low = facts.accuracy(refs.baseline, reference=True)
    if low is not None and low < refs.min_accuracy:
        return Verdict(False, (f"not scored under the {facts.budget} budget: the reference {refs.baseline} reached only "
                               f"{low:.1%} (chance is 10%), too little training to tell models apart; the grading "
                               "budget scores it"), scored=False)
    stopped = [f"{label} {STOPPED[run.history.budget_cut or 'time']}"
               for label, run in [*((n, facts.runs.get(n)) for n in names if n),
                                  *((f"the reference {n}", facts.references.get(n)) for n in references)]
               if run and run.history and run.history.stopped_early]
    if stopped:
        return Verdict(False, (f"not scored under the {facts.budget} budget: {'; '.join(stopped)}, so the runs are not "
                               "comparable; the grading budget scores it"), scored=False)
    return None


STOPPED = {"cost": "costs more FLOPs than the budget allows, so it trained on fewer images (see its notes)",
           "time": "was stopped by the budget's time limit before the end"}
"""Why a run is shorter than the budget's (History.budget_cut), as the comparisons say it."""


def _perturbed(facts: RunFacts, name: str | None) -> str:
    """Said after the accuracy of a model scored on the perturbed test images alone."""
    return " on the perturbed test images" if facts.memorizing(name) else ""


def baseline_works(facts: RunFacts) -> Verdict:
    rubric, name = facts.rubric, facts.analysis.baseline
    margin, ref_name = rubric.checks["baseline_works"].threshold, rubric.references.baseline
    base, ref = facts.accuracy(name), facts.accuracy(ref_name, reference=True)
    missing = (_not_run(((name or "the baseline", base),), ((ref_name, ref),))
               or _unsupported(facts, (name,), (ref_name,)))
    if missing:
        return missing
    assert base is not None and ref is not None
    passed = base >= ref - margin
    return Verdict(passed, f"{name} reached {base:.1%} test accuracy{_perturbed(facts, name)}, "
                           f"{'within' if passed else 'more than'} {margin:.0%} of the reference {ref_name} ({ref:.1%}) "
                           "trained the same way")


def proposed_beats_baseline(facts: RunFacts) -> Verdict:
    base_name, prop_name = facts.analysis.baseline, facts.analysis.proposed
    base, prop = facts.accuracy(base_name), facts.accuracy(prop_name)
    missing = (_not_run(((base_name or "the baseline", base), (prop_name or "the proposed model", prop)))
               or _unsupported(facts, (base_name, prop_name)))
    if missing:
        return missing
    assert base is not None and prop is not None
    gap = prop - base
    verb = "beats" if gap > 0 else "does not beat"
    return Verdict(gap > 0, f"{prop_name} ({prop:.1%}{_perturbed(facts, prop_name)}) {verb} {base_name} "
                            f"({base:.1%}{_perturbed(facts, base_name)}) by {gap * 100:+.1f} points under the fixed config")


def proposed_vs_references(facts: RunFacts) -> Verdict:
    refs, name = facts.rubric.references, facts.analysis.proposed
    prop = facts.accuracy(name)
    low, high = facts.accuracy(refs.baseline, reference=True), facts.accuracy(refs.strong, reference=True)
    missing = (_not_run(((name or "the proposed model", prop),), ((refs.baseline, low), (refs.strong, high)))
               or _unsupported(facts, (name,), (refs.baseline, refs.strong)))
    if missing:
        return missing
    assert prop is not None and low is not None and high is not None
    span = high - low
    if span < refs.min_separation:
        return Verdict(False, (f"not scored under the {facts.budget} budget: the reference {refs.strong} ({high:.1%}) did "
                               f"not beat {refs.baseline} ({low:.1%}) by {refs.min_separation:.0%}, so there is no scale "
                               "to place a model on"), scored=False)
    position = (prop - low) / span
    fraction = min(max(position, 0.0), 1.0)  # capped: beating the ResNet earns full, not extra, credit
    where = f"{fraction:.0%} of the way from {refs.baseline} ({low:.1%}) to {refs.strong} ({high:.1%})"
    return Verdict(True, f"{name} ({prop:.1%}{_perturbed(facts, name)}) lands {where}", fraction)  # a scale: where it lands is the grade


def reported_matches(facts: RunFacts) -> Verdict:
    """A gap beyond the tolerance fails (0 points by default) and is flagged for review."""
    if facts.budget != "full":
        return Verdict(False, (f"not compared under the {facts.budget} budget: the notebook's own training is "
                               "compared with the grading budget's retraining only"), scored=False)
    tolerance = facts.rubric.checks["reported_matches"].threshold
    analysis = facts.analysis
    gaps, compared = [], []
    for name in (analysis.baseline, analysis.proposed):
        reported = analysis.reported.get(name) if name else None
        reproduced = facts.accuracy(name)
        if reported is None or reported.test_acc is None or reproduced is None:
            continue
        compared.append(f"{name}: reported {reported.test_acc:.1%}, reproduced {reproduced:.1%}{_perturbed(facts, name)}")
        if abs(reported.test_acc - reproduced) > tolerance:
            gaps.append(name)
    if not compared:
        return Verdict(False, "not compared: no model has both a reported and a reproduced test accuracy")
    if not gaps:
        return Verdict(True, f"{'; '.join(compared)} (within {tolerance:.0%})")
    message = (f"{'; '.join(compared)} (differs by more than {tolerance:.0%} for {', '.join(gaps)}; "
               "flagged for review, not penalised)")
    return Verdict(False, message, flag=f"reported vs reproduced: {message}")


JUDGES: dict[str, Callable[[RunFacts], Verdict]] = {
    "models_run": models_run,
    "models_learn": models_learn,
    "baseline_works": baseline_works,
    "proposed_beats_baseline": proposed_beats_baseline,
    "proposed_vs_references": proposed_vs_references,
    "reported_matches": reported_matches,
}
"""The judge of every run check in the registry (tests/test_check.py holds the two in step)."""


__all__ = ["JUDGES", "RunFacts", "Scored", "run_checks"]
