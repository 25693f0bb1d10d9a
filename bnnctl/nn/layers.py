"""Binary layers: real-valued latent weights, binarized on every forward pass.

The optimizer updates the latent weights (the gradient w.r.t. the binarized
weights reaches them through the binarizer's surrogate gradient); training may
clip them to [-1, 1] so that they cannot drift away from the sign threshold.
Every decision about a layer (is it +-1? are its weights clipped? how many
bits does it store?) is asked of its binarizer objects, never of a name.

The bias is added after the product, never inside it: with +-1 operands the
product is an exact integer in float32 (|K| < 2^24), and adding the bias is
then one rounding, the same in every batch shape. A BLAS call with the bias
folded in accumulates it with K-block partial sums instead (which partials
depends on the matrix sizes), so the packed model could not match it bit
for bit (``bnnctl.packed``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from bnnctl.nn.binarize import IDENTITY, Binarizer, SteSign, make_binarizer
from bnnctl.nn.lowp import exact_linear

# BinaryConnect's weight rule: the gradient w.r.t. sign(W) updates the latent W unmasked.
WEIGHT_SIGN = SteSign(clip=None)


class Binarize(nn.Module):
    """An activation that binarizes its input with a binarizer object."""

    def __init__(self, binarizer: Any = "ste_sign"):
        super().__init__()
        self.binarizer = make_binarizer(binarizer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.binarizer(x, self.training)

    def extra_repr(self) -> str:
        return repr(self.binarizer)


class EvalDropout(nn.Dropout):
    """Dropout that stays on at evaluation: ``F.dropout(x, p)`` with its default ``training=True``.

    What a functional ``F.dropout(x)`` call in a module's forward does from
    PyTorch 1.0 on (in 0.3/0.4 its default was ``training=False``: a no-op).
    Source: the ablation report's commit 68757d3 (github.com/bstadt/binary-nn-pytorch).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=True)


