"""The float ops of a packed model: what stays real (first and last layers, batch norm, the head), run as PyTorch runs them.

Each op calls the same functional PyTorch op as the float model's module
does, on the same values, so its output is bit for bit the float model's
(that is what makes the packed predictions identical, not merely close).
Binary weights computed in float (a first layer on real pixels) are stored
as bits and unpacked to +-1 once at load.

Every op is a record: a ``kind``, JSON attributes and numpy arrays
(``export`` writes and reads them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from bnnctl.kernels.bits import pack_bits, unpack_signs
from bnnctl.nn.binarize import sign
from bnnctl.nn.layers import add_bias
from bnnctl.packed.layers import Bits


@dataclass
class StoredWeight:
    """A weight tensor as the file keeps it: +-1 as bits (``signs``) or float32 (``values``)."""

    shape: tuple[int, ...]
    signs: np.ndarray | None = None  # (rows, ceil(fan_in / 64)) words, rows = shape[0]
    values: np.ndarray | None = None

    @classmethod
    def of(cls, weight: torch.Tensor, binary: bool) -> StoredWeight:
        w = weight.detach().cpu().float()
        if binary:
            return cls(tuple(w.shape), signs=pack_bits(w.reshape(w.shape[0], -1).numpy() > 0))
        return cls(tuple(w.shape), values=w.numpy().copy())

    def tensor(self) -> torch.Tensor:
        if self.signs is not None:
            fan_in = int(np.prod(self.shape[1:]))
            return torch.from_numpy(unpack_signs(self.signs, fan_in).reshape(self.shape))
        return torch.from_numpy(np.asarray(self.values, dtype=np.float32))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        name, array = ("signs", self.signs) if self.signs is not None else ("values", self.values)
        assert array is not None  # of() and load() set one of the two
        return {f"{prefix}.{name}": array}

    def attrs(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "binary": self.signs is not None}

    @classmethod
    def load(cls, attrs: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str) -> StoredWeight:
        if attrs["binary"]:
            return cls(tuple(attrs["shape"]), signs=arrays[f"{prefix}.signs"])
        return cls(tuple(attrs["shape"]), values=arrays[f"{prefix}.values"])


@dataclass
class FloatOp:
    """A float op: attributes, optional arrays, and a call on a float tensor."""

    kind: ClassVar[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Ops with weights unpack them here, once."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def tensor(self, name: str) -> torch.Tensor | None:
        array = self.arrays.get(name)
        return None if array is None else torch.from_numpy(np.asarray(array))


class Linear(FloatOp):
    """F.linear with a stored weight; the bias after the product (BinaryLinear) or inside it (nn.Linear)."""

    kind = "linear"

    def __post_init__(self) -> None:
        self.weight = StoredWeight.load(self.attrs["weight"], self.arrays, "weight").tensor()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.attrs["bias_after_product"]:
            return add_bias(F.linear(x, self.weight), self.tensor("bias"))
        return F.linear(x, self.weight, self.tensor("bias"))


class Conv2d(FloatOp):
    """F.conv2d with a stored weight (zero padding), the bias after the product as BinaryConv2d adds it."""

    kind = "conv2d"

    def __post_init__(self) -> None:
        self.weight = StoredWeight.load(self.attrs["weight"], self.arrays, "weight").tensor()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x, self.weight, None, self.attrs["stride"], self.attrs["padding"])
        bias = self.tensor("bias")
        return out if bias is None else out + bias[:, None, None]


class BatchNorm(FloatOp):
    """Batch norm at evaluation: F.batch_norm with the running statistics, as nn.BatchNorm1d/2d in eval mode."""

    kind = "batch_norm"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.tensor("running_mean"), self.tensor("running_var"), self.tensor("weight"), self.tensor("bias"),
            False, 0.0, self.attrs["eps"],
        )  # fmt: skip


class MaxPool2d(FloatOp):
    kind = "max_pool2d"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        a = self.attrs
        return F.max_pool2d(x, a["kernel"], a["stride"], a["padding"], a["dilation"], ceil_mode=a["ceil_mode"])


class Pointwise(FloatOp):
    """Parameter-free ops: hardtanh, relu, softmax, flatten, sign on floats (``attrs["fn"]`` names it)."""

    kind = "pointwise"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        a, fn = self.attrs, self.attrs["fn"]
        if fn == "hardtanh":
            return F.hardtanh(x, a["min_val"], a["max_val"])
        if fn == "relu":
            return F.relu(x)
        if fn == "softmax":
            return F.softmax(x, dim=a["dim"])
        if fn == "sign":
            return sign(x)
        if fn == "flatten":
            return torch.flatten(x, a["start_dim"], a["end_dim"])
        raise ValueError(f"unknown pointwise op {fn!r}")


class Sign(FloatOp):
    """Float -> Bits: the +-1 activation (x >= 0 -> +1, as every exactly binary binarizer at evaluation)."""

    kind = "sign"

    def __call__(self, x: torch.Tensor) -> Bits:  # type: ignore[override]
        return Bits.from_float(x)


class Unpack(FloatOp):
    """Bits -> the +-1 float tensor (for a float op that follows a sign: a float-weight last layer)."""

    kind = "unpack"

    def __call__(self, x: Bits) -> torch.Tensor:  # type: ignore[override]
        return x.to_float()


class FlattenBits(FloatOp):
    """nn.Flatten on packed activations: the words stay, the shape they stand for flattens."""

    kind = "flatten_bits"

    def __call__(self, x: Bits) -> Bits:  # type: ignore[override]
        return x.flatten()


FLOAT_OPS: dict[str, type[FloatOp]] = {
    cls.kind: cls for cls in (Linear, Conv2d, BatchNorm, MaxPool2d, Pointwise, Sign, Unpack, FlattenBits)
}
