"""Reading CIFAR-10 from disk: torchvision's `cifar-10-batches-py` folder and image folders.

Both readers return plain numpy arrays (uint8 images (N,3,32,32), int64 labels) and never import
torch, so decoding stays cheap and testable. Every problem a user can cause (a missing file, a
truncated pickle, nine class folders) becomes a one-line `DataError` that says what to do.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from grader.errors import DataError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
"""CIFAR-10's class names in the official label order."""

BATCHES_DIR = "cifar-10-batches-py"
# The official files and their md5 sums, exactly as torchvision.datasets.CIFAR10 checks them.
TRAIN_FILES = (
    ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
    ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
    ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
    ("data_batch_4", "634d18415352ddfa80567beed471001a"),
    ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
)
TEST_FILES = (("test_batch", "40351d587109b95175f43aff81a1287e"),)
META_FILE = ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]
"""train images, train labels, test images, test labels, class names."""

REDOWNLOAD = "run `grader data download DIR` to fetch a fresh copy"


# ---- torchvision's cifar-10-batches-py ---------------------------------------------------------

class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR batch files hold (dicts, lists, numpy arrays), nothing callable.

    The batch format is a pickle, and a pickle can run code; a data folder from the internet
    should not be able to, so every global other than numpy's array rebuilders is refused.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} is missing; the folder is incomplete, {REDOWNLOAD}") from None
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except Exception as e:  # any unpickling failure means the file is not a CIFAR batch
        raise DataError(f"{path} is corrupt or truncated ({type(e).__name__}); {REDOWNLOAD}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path} is not a CIFAR-10 batch file; {REDOWNLOAD}")
    # Python 2 pickles may carry bytes keys; normalise to str.
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _read_batch(path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    entry = _unpickle(path)
    data, labels = entry.get("data"), entry.get("labels", entry.get("fine_labels"))
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataError(f"{path} has no 'data' array or 'labels' list; {REDOWNLOAD}")
    labels_arr = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels_arr):
        raise DataError(
            f"{path} holds data of shape {data.shape} ({data.dtype}) for {len(labels_arr)} labels; "
            f"expected uint8 (N, 3072); {REDOWNLOAD}"
        )
    if len(labels_arr) and (labels_arr.min() < 0 or labels_arr.max() >= n_classes):
        raise DataError(f"{path} has labels outside 0..{n_classes - 1}; {REDOWNLOAD}")
    return data.reshape(-1, 3, 32, 32), labels_arr


def find_batches_dir(root: Path) -> Path | None:
    """The cifar-10-batches-py folder at or directly under `root`, or None."""
    for cand in (root / BATCHES_DIR, root):
        if (cand / META_FILE[0]).is_file() or (cand / TRAIN_FILES[0][0]).is_file():
            return cand
    return None


def read_batches(folder: Path) -> Arrays:
    """Decode a cifar-10-batches-py folder (official or not) into arrays."""
    meta = _unpickle(folder / META_FILE[0])
    names = tuple(str(n) for n in meta.get("label_names", ()))
    if len(names) != len(CLASSES):
        raise DataError(
            f"{folder / META_FILE[0]} names {len(names)} classes; CIFAR-10 has 10. "
            f"Point --data at a CIFAR-10 folder (CIFAR-100 is not supported)"
        )
    parts = [_read_batch(folder / name, len(names)) for name, _ in TRAIN_FILES]
    test_x, test_y = _read_batch(folder / TEST_FILES[0][0], len(names))
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    return train_x, train_y, test_x, test_y, names


def is_synthetic(folder: Path) -> bool:
    """True for a folder `grader data synthetic` wrote (its batches.meta says so)."""
    try:
        return bool(_unpickle(folder / META_FILE[0]).get("synthetic"))
    except (DataError, OSError):
        return False


def is_official(folder: Path) -> bool:
    """True when every file matches the md5 torchvision checks (the official release)."""
    for name, md5 in (*TRAIN_FILES, *TEST_FILES, META_FILE):
        h = hashlib.md5()
        with open(folder / name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != md5:
            return False
    return True


def batches_files(folder: Path) -> list[Path]:
    return [folder / n for n, _ in (*TRAIN_FILES, *TEST_FILES, META_FILE)]


# ---- image folders: train/<class>/*.png|jpg and test/<class>/... -------------------------------

def is_image_folder(root: Path) -> bool:
    return (root / "train").is_dir() and (root / "test").is_dir()


def image_files(root: Path) -> dict[str, dict[str, list[Path]]]:
    """split -> class -> sorted image paths; checks there are exactly CIFAR-10's 10 classes."""
    out: dict[str, dict[str, list[Path]]] = {}
    for split in ("train", "test"):
        classes = sorted(p.name for p in (root / split).iterdir() if p.is_dir())
        if len(classes) != len(CLASSES):
            raise DataError(
                f"{root / split} has {len(classes)} class folders; CIFAR-10 needs 10 "
                f"({', '.join(CLASSES)}), one folder per class"
            )
        out[split] = {
            c: sorted(p for p in (root / split / c).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            for c in classes
        }
    if sorted(out["train"]) != sorted(out["test"]):
        raise DataError(f"{root}/train and {root}/test have different class folders; give both the same 10 classes")
    return out


def class_order(names: list[str]) -> tuple[str, ...]:
    """CIFAR-10's label order when the folders carry its class names, else sorted (as ImageFolder)."""
    return CLASSES if set(n.lower() for n in names) == set(CLASSES) else tuple(sorted(names))


def read_image_folder(root: Path) -> Arrays:
    """Decode every image of an image-folder dataset into arrays (32x32 RGB each)."""
    from PIL import Image, UnidentifiedImageError

    files = image_files(root)
    classes = class_order(list(files["train"]))
    lookup = {c.lower(): i for i, c in enumerate(classes)}
    result: list[np.ndarray] = []
    for split in ("train", "test"):
        paths = [(p, lookup[c.lower()]) for c, ps in files[split].items() for p in ps]
        if not paths:
            raise DataError(f"{root / split} holds no .png or .jpg images; extract the dataset there")
        images = np.empty((len(paths), 32, 32, 3), dtype=np.uint8)
        for i, (p, _) in enumerate(paths):
            try:
                with Image.open(p) as im:
                    im.load()  # decode now: a truncated file fails here, not later in training
                    if im.size != (32, 32):
                        raise DataError(f"{p} is {im.size[0]}x{im.size[1]}; CIFAR-10 images are 32x32, resize or remove it")
                    images[i] = np.asarray(im.convert("RGB"))
            except (OSError, UnidentifiedImageError, SyntaxError) as e:
                raise DataError(f"{p} is corrupt or truncated ({e}); replace it or extract the dataset again") from None
        result += [images.transpose(0, 3, 1, 2).copy(), np.array([y for _, y in paths], dtype=np.int64)]
    return result[0], result[1], result[2], result[3], classes


def image_folder_files(root: Path) -> list[Path]:
    files = image_files(root)
    return [p for split in ("train", "test") for ps in files[split].values() for p in ps]


__all__ = [
    "BATCHES_DIR", "CLASSES", "META_FILE", "TEST_FILES", "TRAIN_FILES", "batches_files", "class_order",
    "find_batches_dir", "image_folder_files", "is_image_folder", "is_official", "is_synthetic", "read_batches",
    "read_image_folder",
]
