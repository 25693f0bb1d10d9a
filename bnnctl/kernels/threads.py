"""How many CPU threads the kernels compute with: one policy, numba's pool follows torch's.

torch and numba each keep a pool of threads, and numba's OpenMP threading layer
shares the libgomp that torch ships. When numba starts that layer (its first
parallel kernel, or ``numba.set_num_threads``) it sets OpenMP's thread count to
numba's pool size, every core, which is the count torch's own CPU kernels then
use too. A data-parallel rank or a grid worker given one thread thus ran two,
whose idle OpenMP workers spin at the barrier: four world-size-4 ranks on this
2-core machine took 235 s per epoch instead of 30 s.

So the one policy is ``numba_threads_like_torch``: numba uses as many threads
as torch does, and torch keeps its count. Every parallel kernel of this
package is made by ``parallel_kernel``, which applies it on each call (a few
microseconds), so no kernel runs on numba's default of every core.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numba
import torch


def numba_threads_like_torch() -> None:
    """numba kernels launched from this thread use as many threads as torch does, and torch keeps its count."""
    n = torch.get_num_threads()
    pool = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # numba.config sets its options at import, untyped
    numba.set_num_threads(max(1, min(pool, n)))  # starts numba's layer if it has not
    if torch.get_num_threads() != n:  # numba's OpenMP layer just reset the count torch's kernels use
        torch.set_num_threads(n)


def use_threads(n: int) -> None:
    """Compute with ``n`` threads in torch and in numba (numba capped at its pool size)."""
    torch.set_num_threads(n)
    numba_threads_like_torch()


def parallel_kernel(nogil: bool = False) -> Callable[[Callable], Callable]:
    """``numba.njit(parallel=True, cache=True)`` whose every call first applies ``numba_threads_like_torch``.

    The compiled dispatcher is the wrapper's ``kernel`` attribute (to call from
    other njit code, or to inspect its signatures).
    """

    def make(py_func: Callable) -> Callable:
        kernel = numba.njit(parallel=True, cache=True, nogil=nogil)(py_func)

        @functools.wraps(py_func)
        def run(*args):
            numba_threads_like_torch()
            return kernel(*args)

        run.__dict__["kernel"] = kernel  # run.kernel (mypy does not model attributes set on a function)
        return run

    return make
