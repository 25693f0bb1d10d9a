"""Weight distributions: each quantized layer's latent weights against what its binarizer makes of them.

The Hadamard BNN post's figure: plain sign collapses a layer's weights to two
spikes at +-1, while Hadamard binarization (sign times the block mean of |W|)
keeps their spread. Two distances per layer say how far the binarized weights
are from the latent ones:

* Wasserstein-1 between the two value distributions (the area between their
  CDFs; in the units of the weights), and
* the relative L2 error ||W - W_b|| / ||W|| of the tensors themselves.

XNOR-Net's scaled sign (mean |W| of each row times sign(W)) is the control:
the best a single scale per row can do, so a plain sign's distances can be
read apart from its missing scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn as nn

from bnnctl.errors import RunError
from bnnctl.nn.binarize import sign
from bnnctl.nn.layers import quantized_layers


@dataclass
class LayerWeights:
    run: str
    layer: str
    binarizer: str
    latent: torch.Tensor  # (elements,) the latent weights
    binarized: torch.Tensor  # (elements,) what the layer computes with


def wasserstein_1(a: torch.Tensor, b: torch.Tensor) -> float:
    """W1 between the empirical distributions of two 1-D samples (scipy's ``wasserstein_distance``)."""
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(a.double().numpy(), b.double().numpy()))


def relative_l2(latent: torch.Tensor, binarized: torch.Tensor) -> float:
    return float((latent - binarized).norm() / latent.norm())


def xnor_scaled(rows: torch.Tensor) -> torch.Tensor:
    """mean(|row|) * sign(row) per row: XNOR-Net's binarization, shapes (out, fan_in) -> same."""
    return rows.abs().mean(1, keepdim=True) * sign(rows)


@torch.no_grad()
def weight_distributions(models: list[tuple[str, nn.Module]]) -> tuple[pd.DataFrame, list[LayerWeights]]:
    """One row per (run, quantized layer): the two distances, for the layer's binarizer and for XNOR-Net's."""
    rows, layers = [], []
    for run, model in models:
        quantized = quantized_layers(model)
        if not quantized:
            raise RunError(f"{run}: the model has no binary layers (nothing to compare with its binarized weights)")
        names = {id(m): n for n, m in model.named_modules()}
        for layer in quantized:
            w = layer.weight.detach().double()
            latent_rows = w.reshape(w.shape[0], -1)
            binarized = layer.binarize_weight(w).reshape(latent_rows.shape)
            xnor = xnor_scaled(latent_rows)
            latent, flat_b = latent_rows.flatten(), binarized.flatten()
            name = names.get(id(layer), type(layer).__name__)
            rows.append(
                {
                    "run": run,
                    "layer": name,
                    "binarizer": repr(layer.weight_binarizer),
                    "elements": latent.numel(),
                    "latent_std": float(latent.std()),
                    "distinct_binarized": int(torch.unique(flat_b).numel()),
                    "wasserstein_1": wasserstein_1(latent, flat_b),
                    "relative_l2": relative_l2(latent, flat_b),
                    "xnor_wasserstein_1": wasserstein_1(latent, xnor.flatten()),
                    "xnor_relative_l2": relative_l2(latent, xnor.flatten()),
                }
            )
            layers.append(LayerWeights(run, name, repr(layer.weight_binarizer), latent.float(), flat_b.float()))
    return pd.DataFrame(rows), layers
