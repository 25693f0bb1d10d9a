"""im2col on packed words: a convolution's input windows as rows of words, for ``xnor.xnor_gemm``.

The input is channels-last words (N, H * W, CW) (``bits.pack_signs_channels_last``);
a patch row holds its kh x kw taps in (i, j) order, each tap's CW words as the
input has them, so a weight row packed tap by tap in the same order multiplies
it. Taps outside the image are zero words (all -1): ``packed.layers`` corrects
the dot products for them.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from bnnctl.kernels.threads import parallel_kernel


@parallel_kernel()
def im2col_words(words, height, width, kh, kw, stride, padding, out_h, out_w):
    """words (N, H * W, CW) -> patches (N * out_h * out_w, kh * kw * CW); zero words where the window leaves the image."""
    n, _, cw = words.shape
    patches = np.zeros((n * out_h * out_w, kh * kw * cw), dtype=np.uint64)
    for e in prange(n):
        for oy in range(out_h):
            for ox in range(out_w):
                row = (e * out_h + oy) * out_w + ox
                for i in range(kh):
                    y = oy * stride - padding + i
                    if y < 0 or y >= height:
                        continue
                    for j in range(kw):
                        x = ox * stride - padding + j
                        if x < 0 or x >= width:
                            continue
                        src = y * width + x
                        dst = (i * kw + j) * cw
                        for t in range(cw):
                            patches[row, dst + t] = words[e, src, t]
    return patches
