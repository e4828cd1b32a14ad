"""CIFAR-10 as uint8 tensors: find the data, decode it once, cache it, split it.

`load_cifar10(path)` accepts torchvision's cifar-10-batches-py folder or an image folder
(train/<class>/*.jpg, test/<class>/...). The first load decodes the files and writes the arrays
as .npy (never pickle) plus a JSON sidecar with a content hash into `.grader-cache/` beside the
data (or the user cache dir when the data folder is read-only); later loads read the .npy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from grader.child.config import TrainConfig
from grader.child.train import TrainingData
from grader.config import DataConfig, default_data_dir, user_cache_dir
import grader.data.formats as formats
from grader.errors import DataError

CACHE_SCHEMA = "grader.datacache/1"
CACHE_DIRNAME = ".grader-cache"
_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


@dataclass(frozen=True)
class Cifar10:
    """The whole dataset, decoded: uint8 images (N,3,32,32) and int64 labels, on the CPU."""

    train_images: torch.Tensor
    """The official training images (50,000 for the real data)."""
    train_labels: torch.Tensor
    """Labels of the training images, 0..9."""
    test_images: torch.Tensor
    """The official test images (10,000 for the real data)."""
    test_labels: torch.Tensor
    """Labels of the test images."""
    classes: tuple[str, ...]
    """Class names in label order."""
    source: str
    """The folder the images were read from."""
    format: str
    """'cifar-10-batches-py' or 'image-folder'."""
    official: bool
    """True only for torchvision's cifar-10-batches-py files with their official md5 sums."""
    synthetic: bool
    """Written by `grader data synthetic`: not CIFAR-10 at all."""
    sha256: str
    """Hash of the decoded content (classes, images, labels); keys every cache built on it."""

    @property
    def kind(self) -> str:
        """'official' (the release, md5-checked), 'synthetic' (not CIFAR-10 at all) or 'other'
        (CIFAR-10 from elsewhere: an image folder, re-encoded files)."""
        return "official" if self.official else "synthetic" if self.synthetic else "other"

    def info(self) -> dict:
        """Counts per split and class, the hash and the provenance, JSON-safe."""
        def counts(labels: torch.Tensor) -> dict[str, int]:
            per = torch.bincount(labels, minlength=len(self.classes)).tolist()
            return dict(zip(self.classes, per))
        return {
            "source": self.source, "format": self.format, "official": self.official, "kind": self.kind,
            "sha256": self.sha256,
            "train": {"total": len(self.train_labels), "per_class": counts(self.train_labels)},
            "test": {"total": len(self.test_labels), "per_class": counts(self.test_labels)},
        }


