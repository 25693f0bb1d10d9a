"""Process-wide settings that computing changes, set and restored in one place.

Training and benchmarks want a few settings that belong to the whole process,
not to one call: how many threads torch and numba use, whether the CPU flushes
denormal floats to zero, how loud the compiler's loggers are, a variable in
``os.environ`` that a logger needs. A command owns its process and may keep
them; a notebook that calls ``bnnctl.train(...)`` does not expect its thread
count or its floating-point mode to change. So every library call that needs
them goes through :func:`computing`, which records the previous state and
restores it on the way out, however the call ends.

The allocator setting (:func:`keep_freed_memory_for_reuse`) cannot be read back
from glibc, so only a process that owns itself (the CLI, a grid worker, a
data-parallel rank) applies it, once, for its whole life.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

# torch and numba are imported inside the functions: the CLI's start-up imports this module.

COMPILER_LOGGERS = ("torch.utils.cpp_extension", "torch._dynamo", "torch._inductor", "torch._logging")


def denormals_flushed() -> bool:
    """Whether the CPU treats denormal floats as zero now (x86 FTZ/DAZ).

    torch has a setter and no getter; a denormal times one is zero exactly when
    the inputs are flushed (DAZ), so that product is the probe.
    """
    import torch

    return bool((torch.tensor([1e-39], dtype=torch.float32) * 1.0).item() == 0.0)


def keep_freed_memory_for_reuse() -> bool:
    """Stop glibc from returning large freed blocks to the OS (Linux, CPU training).

    A training step allocates and frees the same large tensors every time
    (binarized weights, gradients: 64 MB each for a 4096x4096 layer). glibc
    serves blocks that large with mmap and unmaps them on free, so every step
    page-faulted all of that memory in again, which measured about 1.6x the
    cost of the copy itself here. Keeping freed memory in the heap lets the
    next step reuse it; PyTorch's CPU tuning guide reaches the same end with
    jemalloc or tcmalloc. Returns whether the setting took effect. It cannot be
    undone exactly, so only whole-process owners call it (module docstring).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_mmap_max, m_trim_threshold = -4, -1
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**30))
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        return False


@dataclass(frozen=True)
class ProcessState:
    """What :func:`computing` may change, as it was before."""

    torch_threads: int
    numba_threads: int | None  # None: numba's threading layer was never started (starting it is a change too)
    denormals_flushed: bool
    logger_levels: dict[str, int]
    environ: dict[str, str]

    @classmethod
    def now(cls) -> ProcessState:
        import torch

        return cls(
            torch_threads=torch.get_num_threads(),
            numba_threads=_numba_threads(),
            denormals_flushed=denormals_flushed(),
            logger_levels={name: logging.getLogger(name).level for name in COMPILER_LOGGERS},
            environ=dict(os.environ),
        )

    def restore(self) -> None:
        import torch

        for name, level in self.logger_levels.items():
            logging.getLogger(name).setLevel(level)
        _restore_environ(self.environ)
        torch.set_flush_denormal(self.denormals_flushed)
        if self.numba_threads is not None:
            import numba

            numba.set_num_threads(self.numba_threads)
        torch.set_num_threads(self.torch_threads)  # last: numba's OpenMP layer may have reset it


def _numba_threads() -> int | None:
    import sys

    if "numba" not in sys.modules:
        return None
    import numba

    try:
        return numba.get_num_threads()
    except (RuntimeError, ValueError):  # the threading layer cannot start here
        return None


def _restore_environ(saved: dict[str, str]) -> None:
    for key in [k for k in os.environ if k not in saved]:
        del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def quiet_compiler_logs() -> None:
    """Inductor's informational warnings (no CUDA runtime, ignored profiler hooks) are noise on a CPU."""
    for name in COMPILER_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def computing(threads: int = 0, flush_denormals: bool = False) -> Iterator[None]:
    """Run a block with ``threads`` compute threads (0: as they are) and, optionally, denormals flushed.

    Without batch norm a BNN's logits span hundreds, so softmax probabilities
    underflow into denormal floats, which x86 cores process many times slower;
    with an identity straight-through gradient they reach every backward
    matmul (113 -> 49 ms per step for the Binary Linear Unit MLP). Everything the
    block changes in the process (also the compiler loggers' levels and
    ``os.environ``) is as before when it ends.
    """
    import torch

    from bnnctl.kernels.threads import use_threads

    saved = ProcessState.now()
    try:
        if threads:
            use_threads(threads)
        if flush_denormals:
            torch.set_flush_denormal(True)
        yield
    finally:
        saved.restore()


def own_process_settings(threads: int = 0) -> None:
    """For a process that owns itself (the CLI, a grid worker): the settings for its whole life, never restored.

    The allocator setting that cannot be undone, the thread count, and denormals
    flushed from the start (set after parallel work has run, the flush recovered
    only part of its gain).
    """
    import torch

    from bnnctl.kernels.threads import use_threads

    keep_freed_memory_for_reuse()
    if threads:
        use_threads(threads)
    torch.set_flush_denormal(True)