def add_bias(product: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """product + bias over the last dim (or the product alone): after the product, one rounding (see the module)."""
    return product if bias is None else product + bias


if TYPE_CHECKING:
    _MixinBase = nn.Module  # the checker sees what the mixin is mixed into: a module
else:
    _MixinBase = object


class _BinaryMixin(_MixinBase):
    """What BinaryLinear and BinaryConv2d share: a weight and an input binarizer, an optionally binary bias."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    training: bool

    def _setup_binarizers(self, weight_binarizer: Any, input_binarizer: Any, binarize_bias: bool) -> None:
        self.weight_binarizer: Binarizer = make_binarizer(weight_binarizer)
        self.input_binarizer: Binarizer = make_binarizer(input_binarizer)
        self.binarize_bias = binarize_bias and self.weight_binarizer.quantizes

    @property
    def has_binary_weights(self) -> bool:
        """Whether the weights this layer computes with are exactly +-1 (packable)."""
        return self.weight_binarizer.exact_binary

    @property
    def has_binary_input(self) -> bool:
        return self.input_binarizer.exact_binary

    def binarize_weight(self, weight: torch.Tensor, training: bool = False) -> torch.Tensor:
        """The weight binarizer on ``weight`` seen as rows: (out, in) or (out, in, kh, kw) -> (out, fan_in) -> back.

        A block-wise binarizer (Hadamard) thus blocks each flattened filter, as
        HadaNets reshape W to (C_out, -1); elementwise ones do not notice.
        """
        rows = weight.reshape(weight.shape[0], -1)  # a view of the parameter
        return self.weight_binarizer(rows, training).reshape(weight.shape)

    def binary_weight(self) -> torch.Tensor:
        return self.binarize_weight(self.weight, self.training)

    def binary_bias(self) -> torch.Tensor | None:
        if self.bias is None or not self.binarize_bias:
            return self.bias
        return self.weight_binarizer(self.bias, self.training)

    def binary_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.input_binarizer(x, self.training)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, weights={self.weight_binarizer!r}, "
            f"input={self.input_binarizer!r}, binarize_bias={self.binarize_bias}"
        )


class _RealOperandLinear(torch.autograd.Function):
    """Forward F.linear(x_b, W_b, b_b); backward as if it were F.linear(x, W, b) at the real operands.

    Shapes: x, x_b (N, in); W, W_b (out, in); b, b_b (out,) or None; grad (N, out).
    Backward: grad_x = grad @ W, grad_W = grad^T @ x, grad_b = sum_N grad, with
    the latent W and the layer's real input x (before its input binarizer):
    the ablation report's Binary Linear Unit, whose straight-through estimator
    is the identity for both signs. No binarizer's surrogate gradient is used.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, x_b, weight_b, bias_b, fmt="fp32"):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return add_bias(exact_linear(x_b, weight_b, fmt), bias_b)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_bias = grad.sum(0) if ctx.has_bias else None
        return grad @ weight, grad.t() @ x, grad_bias, None, None, None, None


class BinaryLinear(_BinaryMixin, nn.Linear):  # type: ignore[misc]  # torch infers Linear.bias as Parameter; bias=False registers None
    """y = b_in(x) @ b_w(W)^T + bias, with b_w, b_in binarizer objects (identity keeps full precision).

    ``real_backward``: the gradient is F.linear's at the real operands (see
    ``_RealOperandLinear``) instead of at the binarized ones passed back
    through each binarizer's surrogate gradient.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        weight_binarizer: Any = WEIGHT_SIGN,
        input_binarizer: Any = IDENTITY,
        binarize_bias: bool = False,
        real_backward: bool = False,
    ):
        super().__init__(in_features, out_features, bias=bias)
        self._setup_binarizers(weight_binarizer, input_binarizer, binarize_bias)
        self.real_backward = real_backward
        self.binary_matmul = (
            "fp32"  # the product's format (nn.products.set_binary_matmul; int8/bf16 need integer operands)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.real_backward and torch.is_grad_enabled():
            with torch.no_grad():
                x_b, w_b, b_b = self.binary_input(x), self.binary_weight(), self.binary_bias()
            return _RealOperandLinear.apply(x, self.weight, self.bias, x_b, w_b, b_b, self.binary_matmul)
        product = exact_linear(self.binary_input(x), self.binary_weight(), self.binary_matmul)
        return add_bias(product, self.binary_bias())

    def extra_repr(self) -> str:
        extra = (", real_backward=True" if self.real_backward else "") + (
            f", binary_matmul={self.binary_matmul}" if self.binary_matmul != "fp32" else ""
        )
        return super().extra_repr() + extra


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
        weight_binarizer: Any = WEIGHT_SIGN,
        input_binarizer: Any = IDENTITY,
        binarize_bias: bool = False,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self._setup_binarizers(weight_binarizer, input_binarizer, binarize_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._conv_forward(self.binary_input(x), self.binary_weight(), None)
        bias = self.binary_bias()
        return out if bias is None else out + bias[:, None, None]


def quantized_layers(model: nn.Module) -> list[_BinaryMixin]:
    """Layers whose weights are quantized in any way (+-1, scaled, ternary)."""
    return [m for m in model.modules() if isinstance(m, _BinaryMixin) and m.weight_binarizer.quantizes]


def binary_layers(model: nn.Module) -> list[_BinaryMixin]:
    """Layers whose computing weights are exactly +-1 (what packed export may turn into bits)."""
    return [m for m in model.modules() if isinstance(m, _BinaryMixin) and m.has_binary_weights]


def quantized_parameters(model: nn.Module) -> list[torch.Tensor]:
    """The weights and biases of the quantized layers (what the report's gradient "clip" acts on)."""
    return [p for layer in quantized_layers(model) for p in (layer.weight, layer.bias) if p is not None]


def clippable_parameters(model: nn.Module) -> list[torch.Tensor]:
    """Latent weights (and binarized biases) that weight clipping keeps in [-1, 1]: their binarizer asks for it."""
    params = []
    for layer in model.modules():
        if isinstance(layer, _BinaryMixin) and layer.weight_binarizer.clips_latent:
            params.append(layer.weight)
            if layer.bias is not None and layer.binarize_bias:
                params.append(layer.bias)
    return params


def latent_weight_peaks(model: nn.Module) -> dict[str, float]:
    """The largest |w| of each binary layer's latent weights, keyed ``max_abs_w.<layer>``.

    Weight clipping only acts on a weight past +-1; recorded per epoch, this
    says whether and when any latent weight gets there (a clip that never
    fires leaves training bit for bit unchanged).
    """
    return {
        f"max_abs_w.{name}": float(layer.weight.detach().abs().max())
        for name, layer in model.named_modules()
        if isinstance(layer, _BinaryMixin)
    }
