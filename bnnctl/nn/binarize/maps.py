"""The forward maps binarizers are built from, and their straight-through autograd functions.

Pure tensor functions (``sign``, ``ternarize``, ``block_mean_abs``...) are
used directly by packed inference, the geometry studies and gradient
compression; the autograd functions pair a map with a surrogate gradient.
"""

from __future__ import annotations

import torch


def sign(x: torch.Tensor) -> torch.Tensor:
    """sign(x) with sign(0) = +1, exactly +-1 in x's dtype (``torch.sign`` maps 0 to 0, which is not binary)."""
    one = torch.ones((), dtype=x.dtype, device=x.device)
    return torch.where(x >= 0, one, -one)


def sign_with_zero(x: torch.Tensor, zero: int) -> torch.Tensor:
    """sign(x) with sign(0) = ``zero``: +1 (``sign``, exactly +-1) or 0 (``torch.sign``, values in {-1, 0, +1})."""
    return sign(x) if zero == 1 else torch.sign(x)


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """clip((x + 1) / 2, 0, 1): the probability of +1 in stochastic binarization."""
    return ((x + 1) / 2).clamp(0, 1)


def ternarize(x: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    """sign(x) * 1{|x| > threshold}: values in {-1, 0, +1} in x's dtype."""
    return torch.where(x.abs() > threshold, sign(x), torch.zeros((), dtype=x.dtype, device=x.device))


def block_mean_abs(x: torch.Tensor, beta: int) -> torch.Tensor:
    """The mean of |x| over consecutive blocks of ``beta`` elements along the last dim, repeated over each block.

    Shapes: x (..., n) -> (..., n). The last block of a row whose length n is
    not a multiple of beta is shorter (n mod beta elements) and averages over
    just those: no padding value ever enters a mean. Differentiable.
    """
    n = x.shape[-1]
    if n == 0:
        return x.abs()
    blocks = -(-n // beta)
    padded = torch.nn.functional.pad(x.abs(), (0, blocks * beta - n))  # (..., blocks * beta), zeros past n
    sums = padded.reshape(*x.shape[:-1], blocks, beta).sum(-1)  # (..., blocks)
    counts = torch.full((blocks,), float(beta), dtype=x.dtype, device=x.device)
    counts[-1] = n - (blocks - 1) * beta
    means = sums / counts  # (..., blocks)
    return means.repeat_interleave(beta, dim=-1)[..., :n]  # (..., n)


def cancel_beyond(grad: torch.Tensor, x: torch.Tensor, clip: float | None) -> torch.Tensor:
    """The straight-through gradient: passed where |x| <= clip, cancelled elsewhere (clip None: everywhere passed)."""
    if clip is None:
        return grad
    return grad * (x.abs() <= clip).to(grad.dtype)


class SignSTE(torch.autograd.Function):
    """Forward sign(x) (sign(0) = zero); backward the upstream gradient where |x| <= clip (nothing saved for None)."""

    @staticmethod
    def forward(ctx, x, clip, zero=1):
        ctx.clip = clip
        if clip is not None:
            ctx.save_for_backward(x)
        return sign_with_zero(x, zero)

    @staticmethod
    def backward(ctx, grad):
        if ctx.clip is None:
            return grad, None, None
        (x,) = ctx.saved_tensors
        return cancel_beyond(grad, x, ctx.clip), None, None


class StochasticSignSTE(torch.autograd.Function):
    """Forward +1 with probability hard_sigmoid(x), else -1; backward as ``SignSTE``."""

    @staticmethod
    def forward(ctx, x, clip):
        ctx.clip = clip
        ctx.save_for_backward(x)
        one = torch.ones((), dtype=x.dtype, device=x.device)
        return torch.where(torch.rand_like(x) < hard_sigmoid(x), one, -one)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return cancel_beyond(grad, x, ctx.clip), None


class TernarySTE(torch.autograd.Function):
    """Forward ternarize(x, t); backward the upstream gradient where |x| <= clip (as ``SignSTE``)."""

    @staticmethod
    def forward(ctx, x, threshold, clip):
        ctx.clip = clip
        ctx.save_for_backward(x)
        return ternarize(x, threshold)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return cancel_beyond(grad, x, ctx.clip), None, None
