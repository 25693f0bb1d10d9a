"""How many CPU threads this process computes with: torch's pool and numba's, set together.

torch and numba each keep a pool of threads, and numba's OpenMP threading layer
shares the libgomp that torch ships. When numba starts that layer (its first
parallel kernel, or ``numba.set_num_threads``) it sets OpenMP's thread count to
numba's pool size, every core, which is the count torch's own CPU kernels then
use too. A data-parallel rank or a grid worker given one thread thus ran two,
whose idle OpenMP workers spin at the barrier: four world-size-4 ranks on this
2-core machine took 235 s per epoch instead of 30 s.
"""

from __future__ import annotations

import numba
import torch


def use_threads(n: int) -> None:
    """Compute with ``n`` threads in torch and in numba (numba capped at its pool size)."""
    torch.set_num_threads(n)
    numba_threads_like_torch()


def numba_threads_like_torch() -> None:
    """numba kernels launched from this thread use as many threads as torch does, and torch keeps its count."""
    n = torch.get_num_threads()
    numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, n)))  # starts numba's layer if it has not
    if torch.get_num_threads() != n:  # numba's OpenMP layer just reset the count torch's kernels use
        torch.set_num_threads(n)
