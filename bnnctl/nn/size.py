"""Storage of a deployed model, per layer and in total, asked of each layer's binarizers.

Deployed precision of each tensor:

* a quantized layer's weights: its weight binarizer's ``storage_bits`` for
  the (out, fan_in) rows: 1 bit per element for +-1 (a pure binary layer is
  exactly 32x smaller than float32), 1 bit plus one float32 scale per block
  for Hadamard (a ratio of beta * 32 / (beta + 32) when beta divides the row);
* its bias: the weight binarizer's bits when the bias is binarized, else 32;
* everything else (float layers, batch-norm parameters and statistics): 32 bits.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from bnnctl.nn.layers import _BinaryMixin


def _tensor_bits(module: nn.Module, name: str, tensor: torch.Tensor) -> float:
    """Deployed bits of one parameter or buffer of ``module``."""
    if isinstance(module, _BinaryMixin) and module.weight_binarizer.quantizes:
        binarizer = module.weight_binarizer
        if name == "weight":
            return binarizer.storage_bits(tensor.shape[0], tensor[0].numel())
        if name == "bias" and module.binarize_bias:
            return binarizer.storage_bits(1, tensor.numel())
    return 32.0 * tensor.numel()


def layer_sizes(model: nn.Module) -> list[dict[str, Any]]:
    """One row per module that holds parameters or floating-point buffers: elements, bits, bytes, ratio vs float32."""
    rows = []
    for name, module in model.named_modules():
        tensors = [(n, p) for n, p in module.named_parameters(recurse=False)]
        tensors += [(n, b) for n, b in module.named_buffers(recurse=False) if b.dtype.is_floating_point]
        if not tensors:
            continue
        elements = sum(t.numel() for _, t in tensors)
        bits_of = {n: _tensor_bits(module, n, t) for n, t in tensors}
        bits = sum(bits_of.values())
        weight = dict(tensors).get("weight")
        weight_bits = bits_of["weight"] / weight.numel() if weight is not None else float("nan")
        binarizer = getattr(module, "weight_binarizer", None)
        rows.append(
            {
                "layer": name or type(module).__name__,
                "kind": type(module).__name__,
                "weights": repr(binarizer) if binarizer is not None and binarizer.quantizes else "float32",
                "elements": elements,
                "bits_per_weight": weight_bits,
                "bytes_float32": elements * 4,
                "bytes_deployed": bits / 8,
                "compression": elements * 32 / bits,
            }
        )
    return rows


def model_size_bytes(model: nn.Module, rows: list[dict[str, Any]] | None = None) -> dict[str, float]:
    """The whole model: elements, quantized weights, bytes in float32 and deployed, and the compression ratio.

    ``rows``: the model's ``layer_sizes``, when the caller has them already.
    """
    rows = layer_sizes(model) if rows is None else rows
    quantized = sum(
        m.weight.numel() for m in model.modules() if isinstance(m, _BinaryMixin) and m.weight_binarizer.quantizes
    )
    float32 = sum(r["bytes_float32"] for r in rows)
    deployed = sum(r["bytes_deployed"] for r in rows)
    return {
        "params": sum(r["elements"] for r in rows),
        "binary_params": quantized,
        "bytes_float32": float32,
        "bytes_deployed": deployed,
        "compression": float32 / deployed if deployed else 1.0,
    }
