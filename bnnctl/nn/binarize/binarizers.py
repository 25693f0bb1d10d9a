"""The registered binarizers, one small class each; each docstring gives the forward map, gradient and source."""

from __future__ import annotations

import math
from typing import Any

import torch

from bnnctl.nn.binarize.base import Binarizer, OutputSet
from bnnctl.nn.binarize.maps import SignSTE, StochasticSignSTE, TernarySTE, block_mean_abs
from bnnctl.nn.binarize.registry import register


def _sign_zero(value: Any) -> int:
    """The value a sign binarizer gives 0: 1 or 0 (checked, as ``__init__`` stores it)."""
    if isinstance(value, bool) or value not in (0, 1):
        raise ValueError(f"sign_zero must be 1 (sign(0) = +1) or 0 (torch.sign), got {value!r}")
    return int(value)


def _clip_bound(clip: float | None) -> float | None:
    """A straight-through estimator's bound as its binarizer stores it: a float > 0, or None (never cancel)."""
    if clip is not None and not clip > 0:
        raise ValueError(f"clip must be > 0 or null, got {clip}")
    return None if clip is None else float(clip)


def _beta(value: Any) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) and value >= 1):
        raise ValueError(f"beta must be an integer >= 1 or a list of them (one per layer), got {value!r}")
    return value


@register
class SteSign(Binarizer):
    """Deterministic sign with a straight-through estimator.

    Forward: sign(x), sign(0) = +1, exactly +-1.
    Surrogate gradient: the upstream gradient where |x| <= clip, 0 elsewhere
    (the gradient of hard tanh for clip = 1); ``clip: null`` passes it
    everywhere unchanged (the identity straight-through estimator).
    ``sign_zero: 0`` maps 0 to 0 as ``torch.sign`` does (the ablation report's
    code): its outputs are then {-1, 0, +1}, which is not binary, and where
    dropout zeroes a unit before the sign, the zero reaches the next layer.
    Source: Courbariaux, Hubara et al. 2016 (arXiv 1602.02830), eq. 4, for
    activations (clip 1); the authors' Theano code updates latent weights with
    the unmasked gradient (BinaryConnect), which is ``clip: null``.
    """

    name = "ste_sign"
    clips_latent = True

    def __init__(self, clip: float | None = 1.0, sign_zero: int = 1):
        self.clip = _clip_bound(clip)
        self.sign_zero = _sign_zero(sign_zero)

    @property
    def output(self) -> OutputSet:  # type: ignore[override]
        return OutputSet.BINARY if self.sign_zero == 1 else OutputSet.TERNARY

    @property
    def bits(self) -> float:  # type: ignore[override]
        """1 for +-1; a sign that can give 0 has three levels, stored as 2 bits."""
        return 1 if self.sign_zero == 1 else 2

    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        return SignSTE.apply(x, self.clip, self.sign_zero)


@register
class StochasticSign(Binarizer):
    """Stochastic sign while training, deterministic sign at evaluation.

    Forward (training): +1 with probability hard_sigmoid(x) = clip((x + 1) / 2, 0, 1),
    else -1; (evaluation): sign(x), sign(0) = +1.
    Surrogate gradient: as ``ste_sign`` (passed where |x| <= clip).
    Source: Courbariaux, Hubara et al. 2016, eq. 2 (stochastic binarization).
    """

    name = "stochastic_sign"
    output = OutputSet.BINARY
    bits = 1
    clips_latent = True

    def __init__(self, clip: float | None = 1.0):
        self.clip = _clip_bound(clip)

    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        if training:
            return StochasticSignSTE.apply(x, self.clip)
        return SignSTE.apply(x, self.clip)


@register
class Identity(Binarizer):
    """Full precision: forward x, gradient unchanged. The float baseline and real first/last layers."""

    name = "identity"
    output = OutputSet.REAL
    bits = 32
    clips_latent = False

    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        return x


