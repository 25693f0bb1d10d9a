"""Datasets as tensors: loaded once, scaled to [-1, 1], kept on the training device.

Small image datasets fit in memory many times over, so instead of a DataLoader
with worker processes we hold each split as one tensor and batch by indexing:
no per-sample Python, no copies between processes, and the same code on a GPU.

Pixels are scaled to [-1, 1] (``data.pixel_range=symmetric``) or [0, 1] (``positive``).

Where data is looked for, in order:
1. ``data.root`` (default: ``$BNNCTL_DATA``, else ``./data``) in torchvision's
   layout (``<root>/FashionMNIST/raw/...``, ``<root>/cifar-10-batches-py``);
2. flat folders of idx files, gzipped or not (Debian's ``dataset-fashion-mnist``
   installs them in /usr/share/datasets/fashion-mnist; ``<root>/<name>/`` too);
3. torchvision's download into ``data.root``, when ``data.download`` is true.
If all fail, one line names the dataset, the folders searched and how to get it.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

from bnnctl.errors import ConfigError, DataError

if TYPE_CHECKING:
    from bnnctl.config import DataConfig

DEFAULT_ROOT = "./data"
DEBIAN_FOLDERS = {
    "fashion_mnist": ["/usr/share/datasets/fashion-mnist"],
    "mnist": ["/usr/share/datasets/mnist"],
}
TORCHVISION_NAMES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}
HOW_TO_GET = {
    "mnist": "run once with network access (torchvision downloads it into data.root)",
    "fashion_mnist": "`apt-get install dataset-fashion-mnist` (installs /usr/share/datasets/fashion-mnist), "
    "or run once with network access",
    "cifar10": "run once with network access (torchvision downloads it into data.root)",
}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


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


def resolve_root(root: str | None) -> Path:
    """``data.root``, else ``$BNNCTL_DATA``, else ``./data``."""
    return Path(root or os.environ.get("BNNCTL_DATA") or DEFAULT_ROOT).expanduser()


# --- raw readers --------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """An idx file (LeCun's MNIST format), gzipped or not, as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = bytearray(f.read())  # writable, so torch can share the memory without a warning
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte idx file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {data.size}")
    return data.reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_idx_folder(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """Train and test arrays from a flat folder of idx files, or None if any file is missing."""
    paths = {split: [_find_idx(folder, stem) for stem in stems] for split, stems in IDX_FILES.items()}
    if any(p is None for pair in paths.values() for p in pair):
        return None
    return {split: (read_idx(images), read_idx(labels)) for split, (images, labels) in paths.items()}


def _load_torchvision(name: str, root: Path, download: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train and test arrays through torchvision (raises if absent and not downloadable)."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, TORCHVISION_NAMES[name])
    out = {}
    for split in ("train", "test"):
        ds = cls(str(root), train=(split == "train"), download=download)
        data = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
        targets = np.asarray(ds.targets)
        out[split] = (data, targets)
    return out


def _candidate_idx_folders(name: str, root: Path) -> list[Path]:
    tv = TORCHVISION_NAMES[name]
    return [root / tv / "raw", root / name, root / tv, root, *map(Path, DEBIAN_FOLDERS.get(name, []))]


def load_arrays(name: str, root: Path, download: bool) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """Raw uint8 arrays of a real dataset and where they came from; a DataError names every folder tried."""
    if name not in TORCHVISION_NAMES:
        raise ConfigError(f"unknown dataset {name!r} (known: {', '.join([*TORCHVISION_NAMES, 'synthetic'])})")
    searched: list[str] = [str(root)]
    try:
        return _load_torchvision(name, root, download=False), str(root)
    except (RuntimeError, FileNotFoundError, OSError):
        pass
    if name != "cifar10":
        for folder in _candidate_idx_folders(name, root):
            if str(folder) not in searched:
                searched.append(str(folder))
            if folder.is_dir():
                arrays = load_idx_folder(folder)
                if arrays is not None:
                    return arrays, str(folder)
    if download:
        try:
            return _load_torchvision(name, root, download=True), f"{root} (downloaded)"
        except Exception as exc:  # noqa: BLE001 - any network/IO failure means "could not download"
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            reason = f"download failed (offline?): {detail}"
    else:
        reason = "download disabled (data.download=false)"
    raise DataError(
        f"dataset {name!r} not found in {', '.join(searched)}; {reason}. "
        f"To get it: {HOW_TO_GET[name]}, or point BNNCTL_DATA / data.root at a folder that holds it."
    )


# --- tensors ------------------------------------------------------------------

PIXEL_BOUNDS = {"symmetric": (-1.0, 1.0), "positive": (0.0, 1.0)}
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
    if pixel_range == "positive":
        return x.float().div_(255.0).contiguous()
    raise ConfigError(f"data.pixel_range must be one of {', '.join(PIXEL_RANGES)}, got {pixel_range!r}")


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

    Values lie in [-1, 1] (``pixel_range=symmetric``) or are mapped to [0, 1] (``positive``).
    """
    g = torch.Generator().manual_seed(cfg.synthetic_seed)
    shape = tuple(cfg.synthetic_shape)
    prototypes = torch.randint(0, 2, (cfg.num_classes, *shape), generator=g).float() * 2 - 1
    splits = {}
    for split, n in (("train", cfg.synthetic_train), ("test", cfg.synthetic_test)):
        y = torch.randint(0, cfg.num_classes, (n,), generator=g)
        noise = torch.randn((n, *shape), generator=g) * cfg.synthetic_noise
        x = (prototypes[y] * 0.5 + noise).clamp(-1, 1)
        splits[split] = Split(x if cfg.pixel_range == "symmetric" else (x + 1) / 2, y)
    return splits


def load_dataset(cfg: DataConfig, device: torch.device | str = "cpu") -> Dataset:
    """The dataset ``cfg`` names, as tensors on ``device`` with its validation split."""
    if cfg.name == "synthetic":
        splits, source, num_classes = make_synthetic(cfg), "synthetic", cfg.num_classes
    else:
        arrays, source = load_arrays(cfg.name, resolve_root(cfg.root), cfg.download)
        splits = {s: Split(scale_pixels(x, cfg.pixel_range), torch.from_numpy(np.asarray(y, dtype=np.int64)))
                  for s, (x, y) in arrays.items()}
        num_classes = int(splits["train"].y.max()) + 1
    train, val = split_validation(splits["train"], cfg.val_size)
    move = lambda s: None if s is None else Split(s.x.to(device), s.y.to(device))  # noqa: E731
    return Dataset(cfg.name, move(train), move(val), move(splits["test"]), num_classes, source)


def iterate_batches(
    split: Split, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
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
            yield split.x[start:start + batch_size], split.y[start:start + batch_size]
        else:
            idx = order[start:start + batch_size]
            yield split.x[idx], split.y[idx]
