"""The textbook float GEMM: the triple loop (i, j, k), the "classical" baseline ``bnnctl bench gemm --sizes`` times."""

from __future__ import annotations

import numpy as np
from numba import prange

from bnnctl.kernels.threads import parallel_kernel


@parallel_kernel()
def naive_matmul(a, b):
    """C = A B by the textbook triple loop (i, j, k), one thread per row block: the "classical" baseline."""
    m, k = a.shape
    n = b.shape[1]
    c = np.zeros((m, n), dtype=np.float32)
    for i in prange(m):
        for j in range(n):
            acc = np.float32(0.0)
            for t in range(k):
                acc += a[i, t] * b[t, j]
            c[i, j] = acc
    return c
