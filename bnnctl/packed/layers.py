"""Packed binary layers: +-1 activations as bits in, bits (or floats) out.

An activation between two binary layers is a ``Bits`` value: the signs of a
float tensor (N, C) or (N, C, H, W), packed channels-last, one run of words per
spatial position:

    words (N, P, CW) uint64, P = H * W positions (1 for a dense tensor),
    CW = ceil(C / 64) words per position, channel c in word c // 64, bit c % 64

(``kernels.bits`` gives the bit order; the pad bits past C are 0). A dense layer after
a convolution reads the (P, CW) words of an example as one row, so export
orders its weight columns (h, w, c) with the same per-position padding.

A layer computes its exact +-1 dot products with ``kernels.xnor.xnor_gemm``, adds
nothing else in integers, and ends in one of two epilogues:

* ``Thresholds``: the float ops between it and the next sign (bias, batch
  norm, hard tanh, ...) folded into one integer threshold per unit, so the next
  layer's bits come straight from the integer dot products;
* float: the dot products as float32 plus the bias (the network's last layer,
  or ops that do not fold), handed back to float ops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch

from bnnctl.kernels.bits import pack_signs, pack_signs_channels_last, to_panels, unpack_signs, words_for
from bnnctl.kernels.epilogue import conv_epilogue_bits, threshold_pack
from bnnctl.kernels.im2col import im2col_words
from bnnctl.kernels.xnor import NR, aligned_copy, xnor_gemm


@dataclass
class Bits:
    """Packed +-1 activations: words (N, P, CW) for ``channels`` per position, standing for a float tensor ``shape``.

    ``shape`` is (N, C) for a dense activation (P = 1), (N, C, H, W) for a
    convolution's (P = H * W), or (N, C * H * W) once flattened: the float
    tensor is always the (N, C, P) values reshaped, channels first as PyTorch
    lays them out.
    """

    words: np.ndarray
    channels: int
    shape: tuple[int, ...]

    @classmethod
    def from_float(cls, x: torch.Tensor) -> Bits:
        """Signs of x (>= 0 -> +1), channels-last: (N, C) -> (N, 1, CW); (N, C, H, W) -> (N, H * W, CW)."""
        if x.dim() not in (2, 4):
            raise ValueError(f"packed activations must be (N, C) or (N, C, H, W), got {tuple(x.shape)}")
        n, c = x.shape[:2]
        array = x.detach().cpu().float().contiguous().numpy().reshape(n, c, -1)  # (N, C, P), a view
        words = pack_signs_channels_last(array)
        return cls(words, c, tuple(x.shape))

    def to_float(self) -> torch.Tensor:
        """The +-1 float32 tensor these bits stand for, in PyTorch's (channels-first) layout."""
        values = unpack_signs(self.words, self.channels)  # (N, P, C)
        return torch.from_numpy(np.ascontiguousarray(values.transpose(0, 2, 1)).reshape(self.shape))

    def flatten(self) -> Bits:
        """What nn.Flatten does to the float tensor; the words stay as they are."""
        return Bits(self.words, self.channels, (self.shape[0], int(np.prod(self.shape[1:]))))

    def rows(self) -> np.ndarray:
        """Each example's words as one row (N, P * CW): what a dense layer multiplies."""
        return self.words.reshape(self.words.shape[0], -1)


@dataclass
class Thresholds:
    """Per-unit integer thresholds: the next sign is +1 iff (dot >= t) XOR flip (``thresholds.fold``)."""

    t: np.ndarray  # (C,) int32
    flip: np.ndarray  # (C,) bool: the folded float ops decrease with the dot product (e.g. batch norm gamma < 0)


