"""Datasets as tensors: loaded once, scaled, kept on the training device.

Small image datasets fit in memory many times over, so instead of a DataLoader
with worker processes we hold each split as one tensor and batch by indexing:
no per-sample Python, no copies between processes, and the same code on a GPU.

Pixels are scaled to [-1, 1] (``data.pixel_range=symmetric``), [0, 1]
(``positive``) or standardised with MNIST's mean and std (``normalized``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

from bnnctl.data.sources import NUM_CLASSES, TORCHVISION_NAMES, load_arrays, resolve_root
from bnnctl.errors import ConfigError

if TYPE_CHECKING:
    from bnnctl.config.schema import DataConfig

DATASETS = (*TORCHVISION_NAMES, "synthetic")


@dataclass
class Split:
    """Inputs in [-1, 1] (N, C, H, W) and integer labels (N,), on one device."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split | None
    test: Split
    num_classes: int
    source: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])


# torchvision's Normalize((0.1307,), (0.3081,)) after ToTensor: MNIST's pixel mean and std, which the
# ablation report's code applies (to MNIST; on Fashion-MNIST its code would apply the same constants).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
PIXEL_BOUNDS = {
    "symmetric": (-1.0, 1.0),
    "positive": (0.0, 1.0),
    "normalized": (-MNIST_MEAN / MNIST_STD, (1 - MNIST_MEAN) / MNIST_STD),
}
PIXEL_RANGES = tuple(PIXEL_BOUNDS)


def scale_pixels(images: np.ndarray, pixel_range: str = "symmetric") -> torch.Tensor:
    """uint8 images (N, H, W) or (N, H, W, C) -> float32 (N, C, H, W).

    ``symmetric`` maps to [-1, 1] as the BNN code does; ``positive`` maps to [0, 1]
    as torchvision's ToTensor does. The choice matters for a binary first layer
    without batch norm: at -1 the background pixels add a large input-independent
    term to sign(W) x, which can drown what the foreground contributes.
    """
    x = torch.from_numpy(np.ascontiguousarray(images))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    if pixel_range == "symmetric":
        return x.float().div_(127.5).sub_(1.0).contiguous()
    if pixel_range in ("positive", "normalized"):
        return from_unit_range(x.float().div_(255.0), pixel_range).contiguous()
    raise ConfigError(f"data.pixel_range must be one of {', '.join(PIXEL_RANGES)}, got {pixel_range!r}")


def from_unit_range(x: torch.Tensor, pixel_range: str) -> torch.Tensor:
    """Values in [0, 1] -> ``positive`` (unchanged) or ``normalized`` ((x - mean) / std, in place)."""
    return x if pixel_range == "positive" else x.sub_(MNIST_MEAN).div_(MNIST_STD)


def split_validation(train: Split, val_size: int) -> tuple[Split, Split | None]:
    """The last ``val_size`` training examples become the validation set (the BNN code's split)."""
    if val_size == 0:
        return train, None
    if not 0 < val_size < len(train):
        raise ConfigError(f"data.val_size must be in [0, {len(train) - 1}], got {val_size}")
    cut = len(train) - val_size
    return Split(train.x[:cut], train.y[:cut]), Split(train.x[cut:], train.y[cut:])


def make_synthetic(cfg: DataConfig) -> dict[str, Split]:
    """Noisy copies of one random +-1 prototype per class: learnable in seconds, by binary nets too.

    Values lie in [-1, 1] (``pixel_range=symmetric``) or are mapped to [0, 1] (``positive``, then ``normalized``).
    """
    g = torch.Generator().manual_seed(cfg.synthetic_seed)
    shape = tuple(cfg.synthetic_shape)
    prototypes = torch.randint(0, 2, (cfg.num_classes, *shape), generator=g).float() * 2 - 1
    splits = {}
    for split, n in (("train", cfg.synthetic_train), ("test", cfg.synthetic_test)):
        y = torch.randint(0, cfg.num_classes, (n,), generator=g)
        noise = torch.randn((n, *shape), generator=g) * cfg.synthetic_noise
        x = (prototypes[y] * 0.5 + noise).clamp(-1, 1)
        splits[split] = Split(x if cfg.pixel_range == "symmetric" else from_unit_range((x + 1) / 2, cfg.pixel_range), y)
    return splits


def prepare_dataset(cfg: DataConfig) -> str:
    """Find (or download) the real dataset ``cfg`` names and check its files; returns where it is.

    A grid calls this once before its workers start: a missing or damaged
    dataset is then one line, not one failed cell per run, and parallel
    workers never download into the same folder at once.
    """
    if cfg.name == "synthetic":
        return "synthetic"
    return load_arrays(cfg.name, resolve_root(cfg.root), cfg.download)[1]


def load_dataset(cfg: DataConfig, device: torch.device | str = "cpu") -> Dataset:
    """The dataset ``cfg`` names, as tensors on ``device`` with its validation split."""
    if cfg.name == "synthetic":
        splits, source, num_classes = make_synthetic(cfg), "synthetic", cfg.num_classes
    else:
        arrays, source = load_arrays(cfg.name, resolve_root(cfg.root), cfg.download)
        splits = {
            s: Split(scale_pixels(x, cfg.pixel_range), torch.from_numpy(np.asarray(y, dtype=np.int64)))
            for s, (x, y) in arrays.items()
        }
        num_classes = NUM_CLASSES[cfg.name]
    val: Split | None
    if cfg.validate_on == "test":  # the report's code: every training example trains, "validation" is the test split
        train, val = splits["train"], splits["test"]
    else:
        train, val = split_validation(splits["train"], cfg.val_size)
    move = lambda s: Split(s.x.to(device), s.y.to(device))  # noqa: E731
    test = move(splits["test"])
    if val is splits["test"]:  # validate_on=test: the same tensors, evaluated once
        val = test
    elif val is not None:
        val = move(val)
    return Dataset(cfg.name, move(train), val, test, num_classes, source)


def iterate_batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches by indexing the split's tensors (a fresh permutation per call when shuffling).

    Training drops the incomplete last batch: batch norm needs more than one
    example, and a single batch shape spares torch.compile a recompilation.
    """
    n = len(split)
    order = torch.randperm(n, generator=generator).to(split.x.device) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            yield split.x[start : start + batch_size], split.y[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            yield split.x[idx], split.y[idx]


def check_dataset_name(name: str) -> None:
    """``data.name`` must be a dataset bnnctl can load."""
    if name not in DATASETS:
        raise ConfigError(f"unknown data.name {name!r} (known: {', '.join(DATASETS)})")
