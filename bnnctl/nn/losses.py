"""Losses by name (``model.loss``): the papers' outputs."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from bnnctl.errors import ConfigError

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def square_hinge_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean(max(0, 1 - t * y)^2) with one-hot targets mapped to +-1 (the BNN paper's L2-SVM output)."""
    t = F.one_hot(target, logits.shape[1]).to(logits.dtype) * 2 - 1
    return (1 - t * logits).clamp(min=0).pow(2).mean()


LOSSES: dict[str, Loss] = {
    "cross_entropy": F.cross_entropy,
    "square_hinge": square_hinge_loss,
}


def get_loss(name: str) -> Loss:
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(f"unknown model.loss {name!r} (known: {', '.join(LOSSES)})") from None
