"""Which layers of a model multiply two small-integer operands, and so may take an exact low-precision format.

A ``BinaryLinear`` computes its product in ``binary_matmul`` (``nn.lowp``:
int8 or bf16 instead of float32) only where both operands are exactly
{-1, 0, +1}, or such values times a dropout scale that is a power of two. This
module walks a model to find those layers (``integer_input_layers``) and sets
their format (``set_binary_matmul``). It sits above the layers, which import
only the product itself from ``nn.lowp``.
"""

from __future__ import annotations

import math

import torch.nn as nn

from bnnctl.nn.binarize import OutputSet
from bnnctl.nn.layers import Binarize, BinaryLinear

# Modules that keep values in {-1, 0, +1} as they are (at evaluation and in training alike).
_VALUE_PRESERVING = (nn.Flatten, nn.Identity, nn.MaxPool2d, nn.MaxPool1d)
# Dropouts that only zero units and scale the survivors by s = 1 / (1 - p) (not AlphaDropout).
_SCALING_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
# Largest dropout scale kept: +-64 fits int8 (+-127) and bf16 exactly, and K * 64 sums stay exact
# in float32 up to K = 2^18 inputs.
MAX_DROPOUT_SCALE = 64


def dropout_keeps_integers(p: float) -> bool:
    """Whether dropout with rate ``p`` maps {-1, 0, +1} to small integers exactly: 1 / (1 - p) a power of two <= 64.

    p = 0.5 (the BNN paper's and the ablation report's rate) gives {-2, 0, +2};
    p = 0.2 gives +-1.25, which int8 cannot hold, so the next product stays float32.
    """
    if not 0 <= p < 1:
        return False
    scale = 1 / (1 - p)
    exponent = round(math.log2(scale))
    return scale <= MAX_DROPOUT_SCALE and scale == 2.0**exponent


def _magnitude_after(module: nn.Module, magnitude: float | None) -> float | None:
    """The largest |value| out of ``module`` for inputs in {-m, 0, +m}, m = ``magnitude``; None once not integer.

    Value-preserving modules keep m; an integer-keeping dropout multiplies it
    by its scale (two dropouts of 0.5 in a row: 4), and past
    ``MAX_DROPOUT_SCALE`` the values no longer count as small integers.
    """
    if magnitude is None or isinstance(module, _VALUE_PRESERVING):
        return magnitude
    if isinstance(module, _SCALING_DROPOUTS) and dropout_keeps_integers(module.p):
        scaled = magnitude / (1 - module.p)
        return scaled if scaled <= MAX_DROPOUT_SCALE else None
    return None


def integer_input_layers(model: nn.Module) -> list[BinaryLinear]:
    """The BinaryLinear layers that multiply two small-integer operands.

    A layer's input is small-integer when its own input binarizer says so, or
    when in its Sequential the module that feeds it is a ``Binarize`` whose
    output set is {-1, +1} or {-1, 0, +1}, with only value-preserving modules
    (Flatten, max-pooling) or an integer-keeping dropout between. Dropout in
    training scales its survivors by 1 / (1 - p): with p = 0.5 they are +-2,
    still exact in int8; with p = 0.2 (+-1.25) the input is real.
    """
    small = (OutputSet.BINARY, OutputSet.TERNARY)
    found = []
    for container in model.modules():
        magnitude: float | None = None  # the largest |value| fed on, while the values are small integers
        for child in container.children():
            if isinstance(child, BinaryLinear):
                fed = magnitude is not None and not child.input_binarizer.quantizes  # its own binarizer would rescale
                integer_input = fed or child.input_binarizer.output in small
                if integer_input and child.weight_binarizer.output in small:
                    found.append(child)
            if isinstance(child, Binarize):
                magnitude = 1.0 if child.binarizer.output in small else None
            else:
                magnitude = _magnitude_after(child, magnitude)
    return found


def set_binary_matmul(model: nn.Module, fmt: str) -> int:
    """Give every layer whose product has two small-integer operands the format ``fmt``; returns how many."""
    chosen = {id(layer) for layer in integer_input_layers(model)}
    for layer in model.modules():
        if isinstance(layer, BinaryLinear):
            layer.binary_matmul = fmt if id(layer) in chosen else "fp32"
    return len(chosen) if fmt != "fp32" else 0
