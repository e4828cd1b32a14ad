"""What a model is made of, and how the proposed model differs from the baseline.

An `Architecture` is read either from a class's code (statically, `source="code"`) or measured
in the sandbox by the models_run child (`source="run"`, the more exact: it sees the modules the
constructor really built and the additions the forward pass really made). Both are compared the
same way (`differences`), so the feedback's "What differs" table, the discussion checks and the
gradebook's columns all speak of the same factors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Factor = Literal["depth", "width", "normalization", "dropout", "residual", "pooling", "activation", "size"]
FACTORS: tuple[Factor, ...] = ("depth", "width", "normalization", "dropout", "residual", "pooling", "activation", "size")
"""The architectural factors the grader compares, in the order reports list them. `size` is the
parameter count and FLOPs: it differs whenever anything else does, so it never makes an ablation
unclean on its own."""


@dataclass(frozen=True)
class Architecture:
    """One model's architecture, as far as the grader compares models."""

    source: Literal["code", "run"]
    """'code': read from the class's source; 'run': measured on the built model in the sandbox."""
    conv_layers: int = 0
    linear_layers: int = 0
    widths: tuple[int, ...] = ()
    """Output channels of each convolution, in order."""
    norms: tuple[str, ...] = ()
    """Normalization layer kinds present (e.g. 'BatchNorm2d', 'GroupNorm', 'LayerNorm'), sorted."""
    norm_layers: int = 0
    dropout_layers: int = 0
    residual: int = 0
    """Residual (skip) connections: a block's input added to its output."""
    pooling: tuple[str, ...] = ()
    """Pooling kinds present (e.g. 'MaxPool2d', 'AdaptiveAvgPool2d'), sorted."""
    activations: tuple[str, ...] = ()
    """Activation kinds present (e.g. 'ReLU', 'GELU'), sorted."""
    params: int | None = None
    flops_per_image: int | None = None

    @property
    def depth(self) -> int:
        """Weight layers: convolutions and linear layers."""
        return self.conv_layers + self.linear_layers


@dataclass(frozen=True)
class Difference:
    """One way the proposed model differs from the baseline."""

    factor: Factor
    text: str
    """Short, for a table: '+ BatchNorm2d (5 layers)', 'width 6->64', 'params x14'."""


def differences(baseline: Architecture, proposed: Architecture) -> tuple[Difference, ...]:
    """How `proposed` differs from `baseline`, factor by factor, in FACTORS order."""
    found: list[Difference] = []
    if baseline.depth != proposed.depth:
        found.append(Difference("depth", f"depth {baseline.depth}->{proposed.depth} weight layers "
                                         f"({proposed.conv_layers} conv, {proposed.linear_layers} linear)"))
    if _widest(baseline) != _widest(proposed):
        found.append(Difference("width", f"width {_widest(baseline)}->{_widest(proposed)} channels (widest conv)"))
    found += _kinds("normalization", baseline.norms, proposed.norms, proposed.norm_layers, baseline.norm_layers)
    if baseline.dropout_layers != proposed.dropout_layers:
        sign = "+" if proposed.dropout_layers > baseline.dropout_layers else "-"
        found.append(Difference("dropout", f"{sign} dropout ({baseline.dropout_layers}->{proposed.dropout_layers} layers)"))
    if baseline.residual != proposed.residual:
        sign = "+" if proposed.residual > baseline.residual else "-"
        found.append(Difference("residual", f"{sign} {abs(proposed.residual - baseline.residual)} residual connections"))
    found += _kinds("pooling", baseline.pooling, proposed.pooling)
    found += _kinds("activation", baseline.activations, proposed.activations)
    if baseline.params and proposed.params and baseline.params != proposed.params:
        found.append(Difference("size", f"params x{_ratio(proposed.params, baseline.params)}"))
    return tuple(found)


def clean_ablation(found: tuple[Difference, ...]) -> Factor | None:
    """The one factor the models differ in (size aside), when there is exactly one."""
    factors = {d.factor for d in found} - {"size"}
    if len(factors) == 1:
        return next(iter(factors))
    return None


def differing_factors(baseline: Architecture, proposed: Architecture) -> frozenset[Factor]:
    return frozenset(d.factor for d in differences(baseline, proposed))


def _widest(arch: Architecture) -> int:
    return max(arch.widths, default=0)


def _kinds(factor: Factor, before: tuple[str, ...], after: tuple[str, ...], count_after: int = 0,
           count_before: int = 0) -> list[Difference]:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    parts = [f"+ {k}" for k in added] + [f"- {k}" for k in removed]
    if not parts and count_after != count_before:
        parts = [f"{count_before}->{count_after} layers"]
    elif added and count_after:
        parts[0] += f" ({count_after} layers)"
    return [Difference(factor, ", ".join(parts))] if parts else []


def _ratio(a: int, b: int) -> str:
    r = a / b
    return f"{r:.0f}" if r >= 10 else f"{r:.1f}" if r >= 1 else f"{r:.2f}"


__all__ = ["Architecture", "Difference", "FACTORS", "Factor", "clean_ablation", "differences", "differing_factors"]
