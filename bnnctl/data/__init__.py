"""Data: real datasets (MNIST, Fashion-MNIST, CIFAR-10) and synthetic ones as tensors; batched augmentation."""

from bnnctl.data.augment import AugmentSpec, augment_batch
from bnnctl.data.sources import load_arrays, load_idx_folder, read_idx, resolve_root
from bnnctl.data.tensors import (
    DATASETS,
    PIXEL_BOUNDS,
    Dataset,
    Split,
    check_dataset_name,
    iterate_batches,
    load_dataset,
    make_synthetic,
    prepare_dataset,
    scale_pixels,
    split_validation,
)

__all__ = [
    "DATASETS",
    "PIXEL_BOUNDS",
    "AugmentSpec",
    "Dataset",
    "Split",
    "augment_batch",
    "check_dataset_name",
    "iterate_batches",
    "load_arrays",
    "load_dataset",
    "load_idx_folder",
    "make_synthetic",
    "prepare_dataset",
    "read_idx",
    "resolve_root",
    "scale_pixels",
    "split_validation",
]
