"""Where datasets come from: torchvision folders, flat idx folders (Debian's), or a download.

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
from pathlib import Path

import numpy as np
import torch

from bnnctl.errors import ConfigError, DataError

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


def resolve_root(root: str | None) -> Path:
    """``data.root``, else ``$BNNCTL_DATA``, else ``./data``."""
    return Path(root or os.environ.get("BNNCTL_DATA") or DEFAULT_ROOT).expanduser()


def read_idx(path: Path) -> np.ndarray:
    """An idx file (LeCun's MNIST format), gzipped or not, as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = bytearray(f.read())  # writable, so torch can share the memory without a warning
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte idx file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
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
