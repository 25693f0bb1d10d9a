"""Angle preservation in a trained network: each latent weight vector vs its binarized version.

Per quantized layer of a trained run (``runs.load_trained``), every weight
vector (a row of a linear layer, a flattened k x k x C_in filter of a conv
layer) is compared with what its binarizer makes of it, and the layer's
angles are set against the random-vector theory and a Monte Carlo at the
layer's dimension (Anderson & Berg's per-layer histograms).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn as nn

from bnnctl.config.schema import GeometryConfig
from bnnctl.errors import RunError
from bnnctl.geometry.random_angles import Sampled, angles_deg, describe, sample_angles, theory_deg
from bnnctl.nn.layers import quantized_layers


@dataclass
class LayerAngles:
    name: str
    angles: torch.Tensor  # (vectors,) degrees


@torch.no_grad()
def weight_angles(model: nn.Module, cfg: GeometryConfig) -> tuple[pd.DataFrame, list[LayerAngles]]:
    """One row per quantized layer; the per-vector angles for the histograms."""
    layers = quantized_layers(model)
    if not layers:
        raise RunError("the model has no binary layers: nothing to compare with its binarized weights")
    names = {id(m): n for n, m in model.named_modules()}
    rows, per_layer = [], []
    g = cfg.geometry
    for i, layer in enumerate(layers):
        latent = layer.weight.detach().double().reshape(layer.weight.shape[0], -1)  # (vectors, d)
        binarized = layer.binarize_weight(layer.weight.detach().double()).reshape(latent.shape)
        angles = angles_deg(latent, binarized)
        d = latent.shape[1]
        same = lambda x, b=layer.weight_binarizer: b(x, False)  # noqa: E731 - the Monte Carlo uses the layer's binarizer
        mc = sample_angles(d, min(g.samples, 2000), same, torch.Generator().manual_seed(g.seed + i), g.chunk_elements)
        theory = theory_deg(layer.weight_binarizer)
        mc_row = describe(mc, d, theory, g.confidence)
        own = describe(Sampled(angles, mc.random_pair), d, theory, g.confidence)
        name = names.get(id(layer), str(i))
        rows.append(
            {
                "layer": name,
                "kind": type(layer).__name__,
                "binarizer": repr(layer.weight_binarizer),
                "d": d,
                "vectors": len(angles),
                "mean_deg": own["mean_deg"],
                "std_deg": own["std_deg"],
                "ci_low_deg": own["ci_low_deg"],
                "ci_high_deg": own["ci_high_deg"],
                "theory_deg": theory,
                "gaussian_mc_mean_deg": mc_row["mean_deg"],
                "gaussian_mc_std_deg": mc_row["std_deg"],
                "random_mean_deg": mc_row["random_mean_deg"],
            }
        )
        per_layer.append(LayerAngles(name, angles))
    return pd.DataFrame(rows), per_layer
