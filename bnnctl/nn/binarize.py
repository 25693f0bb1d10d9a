"""Binarizers as registered objects: the forward map, the surrogate gradient, and what they are.

A binarizer maps a latent real tensor to what a layer computes with. Training
needs a gradient where the forward map has none (sign is flat almost
everywhere), so each binarizer pairs its forward map with a surrogate
gradient. The rest of bnnctl never compares names: layers, weight clipping,
the size report and packed export ask the object

* ``output``: the set its values lie in (``OutputSet``): exactly +-1, a scaled
  +-1, ternary, or real. Only ``BINARY`` may be packed into bits;
* ``bits``: storage per element once deployed (1 for +-1, 32 for real);
* ``clips_latent``: whether latent weights feeding it are kept in [-1, 1]
  when ``train.weight_clip`` is on (the BNN paper's rule for sign);
* ``params``: its parameters, as the config gives them (``{name, params}``).

Modelled on larq's quantizers (one small class per binarizer, a registry by
name, one contract test over the registry). ``sign`` is the pure forward map
with sign(0) = +1; every binarizer that uses it with a straight-through
estimator says so in its name (``ste_sign``).
"""

from __future__ import annotations

import enum
import inspect
import json
import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping

import torch

from bnnctl.errors import ConfigError


class OutputSet(enum.StrEnum):
    """The values a binarizer's output takes."""

    BINARY = "binary"  # exactly {-1, +1}: packable into bits, XNOR-popcount exact
    SCALED_BINARY = "scaled_binary"  # {-a, +a} with a real scale a per block
    SCALED_TERNARY = "scaled_ternary"  # {-a, 0, +a}: a scaled sign that maps 0 to 0
    TERNARY = "ternary"  # {-1, 0, +1}
    REAL = "real"  # unchanged real values


def sign(x: torch.Tensor) -> torch.Tensor:
    """sign(x) with sign(0) = +1, exactly +-1 in x's dtype (``torch.sign`` maps 0 to 0, which is not binary)."""
    one = torch.ones((), dtype=x.dtype, device=x.device)
    return torch.where(x >= 0, one, -one)


def sign_with_zero(x: torch.Tensor, zero: int) -> torch.Tensor:
    """sign(x) with sign(0) = ``zero``: +1 (``sign``, exactly +-1) or 0 (``torch.sign``, values in {-1, 0, +1})."""
    return sign(x) if zero == 1 else torch.sign(x)


def _sign_zero(value: Any) -> int:
    """The value a sign binarizer gives 0: 1 or 0 (checked, as ``__init__`` stores it)."""
    if isinstance(value, bool) or value not in (0, 1):
        raise ValueError(f"sign_zero must be 1 (sign(0) = +1) or 0 (torch.sign), got {value!r}")
    return int(value)


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """clip((x + 1) / 2, 0, 1): the probability of +1 in stochastic binarization."""
    return ((x + 1) / 2).clamp(0, 1)


def _cancel_beyond(grad: torch.Tensor, x: torch.Tensor, clip: float | None) -> torch.Tensor:
    """The straight-through gradient: passed where |x| <= clip, cancelled elsewhere (clip None: everywhere passed)."""
    if clip is None:
        return grad
    return grad * (x.abs() <= clip).to(grad.dtype)


def _clip_bound(clip: float | None) -> float | None:
    """A straight-through estimator's bound as its binarizer stores it: a float > 0, or None (never cancel)."""
    if clip is not None and not clip > 0:
        raise ValueError(f"clip must be > 0 or null, got {clip}")
    return None if clip is None else float(clip)


class _SignSTE(torch.autograd.Function):
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
        return _cancel_beyond(grad, x, ctx.clip), None, None


class _StochasticSignSTE(torch.autograd.Function):
    """Forward +1 with probability hard_sigmoid(x), else -1; backward as ``_SignSTE``."""

    @staticmethod
    def forward(ctx, x, clip):
        ctx.clip = clip
        ctx.save_for_backward(x)
        one = torch.ones((), dtype=x.dtype, device=x.device)
        return torch.where(torch.rand_like(x) < hard_sigmoid(x), one, -one)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return _cancel_beyond(grad, x, ctx.clip), None


