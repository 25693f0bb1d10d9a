"""Fused optimizer steps: one Adam step and the BNN weight clip in a single pass over flat float32 arrays.

The arithmetic is torch's fused CPU Adam's vector loop (``FusedAdamKernel.cpp``),
operation for operation, with the fused multiply-adds its compiler made
(``intrinsics.fma32``): g <- fma(p, wd, g) (L2 weight decay),
m <- fma(1 - b1, g - m, m), v <- fma((1 - b2) g, g, b2 v),
p <- p + (-(lr / bc1) m) / (sqrt(v) / sqrt(bc2) + eps), then
p <- clamp(p, -bound, bound). The caller computes the scalars as torch does
(bc = 1 - b^t in double, each rounded to float32 once):
``training.adam_clip`` keeps the optimizer state and checks that a step fits.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from bnnctl.kernels.intrinsics import fma32
from bnnctl.kernels.threads import parallel_kernel


@parallel_kernel()
def adam_clip_(p, g, m, v, neg_step, coeff, b2, sq_coeff, bc2_sqrt, eps, weight_decay, bound):
    """One Adam step and the clamp, elementwise over flat float32 arrays (p, m, v in place).

    neg_step = -(lr / bc1), coeff = 1 - b1, sq_coeff = 1 - b2, bc2_sqrt = sqrt(bc2),
    all float32 (torch's fused CPU Adam's vector loop: lerp weight 1 - beta1 < 0.5).
    """
    n = p.shape[0]
    for i in prange(n):
        grad = g[i]
        if weight_decay != 0:
            grad = fma32(p[i], weight_decay, grad)
        mi = fma32(coeff, grad - m[i], m[i])
        vi = fma32(sq_coeff * grad, grad, v[i] * b2)
        m[i] = mi
        v[i] = vi
        new = p[i] + (neg_step * mi) / (np.sqrt(vi) / bc2_sqrt + eps)
        p[i] = min(max(new, -bound), bound)
