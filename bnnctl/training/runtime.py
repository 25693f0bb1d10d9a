"""Where and how a run computes: the device, process-wide CPU tuning, seeding, the compile wrapper."""

from __future__ import annotations

import logging
import random
import re
import warnings
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from bnnctl.config.schema import DEVICE_PATTERN
from bnnctl.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """'auto' means CUDA when there is a GPU, else the CPU; an absent GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(DEVICE_PATTERN, name):
        raise ConfigError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but no CUDA device is available (use train.device=cpu or auto)")
    return torch.device(name)


def keep_freed_memory_for_reuse() -> bool:
    """Stop glibc from returning large freed blocks to the OS (Linux, CPU training).

    A training step allocates and frees the same large tensors every time
    (binarized weights, gradients: 64 MB each for a 4096x4096 layer). glibc
    serves blocks that large with mmap and unmaps them on free, so every step
    page-faulted all of that memory in again, which measured about 1.6x the
    cost of the copy itself here. Keeping freed memory in the heap lets the
    next step reuse it; PyTorch's CPU tuning guide reaches the same end with
    jemalloc or tcmalloc. Returns whether the setting took effect.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_mmap_max, m_trim_threshold = -4, -1
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**30))
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        return False


def flush_denormals() -> bool:
    """Treat floats below 1.2e-38 as zero on the CPU (x86 FTZ/DAZ); returns whether it took effect.

    Without batch norm a BNN's logits span hundreds, so softmax probabilities
    underflow into denormal floats, which x86 cores process many times slower.
    With an identity straight-through gradient they reach every backward
    matmul: measured 113 -> 49 ms per step for the Binary Linear Unit MLP when
    set at the start of the process; set in the middle of a process that had
    already run parallel work, it recovered only part of that. Set it early.
    """
    return bool(torch.set_flush_denormal(True))


def tune_cpu() -> None:
    """The process-wide CPU settings that training and the benchmark share (see the two functions)."""
    keep_freed_memory_for_reuse()
    flush_denormals()


def seed_everything(seed: int) -> torch.Generator:
    """Seed every RNG a run touches; return the generator that orders the batches."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


class EagerFallback:
    """Call the compiled model; if compilation fails, warn once and run eagerly from then on."""

    def __init__(self, model: nn.Module, compile_model: bool):
        self.model = model
        self.compiled: Callable | None = None
        if compile_model:
            _quiet_compiler_logs()
            self.compiled = torch.compile(model)

    @property
    def is_compiled(self) -> bool:
        return self.compiled is not None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.compiled is None:
            return self.model(x)
        try:
            return self.compiled(x)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: eager still works
            if isinstance(exc, torch.cuda.OutOfMemoryError):
                raise
            warnings.warn(
                f"torch.compile failed, training eagerly instead: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}",
                RuntimeWarning,
                stacklevel=2,
            )
            self.compiled = None
            return self.model(x)


def _quiet_compiler_logs() -> None:
    """Inductor's informational warnings (no CUDA runtime, ignored profiler hooks) are noise on a CPU."""
    for name in ("torch.utils.cpp_extension", "torch._dynamo", "torch._inductor", "torch._logging"):
        logging.getLogger(name).setLevel(logging.ERROR)
