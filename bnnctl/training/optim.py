"""Optimisation: Adam with the BNN code's per-layer groups, learning-rate schedules, clipping."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

from bnnctl.config.schema import OptimizerConfig
from bnnctl.nn import binary_layers
from bnnctl.nn.layers import _BinaryMixin


def glorot_lr_scale(layer: _BinaryMixin) -> float:
    """1/sqrt(1.5/(fan_in + fan_out)): the BNN Theano code's per-layer step multiplier for binary weights."""
    w = layer.weight
    receptive = math.prod(w.shape[2:]) if w.dim() > 2 else 1
    fan_in, fan_out = w.shape[1] * receptive, w.shape[0] * receptive
    return 1.0 / math.sqrt(1.5 / (fan_in + fan_out))


def make_optimizer(model: nn.Module, o: OptimizerConfig, device: torch.device) -> torch.optim.Adam:
    """Adam over all parameters; binary layers in their own groups when Glorot scaling is on.

    Fused Adam (one kernel per parameter) is what keeps a BNN step close to a
    float step: its latent weights are as large as the float net's weights.
    """
    if o.glorot_lr_scale:
        scaled = {id(layer.weight): glorot_lr_scale(layer) for layer in binary_layers(model)}
        groups = [
            {"params": [p], "lr": o.lr * scaled[id(p)], "lr_scale": scaled[id(p)]}
            for p in model.parameters()
            if id(p) in scaled
        ]
        groups.append({"params": [p for p in model.parameters() if id(p) not in scaled], "lr_scale": 1.0})
    else:
        groups = [{"params": list(model.parameters()), "lr_scale": 1.0}]
    kwargs: dict[str, Any] = dict(lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)
    if device.type in ("cpu", "cuda"):
        kwargs["fused"] = True
    return torch.optim.Adam(groups, **kwargs)


def lr_at_epoch(o: OptimizerConfig, epoch: int, epochs: int) -> float:
    """Learning rate for a 0-based epoch: constant, or lr -> lr_end over the run (exponential or cosine)."""
    if o.schedule == "constant" or epochs == 1:
        return o.lr
    progress = epoch / (epochs - 1)
    if o.schedule == "exponential":
        return o.lr * (o.lr_end / o.lr) ** progress
    return o.lr_end + (o.lr - o.lr_end) * 0.5 * (1 + math.cos(math.pi * progress))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def clip_(tensors: list[torch.Tensor], bound: float = 1.0) -> None:
    """Clamp each tensor elementwise to [-bound, bound] in place, one pass per tensor."""
    with torch.no_grad():
        for t in tensors:
            t.clamp_(-bound, bound)


def zero_positive_(tensors: list[torch.Tensor]) -> None:
    """Set every positive element to 0 in place: the ablation report's ``--gradclip`` on weight and bias gradients.

    Its code does ``grad_weight[grad_weight > 0] = 0`` (github.com/bstadt/binary-nn-pytorch), so only
    steps that increase a latent weight survive (Adam steps against the gradient).
    """
    with torch.no_grad():
        for t in tensors:
            t.clamp_(max=0.0)
