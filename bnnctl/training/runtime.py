"""Where and how a run computes: the device, process-wide CPU tuning, seeding, the compile wrapper."""

from __future__ import annotations

import random
import re
import warnings
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from bnnctl.config.schema import DEVICE_PATTERN
from bnnctl.errors import ConfigError
from bnnctl.process import quiet_compiler_logs


def resolve_device(name: str) -> torch.device:
    """'auto' means CUDA when there is a GPU, else the CPU; an absent GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(DEVICE_PATTERN, name):
        raise ConfigError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but no CUDA device is available (use train.device=cpu or auto)")
    return torch.device(name)


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
            quiet_compiler_logs()
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