def split_indices(n: int, config: DataConfig) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Train and validation indices, identical to the notebook's seeded `random_split`.

    random_split draws randperm(n) from a generator seeded with split_seed and cuts it in
    order, so taking the first train_size and the next val_size reproduces it exactly when
    train_size + val_size == n. A dataset smaller than asked (synthetic, a subset) keeps the
    same proportions, and the returned note says so.
    """
    train_size, val_size, note = config.train_size, config.val_size, ""
    if train_size + val_size > n:
        train_size = round(n * config.train_size / (config.train_size + config.val_size))
        val_size = n - train_size
        note = (f"dataset has {n} training images, fewer than {config.train_size}+{config.val_size}; "
                f"split {train_size}/{val_size} in the same proportions")
        if train_size < 1 or val_size < 1:
            raise DataError(f"dataset has only {n} training images; too few to split for validation, use a bigger one")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(config.split_seed))
    return perm[:train_size], perm[train_size:train_size + val_size], note


def training_data(dataset: Cifar10, config: DataConfig, budget: TrainConfig | None = None) -> TrainingData:
    """Split the official training images into train/validation as the rubric says. With `budget`, only
    what a run under it sees (`TrainingData.for_budget`'s very images): the choice is made on the indices,
    so the rest of the split is never copied (a quick budget needs 20 MB of the 150 MB a split takes)."""
    tr, va, note = split_indices(len(dataset.train_labels), config)
    te: torch.Tensor | slice = slice(None)
    if budget is not None:
        every = torch.arange(len(dataset.test_labels))
        picked = TrainingData(train_images=tr, train_labels=tr, val_images=va, val_labels=va, test_images=every,
                              test_labels=every).for_budget(budget)
        tr, va, te = picked.train_images, picked.val_images, picked.test_images  # type: ignore[assignment]
    return TrainingData(
        train_images=dataset.train_images[tr], train_labels=dataset.train_labels[tr],
        val_images=dataset.train_images[va], val_labels=dataset.train_labels[va],
        test_images=dataset.test_images[te], test_labels=dataset.test_labels[te],
        mean=config.mean, std=config.std, num_classes=len(dataset.classes),
        data_sha256=dataset.sha256, note=note,
    )


# ---- loading and caching ------------------------------------------------------------------------

def _content_hash(arrays: dict[str, np.ndarray], classes: tuple[str, ...]) -> str:
    h = hashlib.sha256(json.dumps(list(classes)).encode())
    for name in _ARRAYS:
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype}:{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _fingerprint(files: list[Path]) -> str:
    """Cheap identity of the source files (names, sizes, mtimes): a changed file means re-decode."""
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.name}|{p.parent.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _cache_dirs(root: Path) -> list[Path]:
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return [root / CACHE_DIRNAME, user_cache_dir() / "datasets" / key]


def _read_cache(folder: Path, fingerprint: str) -> tuple[dict[str, np.ndarray], dict] | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("schema") != CACHE_SCHEMA or meta.get("fingerprint") != fingerprint:
            return None
        # Mapped copy-on-write: the pages stay the file's, which the kernel can drop and read again, so a
        # process holds in memory only the images it copies out (Gradescope gives 768 MB in all).
        arrays = {n: np.load(folder / f"{n}.npy", allow_pickle=False, mmap_mode="c") for n in _ARRAYS}
    except (OSError, ValueError):
        return None
    # A cache edited or cut short behind our back is rebuilt, never trusted.
    if _content_hash(arrays, tuple(meta["classes"])) != meta.get("sha256"):
        return None
    return arrays, meta


def _write_cache(root: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    for folder in _cache_dirs(root):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name in _ARRAYS:
                tmp = folder / f"{name}.tmp.npy"
                np.save(tmp, arrays[name], allow_pickle=False)
                tmp.replace(folder / f"{name}.npy")
            (folder / "meta.json").write_text(json.dumps(meta, indent=1))
            return
        except OSError:
            continue  # read-only data folder: fall back to the user cache dir


def load_cifar10(path: str | Path | None = None, *, cache: bool = True) -> Cifar10:
    """Load CIFAR-10 from `path` (default: `default_data_dir()`), decoding it at most once."""
    root = Path(path).expanduser() if path is not None else default_data_dir()
    if not root.exists():
        raise DataError(
            f"data folder {root} does not exist; run `grader data download {root}` "
            f"or pass a cifar-10-batches-py or train/<class>/ image folder"
        )
    batches = formats.find_batches_dir(root)
    if batches is not None:
        kind, src = "cifar-10-batches-py", batches
        missing = [p.name for p in formats.batches_files(batches) if not p.is_file()]
        if missing:
            raise DataError(f"{batches} lacks {', '.join(missing)}; run `grader data download {root}` to fetch it again")
        files = formats.batches_files(batches)
    elif formats.is_image_folder(root):
        kind, src, files = "image-folder", root, formats.image_folder_files(root)
    else:
        raise DataError(
            f"{root} holds neither a cifar-10-batches-py folder nor train/ and test/ image folders; "
            f"run `grader data download {root}` or point at the folder that holds them"
        )
    fingerprint = _fingerprint(files)
    hit = next((c for d in _cache_dirs(src) if (c := _read_cache(d, fingerprint))), None) if cache else None
    if hit is None:
        raw = formats.read_batches(src) if kind == "cifar-10-batches-py" else formats.read_image_folder(src)
        arrays = dict(zip(_ARRAYS, raw[:4]))
        classes = raw[4]
        meta = {
            "schema": CACHE_SCHEMA, "fingerprint": fingerprint, "format": kind, "classes": list(classes),
            "official": kind == "cifar-10-batches-py" and formats.is_official(src),
            "synthetic": kind == "cifar-10-batches-py" and formats.is_synthetic(src),
            "sha256": _content_hash(arrays, classes),
        }
        if cache:
            _write_cache(src, arrays, meta)
    else:
        arrays, meta = hit
    t = {n: torch.from_numpy(np.ascontiguousarray(a)) for n, a in arrays.items()}
    return Cifar10(
        train_images=t["train_images"], train_labels=t["train_labels"],
        test_images=t["test_images"], test_labels=t["test_labels"],
        classes=tuple(meta["classes"]), source=str(src), format=meta["format"],
        official=bool(meta["official"]), synthetic=bool(meta.get("synthetic")), sha256=meta["sha256"],
    )


__all__ = ["Cifar10", "load_cifar10", "split_indices", "training_data"]