class Binarizer(ABC):
    """A forward map with its surrogate gradient and what it outputs. Subclasses register by ``name``."""

    name: ClassVar[str]
    output: ClassVar[OutputSet]
    bits: ClassVar[float]  # storage bits per element once deployed
    clips_latent: ClassVar[bool]  # latent weights into it are clipped to [-1, 1] by train.weight_clip

    def __init__(self) -> None:
        """No parameters; a subclass with parameters takes them as keyword arguments stored as attributes."""

    @abstractmethod
    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        """The binarized tensor; ``training`` selects e.g. stochastic vs deterministic forward."""

    @property
    def params(self) -> dict[str, Any]:
        """The parameters as ``__init__`` takes them (what the config's ``params`` holds)."""
        return {
            name: getattr(self, name) for name in inspect.signature(type(self).__init__).parameters if name != "self"
        }

    @property
    def exact_binary(self) -> bool:
        """Exactly +-1: a layer may be computed with XNOR-popcount and stored as bits."""
        return self.output is OutputSet.BINARY

    @property
    def quantizes(self) -> bool:
        """Anything but the identity: its output is not the latent real tensor."""
        return self.output is not OutputSet.REAL

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Binarizer) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(json.dumps(self.spec(), sort_keys=True, default=str))

    def for_layer(self, index: int, count: int) -> Binarizer:
        """The binarizer of the ``index``-th of ``count`` layers that use it (a per-layer parameter picks its entry)."""
        return self

    def storage_bits(self, rows: int, row_length: int) -> float:
        """Bits to store a (rows, row_length) tensor once deployed (Hadamard adds its block scales)."""
        return rows * row_length * self.bits


BINARIZERS: dict[str, type[Binarizer]] = {}


def register(cls: type[Binarizer]) -> type[Binarizer]:
    """Class decorator: make ``cls`` selectable as ``{name: cls.name, params: {...}}``."""
    if cls.name in BINARIZERS:
        raise ValueError(f"binarizer {cls.name!r} is registered twice")
    BINARIZERS[cls.name] = cls
    return cls


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
        return _SignSTE.apply(x, self.clip, self.sign_zero)


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
            return _StochasticSignSTE.apply(x, self.clip)
        return _SignSTE.apply(x, self.clip)


@register
class Identity(Binarizer):
    """Full precision: forward x, gradient unchanged. The float baseline and real first/last layers."""

    name = "identity"
    output = OutputSet.REAL
    bits = 32
    clips_latent = False

    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        return x


def ternarize(x: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    """sign(x) * 1{|x| > threshold}: values in {-1, 0, +1} in x's dtype."""
    return torch.where(x.abs() > threshold, sign(x), torch.zeros((), dtype=x.dtype, device=x.device))


class _TernarySTE(torch.autograd.Function):
    """Forward ternarize(x, t); backward the upstream gradient where |x| <= clip (as ``_SignSTE``)."""

    @staticmethod
    def forward(ctx, x, threshold, clip):
        ctx.clip = clip
        ctx.save_for_backward(x)
        return ternarize(x, threshold)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return _cancel_beyond(grad, x, ctx.clip), None, None


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
        return _TernarySTE.apply(x, threshold, self.clip)


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


def _beta(value: Any) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) and value >= 1):
        raise ValueError(f"beta must be an integer >= 1 or a list of them (one per layer), got {value!r}")
    return value


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
        return block_mean_abs(x, self._block()) * _SignSTE.apply(x, self.clip, self.sign_zero)


IDENTITY = Identity()


def make_binarizer(spec: Any, key: str = "binarizer") -> Binarizer:
    """The binarizer a config names: ``{name, params}`` (or a bare name); errors name ``key``."""
    if isinstance(spec, Binarizer):
        return spec
    name, params = _name_and_params(spec, key)
    try:
        cls = BINARIZERS[name]
    except KeyError:
        raise ConfigError(f"{key}.name: unknown binarizer {name!r} (known: {', '.join(sorted(BINARIZERS))})") from None
    known = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(
            f"{key}.params.{unknown[0]}: not a parameter of {name} (known: {', '.join(known) or 'none'}; "
            f"params carry over when only the name is overridden: drop it with ~{key}.params.{unknown[0]})"
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}.params: {exc}") from None


def _name_and_params(spec: Any, key: str) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping):
        return str(spec.get("name")), dict(spec.get("params") or {})
    if hasattr(spec, "name") and hasattr(spec, "params"):  # config.schema.BinarizerSpec
        return spec.name, dict(spec.params or {})
    raise ConfigError(f"{key}: expected {{name, params}}, got {spec!r}")


def default_params(name: str) -> dict[str, Any]:
    """The parameters a binarizer takes when the config gives none (for canonical run ids)."""
    cls = BINARIZERS[name]
    return {
        p.name: p.default
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.default is not inspect.Parameter.empty
    }
