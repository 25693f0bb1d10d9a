"""Storage of a deployed model, asked of each layer's weight binarizer (bits per element)."""

from __future__ import annotations

import torch.nn as nn

from bnnctl.nn.layers import _BinaryMixin


def model_size_bytes(model: nn.Module) -> dict[str, float]:
    """Bytes at each parameter's deployed precision (its binarizer's bits; 32 for everything else).

    ``params`` counts parameters and floating-point buffers (batch-norm
    statistics), which deploy at 32 bits; ``binary_params`` the weights stored
    at fewer than 32 bits.
    """
    bits_of = {}
    for layer in model.modules():
        if isinstance(layer, _BinaryMixin) and layer.weight_binarizer.bits < 32:
            bits_of[id(layer.weight)] = layer.weight_binarizer.bits
    params = list(model.parameters())
    quantized = sum(p.numel() for p in params if id(p) in bits_of)
    total = sum(p.numel() for p in params)
    bits = sum(p.numel() * bits_of.get(id(p), 32) for p in params)
    buffers = sum(b.numel() for b in model.buffers() if b.dtype.is_floating_point)
    deployed = bits / 8 + buffers * 4
    float32 = (total + buffers) * 4
    return {
        "params": total + buffers,
        "binary_params": quantized,
        "bytes_float32": float32,
        "bytes_deployed": deployed,
        "compression": float32 / deployed if deployed else 1.0,
    }
