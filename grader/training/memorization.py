"""The memorization probe: what a training child is shown of the validation and test images, and
what the grader concludes from the clean and the perturbed test images.

CIFAR-10's 60,000 images are public, so a model can carry a table of them (a hash of each image
-> its label) and answer from it rather than from what it learned: 100% test accuracy whatever it
learned. Each training child is therefore shown its validation and test images in a secret order,
some of them perturbed: shifted by up to MAX_SHIFT pixels (reflection fills the edge) with up to
NOISE levels of noise on each value, a change a CNN barely notices (BENCHMARKS.md) but that no
stored hash or pixel value survives. The order, which images are perturbed and the labels stay in
the parent's memory. The draw comes from a key of the grader's (`draw_key`: made with `secrets`,
kept in its private state folder, never shown to a child) and the submission's code: a child can
compute none of it, the same submission is shown the same images whenever it is graded (its grade
is reproducible), and any change to its code draws anew.

- Every validation image is perturbed: validation only chooses an epoch and shows learning, so
  the perturbation costs its numbers nothing, and a table of the public training images (which
  the validation split is cut from) recognizes none of them.
- A secret half of the test images is perturbed (TEST_SHARE). The test accuracy is scored over
  all of them, and the clean and the perturbed half apart: a model whose clean accuracy beats its
  perturbed accuracy by far more than the references' does (`judge`) is flagged as memorizing the
  test set and scored on the perturbed half alone.

Disjoint halves, not a perturbed copy of every test image beside its original: the child can read
every image it is shown before it answers, so a copy next to its original would be found (its
nearest neighbour) and answered with the original's stored label. Without originals there is
nothing to match; what is left is a model that carries the test images themselves and looks up
near duplicates, which no perturbation a CNN tolerates can stop.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
import stat
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:  # numpy is imported where it is used: the static check reads this module without it
    import numpy as np

MAX_SHIFT = 2
"""Pixels an image may move each way, rows and columns drawn apart (0 included)."""
NOISE = 2
"""Levels (of 255) each value may move up or down."""
TEST_SHARE = 0.5
"""The share of the test images a child is shown perturbed."""
SHARES = {"val": 1.0, "test": TEST_SHARE}
"""Each split's share of perturbed images."""
REFERENCE_SEED = 0
"""The references' draw: cached results need a fixed one; nothing about them is secret."""
Z = 4.0
"""Standard deviations of the gap's binomial noise a model may exceed the references' gap by."""
MIN_MARGIN = 0.05
"""...and never less than this: a model may be somewhat more sensitive to a shift than the references."""


