import gzip
import struct

import numpy as np
import pytest
import torch

from bnnctl.config import DataConfig
from bnnctl.data import (
    Split,
    iterate_batches,
    load_arrays,
    load_dataset,
    load_idx_folder,
    read_idx,
    scale_pixels,
    split_validation,
)
from bnnctl.errors import ConfigError, DataError


def _write_idx(path, array, compress):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def _fake_idx_folder(folder, compress, n_train=30, n_test=10):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        _write_idx(folder / f"{split}-images-idx3-ubyte", images, compress)
        _write_idx(folder / f"{split}-labels-idx1-ubyte", labels, compress)
        arrays[split] = (images, labels)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_idx_reader_plain_and_gzipped(tmp_path, compress):
    expected = _fake_idx_folder(tmp_path, compress)
    arrays = load_idx_folder(tmp_path)
    assert np.array_equal(arrays["train"][0], expected["train"][0])
    assert np.array_equal(arrays["test"][1], expected["t10k"][1])


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    _fake_idx_folder(tmp_path, compress=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_a_flat_debian_style_folder_under_the_root_is_found(tmp_path):
    _fake_idx_folder(tmp_path / "fashion_mnist", compress=True)
    arrays, source = load_arrays("fashion_mnist", tmp_path, download=False)
    assert arrays["train"][0].shape == (30, 28, 28) and source == str(tmp_path / "fashion_mnist")


def test_missing_dataset_offline_is_one_line_naming_dataset_folders_and_remedy(tmp_path):
    with pytest.raises(DataError) as info:
        load_arrays("mnist", tmp_path, download=False)
    message = str(info.value)
    assert "\n" not in message
    assert "'mnist' not found in" in message and str(tmp_path) in message
    assert "download disabled" in message and "BNNCTL_DATA" in message


def test_missing_fashion_mnist_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr("bnnctl.data.sources.DEBIAN_FOLDERS", {"fashion_mnist": [str(tmp_path / "nowhere")]})
    with pytest.raises(DataError, match=r"apt-get install dataset-fashion-mnist.*/usr/share/datasets/fashion-mnist"):
        load_arrays("fashion_mnist", tmp_path, download=False)


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset 'svhn'"):
        load_arrays("svhn", tmp_path, download=False)


def test_pixels_are_scaled_to_minus_one_one_or_zero_one_in_nchw():
    images = np.array([[[0, 255], [51, 204]]], dtype=np.uint8)
    x = scale_pixels(images)
    assert x.shape == (1, 1, 2, 2)
    assert x[0, 0, 0].tolist() == [-1.0, 1.0]
    assert scale_pixels(images, "positive")[0, 0].flatten().tolist() == pytest.approx([0.0, 1.0, 0.2, 0.8])
    rgb = scale_pixels(np.zeros((2, 4, 4, 3), dtype=np.uint8))
    assert rgb.shape == (2, 3, 4, 4)
    with pytest.raises(ConfigError, match="pixel_range"):
        scale_pixels(images, "centered")


def test_validation_is_the_last_examples_of_the_training_set():
    split = Split(torch.arange(10.0).view(10, 1), torch.arange(10))
    train, val = split_validation(split, 3)
    assert train.y.tolist() == list(range(7)) and val.y.tolist() == [7, 8, 9]
    assert split_validation(split, 0) == (split, None)
    with pytest.raises(ConfigError):
        split_validation(split, 10)


def test_synthetic_dataset_is_deterministic_and_in_range():
    cfg = DataConfig(name="synthetic", val_size=100, synthetic_train=600, synthetic_test=200)
    a, b = load_dataset(cfg), load_dataset(cfg)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert (len(a.train), len(a.val), len(a.test)) == (500, 100, 200)
    assert a.input_shape == (1, 28, 28) and a.num_classes == 10
    assert a.train.x.min() >= -1 and a.train.x.max() <= 1


def test_batches_cover_the_split_and_drop_only_an_incomplete_last_batch():
    split = Split(torch.arange(10.0).view(10, 1), torch.arange(10))
    sizes = [len(y) for _, y in iterate_batches(split, 4)]
    assert sizes == [4, 4, 2]
    g = torch.Generator().manual_seed(0)
    seen = torch.cat([y for _, y in iterate_batches(split, 4, shuffle=True, generator=g, drop_last=True)])
    assert len(seen) == 8 and len(set(seen.tolist())) == 8
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    first = [y.tolist() for _, y in iterate_batches(split, 3, shuffle=True, generator=g1)]
    second = [y.tolist() for _, y in iterate_batches(split, 3, shuffle=True, generator=g2)]
    assert first == second


@pytest.mark.slow
def test_real_fashion_mnist_loads_as_tensors_with_the_papers_split(fashion):
    data = load_dataset(DataConfig(name="fashion_mnist", root=fashion, download=False, val_size=10000))
    assert (len(data.train), len(data.val), len(data.test)) == (50000, 10000, 10000)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert data.train.x.min() == -1 and data.train.x.max() == 1
    counts = torch.bincount(data.test.y, minlength=10)
    assert counts.tolist() == [1000] * 10  # Fashion-MNIST's test set is balanced
