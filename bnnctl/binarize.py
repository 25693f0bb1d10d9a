"""Binarizers: the forward maps of BNNs and the surrogate gradients that train them.

Every binarizer is a function ``f(x, training) -> tensor`` registered by name, so
configs and layers pick them with a string (``binarize.weights=sign``). The
forward maps follow Courbariaux, Hubara et al. 2016 (arXiv 1602.02830):

* ``sign``              sign(x) with sign(0) = +1; straight-through estimator that
                        passes the gradient only where |x| <= 1 (the gradient of
                        hard tanh). The paper's activation binarizer.
* ``sign_passthrough``  the same forward; gradient passed unchanged. What the
                        authors' Theano code does for weights (BinaryConnect):
                        the gradient w.r.t. sign(W) updates the latent W as is.
                        With weights clipped to [-1, 1] it equals ``sign``.
* ``stochastic``        +1 with probability hard_sigmoid(x) = clip((x+1)/2, 0, 1),
                        else -1, at training time; deterministic ``sign`` at
                        evaluation; gradient as ``sign``.
* ``identity``          full precision (the float baseline).

Forward values are exactly +-1 in the input's dtype, so a binary layer computed
in floating point equals its XNOR-popcount counterpart bit for bit.
"""

from __future__ import annotations

from typing import Callable

import torch

from bnnctl.errors import ConfigError

Binarizer = Callable[[torch.Tensor, bool], torch.Tensor]


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """clip((x + 1) / 2, 0, 1): the probability of +1 in stochastic binarization."""
    return ((x + 1) / 2).clamp(0, 1)


def sign_plus(x: torch.Tensor) -> torch.Tensor:
    """sign with sign(0) = +1 (``torch.sign`` maps 0 to 0, which is not binary)."""
    one = torch.ones((), dtype=x.dtype, device=x.device)
    return torch.where(x >= 0, one, -one)


class _SignSTE(torch.autograd.Function):
    """sign forward; gradient masked to |x| <= 1 (cancelled where the unit saturates)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return sign_plus(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class _SignPassthrough(torch.autograd.Function):
    """sign forward; gradient passed unchanged (nothing saved: cheaper for big weight matrices)."""

    @staticmethod
    def forward(ctx, x):
        return sign_plus(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class _StochasticSTE(torch.autograd.Function):
    """+1 with probability hard_sigmoid(x); gradient masked to |x| <= 1 like ``sign``."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        one = torch.ones((), dtype=x.dtype, device=x.device)
        return torch.where(torch.rand_like(x) < hard_sigmoid(x), one, -one)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def sign(x: torch.Tensor, training: bool = True) -> torch.Tensor:
    """Deterministic sign, straight-through gradient cancelled where |x| > 1."""
    return _SignSTE.apply(x)


def sign_passthrough(x: torch.Tensor, training: bool = True) -> torch.Tensor:
    """Deterministic sign, gradient passed unchanged (BinaryConnect's weight rule)."""
    return _SignPassthrough.apply(x)


def stochastic(x: torch.Tensor, training: bool = True) -> torch.Tensor:
    """Stochastic sign while training, deterministic sign at evaluation."""
    return _StochasticSTE.apply(x) if training else _SignSTE.apply(x)


def identity(x: torch.Tensor, training: bool = True) -> torch.Tensor:
    """Full precision: no binarization at all."""
    return x


BINARIZERS: dict[str, Binarizer] = {
    "sign": sign,
    "sign_passthrough": sign_passthrough,
    "stochastic": stochastic,
    "identity": identity,
}


def get_binarizer(name: str) -> Binarizer:
    """The binarizer called ``name``; an unknown name lists the known ones."""
    try:
        return BINARIZERS[name]
    except KeyError:
        known = ", ".join(sorted(BINARIZERS))
        raise ConfigError(f"unknown binarizer {name!r} (known: {known})") from None


def is_binary(name: str) -> bool:
    """Whether the binarizer maps to {-1, +1} (everything except ``identity``)."""
    get_binarizer(name)
    return name != "identity"
