"""Binary layers: real-valued latent weights, binarized on every forward pass.

The optimizer updates the latent weights (the gradient w.r.t. the binarized
weights reaches them through the binarizer's surrogate gradient); training may
clip them to [-1, 1] so that they cannot drift away from the sign threshold.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from bnnctl.binarize import get_binarizer, is_binary


class Binarize(nn.Module):
    """An activation that binarizes its input with a named binarizer."""

    def __init__(self, binarizer: str = "sign"):
        super().__init__()
        self.binarizer_name = binarizer
        self._binarize = get_binarizer(binarizer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._binarize(x, self.training)

    def extra_repr(self) -> str:
        return self.binarizer_name


class _BinaryMixin:
    """What BinaryLinear and BinaryConv2d share: binarizers by name, binary bias."""

    def _setup_binarizers(self, weight_binarizer: str, input_binarizer: str, binarize_bias: bool):
        self.weight_binarizer_name = weight_binarizer
        self.input_binarizer_name = input_binarizer
        self.binarize_bias = binarize_bias
        self._binarize_weight = get_binarizer(weight_binarizer)
        self._binarize_input = get_binarizer(input_binarizer)

    @property
    def has_binary_weights(self) -> bool:
        """Whether the weights this layer computes with are +-1 (latent weights may be clipped)."""
        return is_binary(self.weight_binarizer_name)

    def binary_weight(self) -> torch.Tensor:
        return self._binarize_weight(self.weight, self.training)

    def binary_bias(self) -> torch.Tensor | None:
        if self.bias is None or not self.binarize_bias:
            return self.bias
        return self._binarize_weight(self.bias, self.training)

    def binary_input(self, x: torch.Tensor) -> torch.Tensor:
        return self._binarize_input(x, self.training)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, weights={self.weight_binarizer_name}, "
            f"input={self.input_binarizer_name}, binarize_bias={self.binarize_bias}"
        )


class BinaryLinear(_BinaryMixin, nn.Linear):
    """y = b(x) @ b(W)^T + bias, with b the named binarizers (identity keeps full precision)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        weight_binarizer: str = "sign_passthrough",
        input_binarizer: str = "identity",
        binarize_bias: bool = False,
    ):
        super().__init__(in_features, out_features, bias=bias)
        self._setup_binarizers(weight_binarizer, input_binarizer, binarize_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.binary_input(x), self.binary_weight(), self.binary_bias())


class BinaryConv2d(_BinaryMixin, nn.Conv2d):
    """2-D convolution with binarized weights (and optionally binarized input)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        weight_binarizer: str = "sign_passthrough",
        input_binarizer: str = "identity",
        binarize_bias: bool = False,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self._setup_binarizers(weight_binarizer, input_binarizer, binarize_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.binary_input(x), self.binary_weight(), self.binary_bias())


def binary_layers(model: nn.Module) -> list[nn.Module]:
    """The layers whose computing weights are +-1: their latent weights are the ones to clip."""
    return [m for m in model.modules() if isinstance(m, _BinaryMixin) and m.has_binary_weights]


def clippable_parameters(model: nn.Module) -> list[torch.Tensor]:
    """Latent weights (and binarized biases) that weight clipping keeps in [-1, 1]."""
    params = []
    for layer in binary_layers(model):
        params.append(layer.weight)
        if layer.bias is not None and layer.binarize_bias:
            params.append(layer.bias)
    return params
