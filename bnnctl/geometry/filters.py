"""Unique binary filters (the BNN paper's filter repetition, Courbariaux, Hubara et al. 2016, arXiv:1602.02830).

A k x k slice of a binary conv kernel (one output channel, one input channel)
is one of 2^(k*k) sign patterns; a filter and its negation give the same
response up to sign, so they are also counted as one (2^(k*k-1) classes).
Bit layout of a pattern's code: element (r, c) of the slice is bit r*k + c,
1 for +1.
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn as nn

from bnnctl.errors import RunError
from bnnctl.nn.layers import BinaryConv2d


def pattern_codes(binary: torch.Tensor) -> torch.Tensor:
    """(out, in, k, k) of +-1 -> (out * in,) integer codes, bit r*k + c set where element (r, c) is +1."""
    k2 = binary.shape[-1] * binary.shape[-2]
    bits = (binary.reshape(-1, k2) > 0).long()  # (filters, k*k)
    return (bits << torch.arange(k2)).sum(1)


def count_unique(binary: torch.Tensor) -> dict[str, float]:
    """Unique k x k patterns, with and without a filter and its negation counted as one."""
    k2 = binary.shape[-1] * binary.shape[-2]
    codes = pattern_codes(binary)
    negated = codes ^ ((1 << k2) - 1)
    n = len(codes)
    unique = len(torch.unique(codes))
    up_to_sign = len(torch.unique(torch.minimum(codes, negated)))
    return {
        "filters": n,
        "unique": unique,
        "unique_share": unique / n,
        "unique_up_to_sign": up_to_sign,
        "unique_up_to_sign_share": up_to_sign / n,
        "possible": 2**k2,
        "possible_up_to_sign": 2 ** (k2 - 1),
    }


@torch.no_grad()
def unique_filters(model: nn.Module) -> pd.DataFrame:
    """One row per binary conv layer (exactly +-1 weights)."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, BinaryConv2d) and m.has_binary_weights]
    if not layers:
        raise RunError("the model has no binary conv layers: filters are k x k slices of conv kernels")
    rows = []
    for name, layer in layers:
        binary = layer.binarize_weight(layer.weight.detach())
        rows.append(
            {
                "layer": name,
                "k": layer.kernel_size[0],
                "in": layer.in_channels,
                "out": layer.out_channels,
                **count_unique(binary),
            }
        )
    return pd.DataFrame(rows)
