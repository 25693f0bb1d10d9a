"""Epilogues of the packed layers: integer +-1 dot products -> the next layer's sign words.

A binary layer's float ops up to the next sign (bias, batch norm, hard tanh,
...) fold into one integer threshold t and a flip per unit
(``packed.thresholds.fold``): the next sign is +1 iff (dot >= t) XOR flip. These
loops apply them and write the bits straight into ``bits``' layout (unit c in
word c // 64, bit c % 64, 1 = +1, pad bits 0).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from bnnctl.kernels.threads import parallel_kernel


@parallel_kernel()
def threshold_pack(dots, t, flip):
    """dots (R, C) int32 -> words (R, ceil(C / 64)): bit c = (dots[r, c] >= t[c]) != flip[c] (bit order: ``bits``)."""
    rows, channels = dots.shape
    cw = (channels + 63) // 64
    out = np.zeros((rows, cw), dtype=np.uint64)
    for r in prange(rows):
        for w in range(cw):
            word = np.uint64(0)
            for b in range(min(64, channels - w * 64)):
                c = w * 64 + b
                if (dots[r, c] >= t[c]) != flip[c]:
                    word |= np.uint64(1) << np.uint64(b)
            out[r, w] = word
    return out


@parallel_kernel()
def conv_epilogue_bits(dots, correction, out_h, out_w, pool, t, flip):
    """dots (N, out_h * out_w, C) full-window products -> the next sign's words (N, ph * pw, CW).

    Per output channel c at pooled position (py, px): the max over the pool x
    pool window of dots + correction (the padding fix), then (max >= t[c]) != flip[c].
    pool = 1: no pooling. Windows past out_h // pool * pool are dropped (floor, as nn.MaxPool2d).
    """
    n, _, c = dots.shape
    ph, pw = out_h // pool, out_w // pool
    cw = (c + 63) // 64
    words = np.zeros((n, ph * pw, cw), dtype=np.uint64)
    for e in prange(n):
        for py in range(ph):
            for px in range(pw):
                for ch in range(c):
                    best = np.int32(-(2**31) + 1)
                    for i in range(pool):
                        for j in range(pool):
                            pos = (py * pool + i) * out_w + px * pool + j
                            best = max(best, dots[e, pos, ch] + correction[pos, ch])
                    if (best >= t[ch]) != flip[ch]:
                        words[e, py * pw + px, ch // 64] |= np.uint64(1) << np.uint64(ch % 64)
    return words
