"""`grader data download`: fetch the official CIFAR-10 through torchvision's release and checks.

The URL, archive md5 and extraction are torchvision's (datasets.CIFAR10 and datasets.utils);
only the progress bar is ours (rich), since torchvision's needs tqdm.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Callable

import grader.data.formats as formats
from grader.errors import DataError

Fetch = Callable[[str, Path, Callable[[int, int], None]], None]
"""fetch(url, dest, progress(done_bytes, total_bytes)); replaceable in tests (no network)."""


def _fetch_url(url: str, dest: Path, progress: Callable[[int, int], None]) -> None:
    with urllib.request.urlopen(url, timeout=60) as r, open(dest, "wb") as f:
        total, done = int(r.headers.get("Content-Length") or 0), 0
        while chunk := r.read(1 << 16):
            f.write(chunk)
            done += len(chunk)
            progress(done, total)


def download_cifar10(directory: str | Path, *, show_progress: bool = True, fetch: Fetch = _fetch_url) -> Path:
    """Download and extract the official CIFAR-10 into `directory`; return its batches folder."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity, extract_archive

    root = Path(directory).expanduser()
    folder = root / formats.BATCHES_DIR
    if all(p.is_file() for p in formats.batches_files(folder)) and formats.is_official(folder):
        return folder  # already there and intact
    root.mkdir(parents=True, exist_ok=True)
    archive = root / CIFAR10.filename
    if not check_integrity(str(archive), CIFAR10.tgz_md5):
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), disable=not show_progress) as bar:
            task = bar.add_task(f"CIFAR-10 -> {archive}", total=None)
            try:
                fetch(CIFAR10.url, archive, lambda done, total: bar.update(task, completed=done, total=total or None))
            except OSError as e:
                raise DataError(
                    f"could not download {CIFAR10.url} ({e}); check the network, or copy "
                    f"cifar-10-python.tar.gz into {root} and run the command again"
                ) from None
        if not check_integrity(str(archive), CIFAR10.tgz_md5):
            archive.unlink(missing_ok=True)
            raise DataError(f"the download of {CIFAR10.url} is corrupt (md5 mismatch); run the command again")
    extract_archive(str(archive), str(root))
    return folder


__all__ = ["download_cifar10"]
