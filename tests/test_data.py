"""grader.data: the two on-disk formats, the cache, the split, the synthetic writer, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from grader.cli import cli
from grader.config import DataConfig
from grader.data import CLASSES, load_cifar10, split_indices, training_data, write_synthetic
from grader.data.download import download_cifar10
from grader.errors import DataError


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic(root, train=500, test=100)
    return root


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".grader-cache"))
    return dst


def _image_folder(ds, root: Path, n: int = 5, suffix: str = "png") -> Path:
    from PIL import Image

    for split, images, labels in (("train", ds.train_images, ds.train_labels), ("test", ds.test_images, ds.test_labels)):
        for c in CLASSES:
            (root / split / c).mkdir(parents=True, exist_ok=True)
        for i in range(n * len(CLASSES)):
            img = images[i].permute(1, 2, 0).numpy()
            Image.fromarray(img).save(root / split / CLASSES[int(labels[i])] / f"{i:04d}.{suffix}")
    return root


# ---- cifar-10-batches-py --------------------------------------------------------------------------

def test_synthetic_reads_back_as_uint8_tensors(synthetic):
    ds = load_cifar10(synthetic)
    assert ds.train_images.shape == (500, 3, 32, 32) and ds.train_images.dtype == torch.uint8
    assert ds.test_images.shape == (100, 3, 32, 32)
    assert ds.train_labels.dtype == torch.int64 and set(ds.train_labels.tolist()) == set(range(10))
    assert ds.classes == CLASSES and ds.format == "cifar-10-batches-py"
    assert not ds.official  # same format, not the md5-checked release


def test_synthetic_is_what_torchvision_reads(synthetic, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    # torchvision refuses non-official md5 sums; its reader, not its check, is what we compare with
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    tv = tv_cifar.CIFAR10(str(synthetic), train=True)
    ds = load_cifar10(synthetic)
    assert np.array_equal(tv.data, ds.train_images.permute(0, 2, 3, 1).numpy())
    assert tv.targets == ds.train_labels.tolist() and tv.classes == list(CLASSES)


def test_cache_is_npy_and_json_with_hash(tmp_path, synthetic):
    root = _copy(synthetic, tmp_path)
    first = load_cifar10(root)
    cache = root / "cifar-10-batches-py" / ".grader-cache"
    meta = json.loads((cache / "meta.json").read_text())
    assert meta["sha256"] == first.sha256 and meta["official"] is False
    assert sorted(p.name for p in cache.iterdir()) == [
        "meta.json", "test_images.npy", "test_labels.npy", "train_images.npy", "train_labels.npy"]


def test_changed_source_file_is_decoded_again(tmp_path, synthetic):
    root = _copy(synthetic, tmp_path)
    load_cifar10(root)
    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"")  # new size: the cache is stale
    with pytest.raises(DataError, match="data_batch_1 is corrupt or truncated"):
        load_cifar10(root)


def test_second_load_comes_from_cache(tmp_path, synthetic, monkeypatch):
    root = _copy(synthetic, tmp_path)
    first = load_cifar10(root)
    import grader.data.formats as formats

    monkeypatch.setattr(formats, "read_batches", lambda _: pytest.fail("decoded again despite a valid cache"))
    second = load_cifar10(root)
    assert second.sha256 == first.sha256 and torch.equal(second.train_images, first.train_images)


def test_tampered_cache_is_rebuilt(tmp_path, synthetic):
    root = _copy(synthetic, tmp_path)
    first = load_cifar10(root)
    cache = root / "cifar-10-batches-py" / ".grader-cache"
    arr = np.load(cache / "train_labels.npy")
    np.save(cache / "train_labels.npy", (arr + 1) % 10)
    assert torch.equal(load_cifar10(root).train_labels, first.train_labels)


def test_content_hash_is_stable_and_content_sensitive(tmp_path):
    a = load_cifar10(write_synthetic(tmp_path / "a", train=100, test=20, seed=1).parent, cache=False)
    b = load_cifar10(write_synthetic(tmp_path / "b", train=100, test=20, seed=1).parent, cache=False)
    c = load_cifar10(write_synthetic(tmp_path / "c", train=100, test=20, seed=2).parent, cache=False)
    assert a.sha256 == b.sha256 != c.sha256


def test_missing_folder_says_how_to_get_data(tmp_path):
    with pytest.raises(DataError, match=r"does not exist; run `grader data download .*nope`"):
        load_cifar10(tmp_path / "nope")


def test_folder_without_data_says_what_it_expects(tmp_path):
    with pytest.raises(DataError, match="holds neither a cifar-10-batches-py folder nor train/ and test/"):
        load_cifar10(tmp_path)


def test_missing_batch_file(tmp_path, synthetic):
    root = _copy(synthetic, tmp_path)
    (root / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataError, match="lacks test_batch; run `grader data download"):
        load_cifar10(root)


def test_truncated_batch_file(tmp_path, synthetic):
    root = _copy(synthetic, tmp_path)
    f = root / "cifar-10-batches-py" / "data_batch_3"
    f.write_bytes(f.read_bytes()[:5000])
    with pytest.raises(DataError, match="data_batch_3 is corrupt or truncated .*grader data download"):
        load_cifar10(root)


def test_batch_file_that_would_run_code_is_refused(tmp_path, synthetic):
    import pickle

    root = _copy(synthetic, tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (root / "cifar-10-batches-py" / "data_batch_2").write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(DataError, match="data_batch_2 is corrupt or truncated"):
        load_cifar10(root)


def test_wrong_number_of_classes_in_meta(tmp_path, synthetic):
    import pickle

    root = _copy(synthetic, tmp_path)
    meta = root / "cifar-10-batches-py" / "batches.meta"
    meta.write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(100)]}, protocol=2))
    with pytest.raises(DataError, match="names 100 classes; CIFAR-10 has 10"):
        load_cifar10(root)


# ---- image folders --------------------------------------------------------------------------------

def test_image_folder_png_is_lossless(tmp_path, synthetic):
    ds = load_cifar10(synthetic)
    root = _image_folder(ds, tmp_path / "imgs", n=3)
    got = load_cifar10(root)
    assert got.format == "image-folder" and not got.official and got.classes == CLASSES
    assert got.train_images.shape == (30, 3, 32, 32) and got.test_images.shape == (30, 3, 32, 32)
    # files are sorted per class; compare as a multiset of (label, image)
    key = lambda imgs, ys: sorted((int(y), imgs[i].numpy().tobytes()) for i, y in enumerate(ys))  # noqa: E731
    assert key(got.train_images, got.train_labels) == key(ds.train_images[:30], ds.train_labels[:30])


def test_image_folder_wrong_number_of_classes(tmp_path, synthetic):
    root = _image_folder(load_cifar10(synthetic), tmp_path / "imgs", n=1)
    shutil.rmtree(root / "train" / "truck")
    with pytest.raises(DataError, match=r"train has 9 class folders; CIFAR-10 needs 10"):
        load_cifar10(root)


def test_image_folder_truncated_jpeg(tmp_path, synthetic):
    root = _image_folder(load_cifar10(synthetic), tmp_path / "imgs", n=1, suffix="jpg")
    victim = sorted((root / "test" / "cat").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(DataError, match=r"cat/.*\.jpg is corrupt or truncated .*replace it or extract the dataset again"):
        load_cifar10(root)


def test_image_folder_wrong_size(tmp_path, synthetic):
    from PIL import Image

    root = _image_folder(load_cifar10(synthetic), tmp_path / "imgs", n=1)
    Image.new("RGB", (64, 64)).save(root / "train" / "dog" / "big.png")
    with pytest.raises(DataError, match="is 64x64; CIFAR-10 images are 32x32"):
        load_cifar10(root)


# ---- the split --------------------------------------------------------------------------------------

def test_split_matches_the_notebooks_random_split():
    n = 2_000
    expected = torch.utils.data.random_split(range(n), [1_600, 400], generator=torch.Generator().manual_seed(5))
    tr, va, note = split_indices(n, DataConfig(train_size=1_600, val_size=400, split_seed=5))
    assert tr.tolist() == list(expected[0].indices) and va.tolist() == list(expected[1].indices) and note == ""


def test_small_dataset_keeps_the_rubric_proportions(synthetic):
    td = training_data(load_cifar10(synthetic), DataConfig())  # the rubric's 40,000/10,000 on 500 images
    assert len(td.train_labels) == 400 and len(td.val_labels) == 100
    assert "same proportions" in td.note and td.mean == (0.5, 0.5, 0.5)
    stripped = td.without_labels()
    assert stripped.val_labels is None and stripped.test_labels is None and stripped.train_labels is td.train_labels


# ---- download (no network: the fetch is replaced) ---------------------------------------------------

def test_download_corrupt_archive_says_to_retry(tmp_path):
    def fake_fetch(url, dest, progress):
        dest.write_bytes(b"not a tarball")
        progress(13, 13)

    with pytest.raises(DataError, match="is corrupt \\(md5 mismatch\\); run the command again"):
        download_cifar10(tmp_path, show_progress=False, fetch=fake_fetch)
    assert not (tmp_path / "cifar-10-python.tar.gz").exists()


def test_download_network_error_is_one_line(tmp_path):
    def offline(url, dest, progress):
        raise OSError("Network is unreachable")

    with pytest.raises(DataError, match="could not download .*Network is unreachable.*copy"):
        download_cifar10(tmp_path, show_progress=False, fetch=offline)


# ---- CLI --------------------------------------------------------------------------------------------

def test_cli_synthetic_then_info(tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["data", "synthetic", str(tmp_path), "--train", "50", "--test", "10"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["data", "info", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "NOT the official release" in r.output and "sha256 " in r.output
    assert r.output.splitlines()[-1].split() == ["total", "50", "10"]
    r = runner.invoke(cli, ["data", "info", str(tmp_path), "--json"])
    assert json.loads(r.output)["train"]["total"] == 50


def test_cli_data_error_is_one_line_exit_2(tmp_path):
    r = CliRunner().invoke(cli, ["data", "info", str(tmp_path / "missing")])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and r.output.startswith("error: data folder") and "Traceback" not in r.output


def test_default_location_is_grader_data(tmp_path, monkeypatch):
    from grader.config import default_data_dir

    monkeypatch.setenv("GRADER_DATA", str(tmp_path / "d"))
    assert default_data_dir() == tmp_path / "d"
    monkeypatch.delenv("GRADER_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert default_data_dir() == tmp_path / "c" / "cnn-grader" / "data"
