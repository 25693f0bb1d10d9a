"""The schema of the geometry studies (``bnnctl geometry ...``) and how their overrides are read.

``conf/geometry/<study>.yaml`` states what differs from these defaults; the
command line overrides ``binarize=sign|ternary|hadamard`` and any
``geometry.<key>=<value>``. A bad key or value is a one-line ConfigError naming it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bnnctl.config.compose import conf_dir, one_line
from bnnctl.errors import ConfigError


class GeometryBinarizer(enum.StrEnum):
    sign = "sign"  # sign(x), sign(0) = +1
    ternary = "ternary"  # sign(x) 1{|x| > t sigma}, swept over geometry.threshold_sigma
    hadamard = "hadamard"  # sign(x) times the block mean of |x|, swept over geometry.beta


@dataclass
class StudyConfig:
    """The keys of every geometry study (each study reads those it needs)."""

    dims: list[int] = field(default_factory=lambda: [2, 3, 5, 10, 27, 50, 100, 300, 1000, 3000, 10000])
    samples: int = 10000  # vectors per dimension (and per threshold, beta, basis)
    seed: int = 0
    chunk_elements: int = 2**22  # at most this many floats per array at once (x, its binarized copy, y)
    confidence: float = 0.95  # of the t-interval of the mean angle
    show_dims: list[int] = field(default_factory=lambda: [3, 10, 27, 1000])  # distributions drawn in the figure
    threshold_sigma: list[float] = field(
        default_factory=lambda: [0.01, 0.111, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5]
    )
    ternary_dim: int = 1000  # the dimension of the ternary sweep (the authors' notebook: 1000)
    beta: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])
    hadamard_dim: int = 4096
    rotation: bool = False  # exponentially decaying spectra, standard vs randomly rotated basis
    rotation_k: float = 0.1  # x_i ~ N(0, 1) exp(k (i - d/2))
    rotation_dims: list[int] = field(default_factory=lambda: [10, 100, 500])
    images: int = 500  # dot-products: test images fed through the trained net
    dataset: str = "fashion_mnist"  # first-layer: whose image patches (data.root: $BNNCTL_DATA, else ./data)
    patch_size: int = 3  # first-layer: k of the k x k x C patches
    patches: int = 50000  # first-layer: patches sampled


@dataclass
class GeometryConfig:
    binarize: GeometryBinarizer = GeometryBinarizer.sign
    geometry: StudyConfig = field(default_factory=StudyConfig)


def _check(cfg: GeometryConfig) -> None:
    g = cfg.geometry
    checks = [
        (
            bool(g.dims) and all(d >= 1 for d in g.dims),
            f"geometry.dims must be a non-empty list of dimensions >= 1, got {g.dims}",
        ),
        (g.samples >= 2, f"geometry.samples must be >= 2, got {g.samples}"),
        (g.chunk_elements >= 1, f"geometry.chunk_elements must be >= 1, got {g.chunk_elements}"),
        (0 < g.confidence < 1, f"geometry.confidence must be in (0, 1), got {g.confidence}"),
        (
            bool(g.threshold_sigma) and all(t >= 0 for t in g.threshold_sigma),
            f"geometry.threshold_sigma must be a non-empty list of values >= 0, got {g.threshold_sigma}",
        ),
        (g.ternary_dim >= 1, f"geometry.ternary_dim must be >= 1, got {g.ternary_dim}"),
        (
            bool(g.beta) and all(b >= 1 for b in g.beta),
            f"geometry.beta must be a non-empty list of block lengths >= 1, got {g.beta}",
        ),
        (g.hadamard_dim >= 1, f"geometry.hadamard_dim must be >= 1, got {g.hadamard_dim}"),
        (
            bool(g.rotation_dims) and all(d >= 2 for d in g.rotation_dims),
            f"geometry.rotation_dims must be a non-empty list of dimensions >= 2, got {g.rotation_dims}",
        ),
        (g.images >= 2, f"geometry.images must be >= 2, got {g.images}"),
        (g.patch_size >= 1, f"geometry.patch_size must be >= 1, got {g.patch_size}"),
        (g.patches >= 2, f"geometry.patches must be >= 2, got {g.patches}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def load_geometry(study: str, overrides: list[str]) -> GeometryConfig:
    """conf/geometry/<study>.yaml with ``binarize=...`` and ``geometry.<key>=...`` overrides, checked."""
    for override in overrides:
        key = override.partition("=")[0]
        if "=" not in override or not (key == "binarize" or key.startswith("geometry.")):
            raise ConfigError(
                f"cannot apply {override!r}: expected binarize=<sign|ternary|hadamard> or geometry.<key>=<value>"
            )
    path = conf_dir() / "geometry" / f"{study}.yaml"
    try:
        raw: Any = OmegaConf.load(path) if path.is_file() else OmegaConf.create({})
        merged = OmegaConf.merge(OmegaConf.structured(GeometryConfig), raw, OmegaConf.from_dotlist(overrides))
        cfg: GeometryConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except (OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"invalid geometry config: {one_line(exc)}") from None
    _check(cfg)
    return cfg


def geometry_yaml(cfg: GeometryConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
