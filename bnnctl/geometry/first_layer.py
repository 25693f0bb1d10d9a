"""Why the first layer is special (Anderson & Berg 2018, arXiv:1705.07199).

The first layer sees k x k x C image patches: few dimensions, strongly
correlated, so a few principal components carry most of the variance. This
study samples patches of a dataset, reports the PCA spectrum and the
effective dimension (participation ratio (sum l)^2 / sum l^2), and measures
the angle between a patch and its binarized version in the pixel basis,
sign(x), and in the PCA basis, R^T sign(R x), beside the 37.07 degrees of
independent Gaussian coordinates.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F

from bnnctl.config.schema import DataConfig, GeometryConfig
from bnnctl.data import load_dataset
from bnnctl.errors import ConfigError
from bnnctl.geometry.random_angles import SIGN_THEORY_DEG, STE_SIGN, angles_deg, transform


def sample_patches(images: torch.Tensor, k: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random k x k x C patches: (N, C, H, W) -> (count, C*k*k), pixels as the first layer sees them."""
    n = images.shape[0]
    if k > min(images.shape[2], images.shape[3]):
        raise ConfigError(f"geometry.patch_size={k} exceeds the images ({images.shape[2]} x {images.shape[3]})")
    per_image = (images.shape[2] - k + 1) * (images.shape[3] - k + 1)
    picks = torch.randint(0, n * per_image, (count,), generator=generator)
    out = []
    for start in range(0, count, 512):  # unfold whole images 512 at a time: tens of MB even for CIFAR-10
        chunk = picks[start : start + 512]
        image, position = chunk // per_image, chunk % per_image
        patches = F.unfold(images[image], k)  # (m, C*k*k, positions)
        out.append(patches[torch.arange(len(chunk)), :, position])
    return torch.cat(out).double()


def pca(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) and the rotation R (rows: principal axes) of the patches' covariance."""
    centered = patches - patches.mean(0)
    values, vectors = torch.linalg.eigh(centered.T @ centered / (len(patches) - 1))
    order = values.argsort(descending=True)
    return values[order].clamp(min=0), vectors[:, order].T


def first_layer_study(
    cfg: GeometryConfig,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], dict[str, torch.Tensor]]:
    """(angle table, PCA table, headline numbers, per-patch angles by setting)."""
    g = cfg.geometry
    data = load_dataset(DataConfig(name=g.dataset, val_size=0))
    generator = torch.Generator().manual_seed(g.seed)
    patches = sample_patches(data.train.x, g.patch_size, g.patches, generator)
    values, rotation = pca(patches)
    centered = patches - patches.mean(0)
    sign = transform(STE_SIGN)  # the registry's ste_sign, as the angles study's rotated basis
    settings = {
        ("pixel", "raw"): angles_deg(patches, sign(patches)),
        ("pca", "raw"): angles_deg(patches, sign(patches @ rotation.T) @ rotation),
        ("pixel", "centered"): angles_deg(centered, sign(centered)),
        ("pca", "centered"): angles_deg(centered, sign(centered @ rotation.T) @ rotation),
    }
    rows, kept = [], {}
    for (basis, patch), angles in settings.items():
        angles = angles[~angles.isnan()]  # a zero vector (a patch equal to the mean) has no angle
        kept[f"{basis}, {patch}"] = angles
        rows.append(
            {
                "basis": basis,
                "patches": patch,
                "d": patches.shape[1],
                "n": len(angles),
                "mean_deg": angles.mean().item(),
                "std_deg": angles.std().item(),
                "gaussian_theory_deg": SIGN_THEORY_DEG,
            }
        )
    share = values / values.sum()
    spectrum = pd.DataFrame(
        {
            "component": range(1, len(values) + 1),
            "variance": values.numpy(),
            "share": share.numpy(),
            "cumulative_share": share.cumsum(0).numpy(),
        }
    )
    notes = {
        "dataset": g.dataset,
        "patch": f"{g.patch_size}x{g.patch_size}x{data.train.x.shape[1]}",
        "d": int(patches.shape[1]),
        "participation_ratio": float(values.sum() ** 2 / (values**2).sum()),
        "components_for_90pct": int((share.cumsum(0) < 0.9).sum()) + 1,
        "source": data.source,
    }
    return pd.DataFrame(rows), spectrum, notes, kept
