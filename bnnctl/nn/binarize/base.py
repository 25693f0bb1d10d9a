"""What every binarizer is: a forward map with a surrogate gradient, the set its outputs lie in, its bits."""

from __future__ import annotations

import enum
import inspect
import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch


class OutputSet(enum.StrEnum):
    """The values a binarizer's output takes."""

    BINARY = "binary"  # exactly {-1, +1}: packable into bits, XNOR-popcount exact
    SCALED_BINARY = "scaled_binary"  # {-a, +a} with a real scale a per block
    SCALED_TERNARY = "scaled_ternary"  # {-a, 0, +a}: a scaled sign that maps 0 to 0
    TERNARY = "ternary"  # {-1, 0, +1}
    REAL = "real"  # unchanged real values


class Binarizer(ABC):
    """A forward map with its surrogate gradient and what it outputs. Subclasses register by ``name``."""

    name: ClassVar[str]
    output: ClassVar[OutputSet]
    bits: ClassVar[float]  # storage bits per element once deployed
    clips_latent: ClassVar[bool]  # latent weights into it are clipped to [-1, 1] by train.weight_clip

    def __init__(self) -> None:
        """No parameters; a subclass with parameters takes them as keyword arguments stored as attributes."""

    @abstractmethod
    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        """The binarized tensor; ``training`` selects e.g. stochastic vs deterministic forward."""

    @property
    def params(self) -> dict[str, Any]:
        """The parameters as ``__init__`` takes them (what the config's ``params`` holds)."""
        return {
            name: getattr(self, name) for name in inspect.signature(type(self).__init__).parameters if name != "self"
        }

    @property
    def exact_binary(self) -> bool:
        """Exactly +-1: a layer may be computed with XNOR-popcount and stored as bits."""
        return self.output is OutputSet.BINARY

    @property
    def quantizes(self) -> bool:
        """Anything but the identity: its output is not the latent real tensor."""
        return self.output is not OutputSet.REAL

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Binarizer) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(json.dumps(self.spec(), sort_keys=True, default=str))

    def for_layer(self, index: int, count: int) -> Binarizer:
        """The binarizer of the ``index``-th of ``count`` layers that use it (a per-layer parameter picks its entry)."""
        return self

    def storage_bits(self, rows: int, row_length: int) -> float:
        """Bits to store a (rows, row_length) tensor once deployed (Hadamard adds its block scales)."""
        return rows * row_length * self.bits