@register
class Ternary(Binarizer):
    """Ternarization with a threshold in units of the tensor's standard deviation.

    Forward: sign(x) * 1{|x| > t * sigma}, sigma the standard deviation of the
    whole tensor (detached), so values are exactly -1, 0 or +1.
    Surrogate gradient: the upstream gradient where |x| <= clip (as ``ste_sign``).
    Source: Anderson & Berg 2018 (arXiv 1705.07199), the authors' ``ternarize``;
    their trained CIFAR-10 net used t = 0.02 on weights of std 0.18 (t ~ 0.11 sigma).
    """

    name = "ternary"
    output = OutputSet.TERNARY
    bits = 2  # three levels need log2(3) = 1.58 bits; stored as 2
    clips_latent = True

    def __init__(self, threshold_sigma: float = 0.11, clip: float | None = 1.0):
        if not threshold_sigma >= 0:
            raise ValueError(f"threshold_sigma must be >= 0, got {threshold_sigma}")
        self.threshold_sigma = float(threshold_sigma)
        self.clip = _clip_bound(clip)

    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        threshold = self.threshold_sigma * x.detach().std() if x.numel() > 1 else self.threshold_sigma
        return TernarySTE.apply(x, threshold, self.clip)


@register
class Hadamard(Binarizer):
    """Hadamard binarization: sign times the block mean of |x| (block length beta).

    Forward: delta (.) sign(x), with delta the mean of |x| over consecutive
    blocks of ``beta`` elements along the last dimension, each value repeated
    over its block. Layers hand it weights as (out, fan_in) rows (a flattened
    filter per output channel) and activations as they are: (N, features) for
    a dense layer, (N, C, H, W) for a convolution, blocked along the width W.
    A last block shorter than beta (a row length that beta does not divide)
    averages over its own elements only. beta = 1 reproduces x in the
    forward pass (delta = |x|; its gradient keeps the two terms below, and it
    stores a sign and a scale per element: use the identity for a float
    layer); beta = the row length is XNOR-Net's per-row scale.
    ``beta`` may be a list: one entry per layer that uses this binarizer, in
    the order the network applies them (``for_layer``); the first and last
    layers of the HadaNets nets stay full precision (beta = 1).
    ``sign_zero: 0`` maps 0 to 0 (Wolfram's Sign, the post's network, where a
    ReLU precedes the binarization): the output is then a scaled ternary.
    Surrogate gradient: through both factors: (1/beta) sign(x_i) sum_j g_j sign(x_j)
    over i's block (from delta) + delta_i g_i 1{|x_i| <= clip} (the STE through sign).
    delta is recomputed from the latent tensor at every forward pass.
    Source: Akhauri, HadaNets (arXiv 1905.10759), eq. 1-6; the WSS18 Hadamard BNN post.
    """

    name = "hadamard"
    clips_latent = True

    def __init__(self, beta: int | list[int] = 16, clip: float | None = 1.0, sign_zero: int = 1):
        self.beta = [_beta(b) for b in beta] if isinstance(beta, (list, tuple)) else _beta(beta)
        if isinstance(self.beta, list) and not self.beta:
            raise ValueError("beta must be an integer >= 1 or a non-empty list of them")
        self.clip = _clip_bound(clip)
        self.sign_zero = _sign_zero(sign_zero)

    def _block(self) -> int:
        if isinstance(self.beta, list):
            raise ValueError(f"beta {self.beta} is per layer: use for_layer() to get one layer's binarizer")
        return self.beta

    @property
    def output(self) -> OutputSet:  # type: ignore[override]
        return OutputSet.SCALED_BINARY if self.sign_zero == 1 else OutputSet.SCALED_TERNARY

    @property
    def _sign_bits(self) -> int:
        return 1 if self.sign_zero == 1 else 2  # +-1, or three levels with sign(0) = 0

    @property
    def bits(self) -> float:  # type: ignore[override]
        """A sign per element plus one float32 scale per block of beta (on average, for a divisible row)."""
        return self._sign_bits + 32 / self._block()

    def storage_bits(self, rows: int, row_length: int) -> float:
        """A sign per element and one float32 scale per block: ceil(row_length / beta) blocks per row."""
        return rows * (self._sign_bits * row_length + 32 * math.ceil(row_length / self._block()))

    def for_layer(self, index: int, count: int) -> Binarizer:
        if not isinstance(self.beta, list):
            return self
        if len(self.beta) != count:
            raise ValueError(f"beta lists {len(self.beta)} values, but {count} layers of the model use this binarizer")
        return Hadamard(beta=self.beta[index], clip=self.clip, sign_zero=self.sign_zero)

    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        return block_mean_abs(x, self._block()) * SignSTE.apply(x, self.clip, self.sign_zero)


IDENTITY = Identity()
