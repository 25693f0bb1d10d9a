"""Where datasets come from: torchvision folders, flat idx folders (Debian's), or a download.

Where data is looked for, in order:
1. ``data.root`` (default: ``$BNNCTL_DATA``, else ``./data``) in torchvision's
   layout (``<root>/FashionMNIST/raw/...``, ``<root>/cifar-10-batches-py``);
2. flat folders of idx files, gzipped or not (Debian's ``dataset-fashion-mnist``
   installs them in /usr/share/datasets/fashion-mnist; ``<root>/<name>/`` too);
3. torchvision's download into ``data.root``, when ``data.download`` is true
   (a failed download leaves no empty folders behind).
Every file is checked as it is read: a damaged one is one line naming it, and
so are labels that do not match the images or lie outside the classes.
If all fail, one line names the dataset, the folders searched and how to get it.
"""

from __future__ import annotations

import gzip
import os
import pickle
import zlib
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
NUM_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def resolve_root(root: str | None) -> Path:
    """``data.root``, else ``$BNNCTL_DATA``, else ``./data``."""
    return Path(root or os.environ.get("BNNCTL_DATA") or DEFAULT_ROOT).expanduser()


def _read_bytes(path: Path) -> bytearray:
    """The file's bytes, gunzipped when it ends in .gz; any failure is a DataError naming the file."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return bytearray(f.read())  # writable, so torch can share the memory without a warning
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; a cut-off gzip is an EOFError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise DataError(f"cannot read {path}: {reason}") from None


def read_idx(path: Path) -> np.ndarray:
    """An idx file (LeCun's MNIST format), gzipped or not, as a numpy array.

    Layout: bytes 0-1 are zero, byte 2 the type (0x08 = unsigned byte), byte 3
    the number of dimensions d, then d big-endian uint32 sizes, then the values.
    Anything else (a wrong magic, sizes that do not match the data) is a
    DataError naming the file.
    """
    raw = _read_bytes(path)
    if not raw:
        raise DataError(f"{path} is empty (0 bytes)")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise DataError(f"{path} is not an unsigned-byte idx file (wrong magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated: its header is cut off")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(
            f"{path} is truncated or damaged: its header says {int(np.prod(dims))} values, it holds {data.size}"
        )
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
    arrays = {}
    for split, (images, labels) in paths.items():
        assert images is not None and labels is not None  # every file was found, above
        x, y = read_idx(images), read_idx(labels)
        if x.ndim != 3:
            raise DataError(f"{images} holds {x.ndim}-d data, not images (N, H, W)")
        if y.ndim != 1:
            raise DataError(f"{labels} holds {y.ndim}-d data, not labels (N,)")
        arrays[split] = (x, y)
    return arrays


def check_arrays(name: str, arrays: dict[str, tuple[np.ndarray, np.ndarray]], source: str) -> None:
    """As many labels as images in each split, and every label one of the dataset's classes.

    The class count is the dataset's (10 for all three), never read off the
    largest label: a damaged labels file would otherwise build a 201-class model.
    """
    classes = NUM_CLASSES[name]
    for split, (x, y) in arrays.items():
        if len(x) != len(y):
            raise DataError(f"{name} in {source}: the {split} split has {len(x)} images but {len(y)} labels")
        if len(y) == 0:
            raise DataError(f"{name} in {source}: the {split} split is empty")
        low, high = int(np.min(y)), int(np.max(y))
        if low < 0 or high >= classes:
            raise DataError(
                f"{name} in {source}: the {split} labels run from {low} to {high}, outside the {classes} classes "
                f"0..{classes - 1} (a damaged labels file?)"
            )


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
    """Raw uint8 arrays of a real dataset and where they came from; a DataError names every folder tried.

    The MNIST-format datasets are read by ``read_idx`` from any folder that
    holds the four files (torchvision's ``raw`` folder among them), which
    checks every file; torchvision reads CIFAR-10 and does the downloads.
    """
    if name not in TORCHVISION_NAMES:
        raise ConfigError(f"unknown dataset {name!r} (known: {', '.join([*TORCHVISION_NAMES, 'synthetic'])})")
    found = _find_local(name, root)
    if isinstance(found, tuple):
        check_arrays(name, *found)
        return found
    searched = found
    if download:
        try:
            arrays = _download(name, root)
        except Exception as exc:  # noqa: BLE001 - any network/IO failure means "could not download"
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            reason = f"download failed (offline?): {detail}"
        else:
            check_arrays(name, arrays, f"{root} (downloaded)")
            return arrays, f"{root} (downloaded)"
    else:
        reason = "download disabled (data.download=false)"
    raise DataError(
        f"dataset {name!r} not found in {', '.join(searched)}; {reason}. "
        f"To get it: {HOW_TO_GET[name]}, or point BNNCTL_DATA / data.root at a folder that holds it."
    )


def _find_local(name: str, root: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str] | list[str]:
    """(arrays, source) from the first folder that holds the dataset, else the folders searched."""
    if name == "cifar10":
        try:
            return _load_torchvision(name, root, download=False), str(root)
        except (RuntimeError, FileNotFoundError) as exc:  # torchvision: "not found or corrupted"
            if (root / "cifar-10-batches-py").is_dir():
                raise DataError(
                    f"{root / 'cifar-10-batches-py'} is damaged: {str(exc).strip() or 'unreadable'}"
                ) from None
            return [str(root)]
        except (OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError) as exc:
            raise DataError(f"{root / 'cifar-10-batches-py'} is damaged: {exc}") from None
    searched: list[str] = []
    for folder in _candidate_idx_folders(name, root):
        if str(folder) not in searched:
            searched.append(str(folder))
        if folder.is_dir():
            arrays = load_idx_folder(folder)
            if arrays is not None:
                return arrays, str(folder)
    return searched


def _download(name: str, root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """torchvision's download into ``root``; the folders it created are removed again when it fails."""
    existed = _folders_under(root)
    try:
        return _load_torchvision(name, root, download=True)
    except BaseException:
        _remove_new_empty_folders(root, existed)
        raise


def _folders_under(root: Path) -> set[Path]:
    return {root, *(p for p in root.rglob("*") if p.is_dir())} if root.is_dir() else set()


def _remove_new_empty_folders(root: Path, existed: set[Path]) -> None:
    """Empty folders a failed download created (``MNIST/raw``, then ``MNIST``, then ``root``) go; nothing else."""
    candidates = sorted(_folders_under(root) - existed, key=lambda p: len(p.parts), reverse=True)
    if not root.is_dir() or root not in existed:
        candidates.append(root)
    for folder in candidates:
        try:
            folder.rmdir()  # only succeeds when empty
        except OSError:
            pass
