"""What student code in the child's process must not replace: the functions the checks and the
trainer rely on, sealed before any student code runs and compared after it has.

Student code runs in the same process as the child program and could replace them (an optimizer
that trains longer than the config, a parameter count that lies). A replaced function, or one whose
code object was swapped, shows here. Code that patches the interpreter itself can still evade it:
the parent's audit of the reported run (grader/training/retrain.py) and the limits the kernel
enforces do not depend on this process's honesty.
"""

from __future__ import annotations

import sys


class Seal:
    """Attributes as they were when sealed."""

    def __init__(self, watched: list[tuple[object, str]]):
        self.watched = watched
        self.original = [self._now(owner, name) for owner, name in watched]

    @staticmethod
    def _now(owner: object, name: str) -> tuple[object, object]:
        obj = getattr(owner, name, None)
        return obj, getattr(obj, "__code__", None)

    def changed(self) -> list[str]:
        """'owner.name' of every watched attribute that is not what it was."""
        return [f"{getattr(owner, '__name__', owner)}.{name}" for (owner, name), (obj, code)
                in zip(self.watched, self.original) if self._now(owner, name) != (obj, code)]


def guarded(torch, task: str) -> list[tuple[object, str]]:
    """What the child's checks and the trainer rely on.

    The optimizers' step methods and torch.manual_seed only for training, and only after an
    optimizer of each kind was constructed once: torch wraps those itself the first time (profiling
    hooks, dynamo), which is not tampering, and the check task need not pay for that import.
    """
    from grader.child import runtime, train

    import torch.nn.functional as F

    watched = ([(torch.nn.Module, n) for n in ("__call__", "_call_impl", "parameters", "named_parameters", "train",
                                               "eval", "state_dict", "load_state_dict", "to", "zero_grad")]
               + [(torch.Tensor, n) for n in ("numel", "backward")] + [(sys.modules["numpy"], "save")]
               + [(torch.optim, n) for n in ("SGD", "Adam", "AdamW")]
               + [(torch.optim.lr_scheduler, n) for n in ("OneCycleLR", "LambdaLR")]
               + [(F, "cross_entropy"), (torch, "randperm")]
               + [(train, n) for n in ("train", "_fit", "_optimizer", "_schedule", "predict_logits", "_crop_flip",
                                       "steps_per_epoch")]
               + [(runtime, n) for n in ("logits_of", "prepare_model", "Normalize", "run_context", "autocast")]
               + [(runtime.Normalize, "__call__")])
    if task != "train":
        return watched
    optimizers = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)
    return watched + [(cls, "step") for cls in optimizers] + [(torch, "manual_seed")]


__all__ = ["Seal", "guarded"]