def apply_thresholds(dots: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """dots (R, C) -> the next layer's sign words (R, CW)."""
    return threshold_pack(np.ascontiguousarray(dots), thresholds.t, thresholds.flip)


def _float_output(dots: np.ndarray, bias: np.ndarray | None) -> torch.Tensor:
    """Dot products as float32 (exact: |dot| < 2^24) plus the bias: the layer's float output, one rounding."""
    out = torch.from_numpy(np.ascontiguousarray(dots, dtype=np.float32))
    return out if bias is None else out + torch.from_numpy(bias)


@dataclass
class XnorLinear:
    """A dense layer on packed +-1 inputs and weights.

    ``in_positions``, ``in_channels``: the layout of the input bits (1 and the
    feature count for a dense input; H * W and C after a convolution), which the
    weight columns were packed for. ``weight_words``: (out, P * CW), each row
    packed position by position as the input is; the kernel's panels are made
    from them at construction.
    """

    weight_words: np.ndarray
    in_positions: int
    in_channels: int
    out_features: int
    bias: np.ndarray | None = None
    thresholds: Thresholds | None = None
    panels: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.panels = aligned_copy(to_panels(self.weight_words, NR))

    @property
    def k(self) -> int:
        return self.in_positions * self.in_channels

    @classmethod
    def from_signs(cls, weight_bits: np.ndarray, in_positions: int, in_channels: int, **kwargs) -> XnorLinear:
        """weight_bits (out, C * P) booleans, columns as PyTorch flattens (c * P + p) -> rows packed per position."""
        out = weight_bits.shape[0]
        per_position = weight_bits.reshape(out, in_channels, in_positions).transpose(0, 2, 1)  # (out, P, C)
        words = pack_signs(per_position * 2.0 - 1.0).reshape(out, -1)  # (out, P * CW)
        return cls(words, in_positions, in_channels, out, **kwargs)

    def __call__(self, x: Bits) -> Bits | torch.Tensor:
        if x.words.shape[1:] != (self.in_positions, words_for(self.in_channels)):
            expected = (self.in_positions, words_for(self.in_channels))
            raise ValueError(f"XnorLinear expects input words (N, {expected[0]}, {expected[1]}), got {x.words.shape}")
        dots = xnor_gemm(x.rows(), self.panels, self.k, self.out_features)  # (N, out) int32
        if self.thresholds is None:
            return _float_output(dots, self.bias)
        n = dots.shape[0]
        return Bits(apply_thresholds(dots, self.thresholds)[:, None, :], self.out_features, (n, self.out_features))


def _padding_correction(
    weight_bits: np.ndarray, height: int, width: int, stride: int, padding: int, out_h: int, out_w: int
) -> np.ndarray:
    """adj (out_h * out_w, C_out) int32 with dot_valid = dot_full + adj at each output position.

    Zero padding is not +-1: the float convolution skips the taps outside the
    image, while im2col fills them with 0 bits (-1). At a position with padded
    taps T, the full product counts each such tap's +1 weights as mismatches:
    dot_valid = dot_full - C_in * |T| + 2 * (number of +1 weights on T).
    weight_bits: (C_out, kh, kw, C_in) booleans.
    """
    c_out, kh, kw, c_in = weight_bits.shape
    plus_per_tap = weight_bits.sum(axis=3).astype(np.int32)  # (C_out, kh, kw)
    ys = np.arange(out_h)[:, None] * stride - padding + np.arange(kh)[None, :]  # (out_h, kh)
    xs = np.arange(out_w)[:, None] * stride - padding + np.arange(kw)[None, :]  # (out_w, kw)
    outside = ~(((ys >= 0) & (ys < height))[:, None, :, None] & ((xs >= 0) & (xs < width))[None, :, None, :])
    outside = outside.reshape(out_h * out_w, kh * kw).astype(np.int32)  # (positions, taps)
    return (2 * outside @ plus_per_tap.reshape(c_out, kh * kw).T - c_in * outside.sum(1, keepdims=True)).astype(
        np.int32
    )


@dataclass
class XnorConv2d:
    """A convolution on packed +-1 inputs and weights (im2col on words), with an optional max-pool on the integers.

    ``pool``: a max-pool of kernel = stride = pool that the float model applies
    right after the convolution; max commutes with adding the bias, so it runs
    on the integer dot products before the thresholds.
    """

    weight_words: np.ndarray  # (C_out, kh * kw * CW): taps in (i, j) order, each tap's C_in channels padded to words
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: int
    padding: int
    in_size: tuple[int, int]
    pool: int = 0
    bias: np.ndarray | None = None
    thresholds: Thresholds | None = None
    panels: np.ndarray = field(init=False, repr=False)
    correction: np.ndarray = field(init=False, repr=False)

    @classmethod
    def from_signs(cls, weight_bits: np.ndarray, **kwargs) -> XnorConv2d:
        """weight_bits (C_out, C_in, kh, kw) booleans -> rows of (kh, kw, C_in), each tap padded to whole words."""
        c_out, c_in, kh, kw = weight_bits.shape
        taps_last = weight_bits.transpose(0, 2, 3, 1)  # (C_out, kh, kw, C_in)
        words = pack_signs(taps_last * 2.0 - 1.0).reshape(c_out, -1)  # (C_out, kh * kw * CW)
        return cls(words, c_in, c_out, (kh, kw), **kwargs)

    def __post_init__(self) -> None:
        self.kernel = cast("tuple[int, int]", tuple(self.kernel))  # a list from the file's JSON: the same pair
        self.in_size = cast("tuple[int, int]", tuple(self.in_size))
        self.panels = aligned_copy(to_panels(self.weight_words, NR))
        kh, kw = self.kernel
        taps = self.weight_words.reshape(self.out_channels, kh, kw, -1)
        taps_last = unpack_signs(taps, self.in_channels) > 0  # (C_out, kh, kw, C_in)
        self.correction = _padding_correction(taps_last, *self.in_size, self.stride, self.padding, *self.conv_size)

    @property
    def conv_size(self) -> tuple[int, int]:
        (h, w), (kh, kw) = self.in_size, self.kernel
        return (h + 2 * self.padding - kh) // self.stride + 1, (w + 2 * self.padding - kw) // self.stride + 1

    @property
    def out_size(self) -> tuple[int, int]:
        h, w = self.conv_size
        return (h // self.pool, w // self.pool) if self.pool else (h, w)

    def __call__(self, x: Bits) -> Bits | torch.Tensor:
        n = x.words.shape[0]
        (h, w), (kh, kw), (oh, ow) = self.in_size, self.kernel, self.conv_size
        if tuple(x.shape[1:]) != (self.in_channels, h, w):
            raise ValueError(f"XnorConv2d expects ({self.in_channels}, {h}, {w}) inputs, got {x.shape[1:]}")
        patches = im2col_words(x.words, h, w, kh, kw, self.stride, self.padding, oh, ow)
        k = self.in_channels * kh * kw
        dots = xnor_gemm(patches, self.panels, k, self.out_channels).reshape(n, oh * ow, self.out_channels)
        if self.thresholds is not None:
            t, flip = self.thresholds.t, self.thresholds.flip
            words = conv_epilogue_bits(dots, self.correction, oh, ow, max(self.pool, 1), t, flip)
            ph, pw = self.out_size
            return Bits(words, self.out_channels, (n, self.out_channels, ph, pw))
        dots = (dots + self.correction).reshape(n, oh, ow, self.out_channels)
        if self.pool:
            ph, pw = self.out_size
            p = self.pool
            dots = dots[:, : ph * p, : pw * p].reshape(n, ph, p, pw, p, self.out_channels).max(axis=(2, 4))
        ph, pw = dots.shape[1:3]
        out = _float_output(dots.reshape(-1, self.out_channels), self.bias)
        return out.reshape(n, ph, pw, self.out_channels).permute(0, 3, 1, 2).contiguous()
