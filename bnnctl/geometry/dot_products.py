"""Dot-product proportionality in a trained network (Anderson & Berg 2018, arXiv:1705.07199).

N test images go through the trained net; forward hooks capture each
quantized layer's actual input a (for the first layer the image, later the
binarized activations). For every unit and position the study sets a . W_b
(binarized weights, what the net computes) against a . W_c (the latent
continuous weights): per layer the Pearson r and the least-squares slope.
Two more comparisons per layer: the activations' binarization, a_c . W_b vs
a_b . W_b (layers after the first, a_c the input of the preceding sign), and a
control pairing each unit's a . W_c with another unit's a . W_b (W_b's output
units in a random order: what r is when the weights do not match).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from bnnctl.errors import RunError
from bnnctl.nn.layers import Binarize, BinaryConv2d, _BinaryMixin, quantized_layers

FIGURE_POINTS = 200_000


@dataclass
class LayerDots:
    name: str
    continuous: torch.Tensor  # (points,) a . W_c, at most FIGURE_POINTS of them
    binary: torch.Tensor  # (points,) a . W_b


def pearson_and_slope(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Pearson r of (x, y) and the least-squares slope of y on x, in float64."""
    x, y = x.double().flatten(), y.double().flatten()
    xc, yc = x - x.mean(), y - y.mean()
    sxx, syy, sxy = (xc * xc).sum(), (yc * yc).sum(), (xc * yc).sum()
    r = sxy / torch.sqrt(sxx * syy) if sxx > 0 and syy > 0 else torch.tensor(float("nan"))
    slope = sxy / sxx if sxx > 0 else torch.tensor(float("nan"))
    return float(r), float(slope)


def _apply(layer: nn.Module, a: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The layer's linear map (no bias) with ``weight``: (N, in...) -> (N, out...), all units and positions."""
    if isinstance(layer, BinaryConv2d):
        return F.conv2d(
            a, weight, stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups
        )
    return F.linear(a, weight)


def _other_units(weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The weight's output units (rows, filters) in a random order."""
    return weight[torch.randperm(weight.shape[0], generator=generator)]


@torch.no_grad()
def capture(model: nn.Sequential, x: torch.Tensor) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """Per quantized layer (by position in the Sequential): its binarized input a_b, and a_c where it has one.

    a_c is the input of the preceding Binarize carried through whatever lies
    between it and the layer (Flatten, Dropout at evaluation).
    """
    model.eval()
    inputs: dict[int, torch.Tensor] = {}
    continuous: dict[int, torch.Tensor] = {}
    last_sign_input: torch.Tensor | None = None
    since_sign: list[nn.Module] = []
    for i, module in enumerate(model):
        # a float first or last layer has nothing to compare
        if isinstance(module, _BinaryMixin) and module.weight_binarizer.quantizes:
            inputs[i] = module.binary_input(x)
            if last_sign_input is not None:
                a_c = last_sign_input
                for between in since_sign:
                    a_c = between(a_c)
                continuous[i] = a_c
        if isinstance(module, Binarize):
            last_sign_input, since_sign = x, []
        elif last_sign_input is not None:
            since_sign.append(module)
        x = module(x)
    return inputs, continuous


@torch.no_grad()
def dot_products(model: nn.Module, images: torch.Tensor, seed: int = 0) -> tuple[pd.DataFrame, list[LayerDots]]:
    """One row per quantized layer: r and slope of a.W_b vs a.W_c, of a_c.W_b vs a_b.W_b, and of the control."""
    if not isinstance(model, nn.Sequential) or not quantized_layers(model):
        raise RunError("the model has no binary layers in sequence: nothing to compare")
    names = {id(m): n for n, m in model.named_modules()}
    inputs, continuous = capture(model, images)
    generator = torch.Generator().manual_seed(seed)
    rows, dots = [], []
    for i, a in inputs.items():
        layer = cast(_BinaryMixin, model[i])  # capture keeps the quantized layers only
        w_c = layer.weight.detach()
        w_b = layer.binarize_weight(w_c)
        by_c, by_b = _apply(layer, a, w_c), _apply(layer, a, w_b)
        r, slope = pearson_and_slope(by_c, by_b)
        row = {"layer": names[id(layer)], "kind": type(layer).__name__, "points": by_c.numel(), "r": r, "slope": slope}
        if i in continuous:
            row["r_activations"], row["slope_activations"] = pearson_and_slope(_apply(layer, continuous[i], w_b), by_b)
        row["r_control"], _ = pearson_and_slope(by_c, _apply(layer, a, _other_units(w_b, generator)))
        rows.append(row)
        keep = torch.randperm(by_c.numel(), generator=generator)[:FIGURE_POINTS]  # the figure needs no more
        dots.append(LayerDots(row["layer"], by_c.flatten()[keep], by_b.flatten()[keep]))
    return pd.DataFrame(rows), dots
