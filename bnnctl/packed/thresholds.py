"""Batch norm (and the other float ops before a sign) folded into one integer threshold per unit.

Between a binary layer and the next sign the float model computes, per unit,
sign(f(dot + bias)) with f e.g. batch norm then hard tanh. The dot product of
a layer with K inputs is an integer in [-K, K], so the sign is a function of
an integer. Rather than derive a threshold by algebra (whose rounding would
differ from PyTorch's at the boundary), ``fold`` evaluates the float model's
own ops on every integer in [-K, K], in float32 as the model does, and reads
off where the sign changes. Each op is monotone per unit (batch norm with
gamma < 0 decreasing), so the result is one step: +1 iff dot >= t, or (flip)
iff dot < t. A chain that is not a single step (e.g. a NaN) is refused.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from bnnctl.packed.layers import Thresholds

Chain = Callable[[torch.Tensor], torch.Tensor]  # float (R, C) -> the sign's output (R, C), +1 / -1


class NotAStep(ValueError):
    """The float ops before a sign do not give one threshold per unit."""


def _step(signs: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """signs (V, C) booleans over increasing candidate values -> (t, flip) per unit, or NotAStep."""
    v = len(candidates)
    steps = np.diff(signs.astype(np.int8), axis=0)  # (V - 1, C): +1 where it turns on, -1 off
    rises, falls = (steps > 0).sum(0), (steps < 0).sum(0)
    if ((rises + falls) > 1).any():
        unit = int(np.flatnonzero((rises + falls) > 1)[0])
        raise NotAStep(f"unit {unit}: its sign changes {int(rises[unit] + falls[unit])} times over the dot products")
    t = np.full(signs.shape[1], candidates[-1] + 1, dtype=np.int64)  # never +1
    flip = np.zeros(signs.shape[1], dtype=bool)
    always = signs[0] & (rises + falls == 0)
    t[always] = candidates[0]  # always +1
    rising = rises == 1
    t[rising] = candidates[np.argmax(signs[:, rising], axis=0)]  # first +1
    falling = falls == 1
    last_on = v - 1 - np.argmax(signs[::-1, falling], axis=0)
    t[falling] = candidates[last_on] + 1  # +1 iff dot < t
    flip[falling] = True
    return t.astype(np.int32), flip


def fold(chain: Chain, k: int, bias: np.ndarray | None, units: int) -> Thresholds:
    """The thresholds of sign(chain(dot + bias)) for dot in [-K, K] (float32 throughout, as the float model).

    Memory: one (2K + 1, units) float32 tensor, 134 MB for K = units = 4096.
    """
    candidates = np.arange(-k, k + 1, dtype=np.int64)
    x = torch.from_numpy(candidates.astype(np.float32))[:, None].expand(-1, units)  # exact: |dot| < 2^24
    if bias is not None:
        x = x + torch.from_numpy(bias)  # the float model's one rounding of the bias
    with torch.no_grad():
        signs = chain(x.contiguous()).numpy() > 0  # (2K + 1, units)
    t, flip = _step(signs, candidates)
    return Thresholds(t, flip)