def perturb(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 images (N, C, H, W), each shifted by its own draw of up to MAX_SHIFT pixels down or up
    and left or right (reflection fills the edge), with up to NOISE levels of noise on each value."""
    import numpy as np

    n, _, h, w = images.shape
    if n == 0:
        return images.copy()
    m = MAX_SHIFT
    padded = np.pad(images, ((0, 0), (0, 0), (m, m), (m, m)), mode="reflect")
    dy, dx = rng.integers(0, 2 * m + 1, (2, n))
    shifted = np.empty_like(images)
    for y in range(2 * m + 1):  # one slice per shift: far faster than a gather per pixel
        for x in range(2 * m + 1):
            moved = (dy == y) & (dx == x)
            shifted[moved] = padded[moved, :, y:y + h, x:x + w]
    noise = rng.integers(-NOISE, NOISE + 1, shifted.shape, dtype=np.int16)
    return np.clip(shifted.astype(np.int16) + noise, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Shown:
    """One split as a training child is shown it. Only `images` leaves the parent."""

    images: np.ndarray
    """uint8 (N, 3, 32, 32) in the secret order, the perturbed ones in place."""
    labels: np.ndarray
    """The labels in the shown order."""
    perturbed: np.ndarray
    """bool (N,): which shown images are perturbed."""

    def first(self, n: int) -> "Shown":
        """The first `n` images as shown (the order is already the secret draw's)."""
        return Shown(self.images[:n], self.labels[:n], self.perturbed[:n])


def show(images: np.ndarray, labels: np.ndarray, share: float, rng: np.random.Generator) -> Shown:
    """`images` in an order drawn from `rng`, a `share` of them (drawn too) perturbed."""
    import numpy as np

    n = len(labels)
    order = rng.permutation(n)
    perturbed = np.zeros(n, dtype=bool)
    perturbed[rng.permutation(n)[:round(share * n)]] = True
    shown = np.ascontiguousarray(images[order])
    shown[perturbed] = perturb(shown[perturbed], rng)
    return Shown(shown, np.asarray(labels)[order], perturbed)


def show_splits(images: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
                rng: np.random.Generator) -> dict[str, Shown]:
    """'val' and 'test' as a child is shown them, each with its SHARES of perturbed images."""
    return {split: show(images[split], labels[split], SHARES[split], rng) for split in SHARES}


KEY_BYTES = 32


def draw_key() -> bytes:
    """The grader's key for the draws: made once (`secrets`) in its private state folder (0600)."""
    from grader.sandbox.state import state_dir

    path = state_dir() / "draw.key"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            if stat.S_ISREG(os.fstat(f.fileno()).st_mode) and len(key := f.read(KEY_BYTES + 1)) == KEY_BYTES:
                return key
    except OSError:
        pass
    key = secrets.token_bytes(KEY_BYTES)
    tmp = path.with_name(f".draw.key.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    os.replace(tmp, path)  # a missing or damaged key is replaced whole
    return key


def draw_rng(key: bytes, *identity: str) -> np.random.Generator:
    """The generator of the draw for `identity` (the data, the submission's code) under `key`; without
    a key, a fresh secret draw."""
    import numpy as np

    if not key:
        return np.random.default_rng(secrets.randbits(128))
    digest = hmac.new(key, "\0".join(identity).encode(), hashlib.sha256).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


@dataclass(frozen=True)
class Memorization:
    """The selected epoch's accuracy on the clean and on the perturbed test images, and the verdict."""

    clean_accuracy: float
    """On the test images as published, 0..1."""
    perturbed_accuracy: float
    """On the perturbed test images, 0..1."""
    clean_images: int
    perturbed_images: int
    reference_gap: float | None = None
    """The largest clean-minus-perturbed gap among the references (never below 0); None: not judged
    (a reference's own record)."""
    threshold: float | None = None
    """The gap beyond which the model is flagged: reference_gap plus the margin for these image counts."""
    flagged: bool = False
    """The gap is beyond the threshold: the model is taken to have memorized the test set and is scored
    on the perturbed images alone."""

    @property
    def gap(self) -> float:
        """Clean minus perturbed accuracy, a fraction (0.9 is 90 points)."""
        return self.clean_accuracy - self.perturbed_accuracy


def probe(logits: np.ndarray, labels: np.ndarray, perturbed: np.ndarray) -> Memorization | None:
    """The clean and the perturbed accuracy of one epoch's test logits (in the shown order); None
    when either part has no image (a plan that scores few images may leave one empty)."""
    right = logits.argmax(axis=1) == labels
    clean, shifted = right[~perturbed], right[perturbed]
    if not (len(clean) and len(shifted)):
        return None
    return Memorization(float(clean.mean()), float(shifted.mean()), len(clean), len(shifted))


def judge(found: Memorization, references: Iterable[Memorization | None]) -> Memorization:
    """`found` with its verdict: flagged when its gap exceeds the references' largest by more than
    Z standard deviations of the gap's binomial noise at its largest (accuracy 1/2 on both parts),
    and by at least MIN_MARGIN."""
    reference_gap = max([0.0, *(r.gap for r in references if r is not None)])
    noise = 0.5 * math.sqrt(1 / found.clean_images + 1 / found.perturbed_images)
    threshold = reference_gap + max(MIN_MARGIN, Z * noise)
    return replace(found, reference_gap=round(reference_gap, 6), threshold=round(threshold, 6),
                   flagged=found.gap > threshold)


def memorizing_flag(name: str, found: Memorization) -> str:
    """The instructor's line on a flagged model."""
    return (f"{name} may have memorized the public test set: {found.clean_accuracy:.1%} on the test images as "
            f"published but {found.perturbed_accuracy:.1%} on test images shifted by up to {MAX_SHIFT} pixels "
            f"({found.clean_images:,} and {found.perturbed_images:,} images), a gap of {found.gap * 100:.1f} points "
            f"where the references lose at most {(found.reference_gap or 0) * 100:.1f} (flagged beyond "
            f"{(found.threshold or 0) * 100:.1f}); its test accuracy is scored on the perturbed images only")


__all__ = ["MAX_SHIFT", "NOISE", "SHARES", "TEST_SHARE", "Memorization", "Shown", "draw_key", "draw_rng", "judge",
           "memorizing_flag", "perturb", "probe", "show", "show_splits"]
