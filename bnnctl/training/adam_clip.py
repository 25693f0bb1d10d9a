"""Adam and the BNN weight clip in one pass over the latent weights (numba), instead of two.

The BNN paper clips latent weights to [-1, 1] after every step. With torch's
fused Adam that is a second pass over every latent weight (read and write 4
bytes each, after Adam's 16 read and 12 written): measured 9 ms of a 101 ms
step of the 3 x 4096 BNN MLP at batch 100 on this 2-core CPU. Here the clamp
happens in the register that holds the updated weight, so the weights are
read and written once.

The arithmetic (``bnnctl.kernels.adam``) is torch's fused CPU Adam's vector
loop (``FusedAdamKernel.cpp``), operation for operation, with the fused
multiply-adds its compiler made, then p <- clamp(p, -1, 1). torch runs a
scalar loop over the remainder of each thread's chunk, which rounds b2 v and
the sum separately; those few elements per tensor may differ by an ulp, all
others agree with torch's fused Adam followed by the clamp to the bit (tested). The optimizer state keeps torch
Adam's layout (``step``, ``exp_avg``, ``exp_avg_sq``), so checkpoints and
resume states do not change.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bnnctl.kernels.adam import adam_clip_


def _flat(t: torch.Tensor) -> np.ndarray:
    return t.detach().view(-1).numpy()


def adam_clip_step_(params: list[torch.Tensor], opt: torch.optim.Adam, bound: float = 1.0) -> None:
    """Step ``params`` (CPU, contiguous float32, each in ``opt``) with ``opt``'s settings, then clamp, in one pass."""
    groups = {id(p): group for group in opt.param_groups for p in group["params"]}
    for p in params:
        if p.grad is None:
            continue
        group = groups[id(p)]
        state = opt.state[p]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["step"] += 1
        step = float(state["step"])
        beta1, beta2 = group["betas"]
        f32 = np.float32
        adam_clip_(  # the kernel applies the thread policy: a rank or grid worker gets its share of the cores
            _flat(p),
            _flat(p.grad),
            _flat(state["exp_avg"]),
            _flat(state["exp_avg_sq"]),
            f32(-(group["lr"] / (1 - beta1**step))),  # in double first, as torch does
            f32(1 - beta1),
            f32(beta2),
            f32(1 - beta2),
            f32(math.sqrt(1 - beta2**step)),
            f32(group["eps"]),
            f32(group["weight_decay"]),
            f32(bound),
        )


def can_fuse(params: list[torch.Tensor], opt: torch.optim.Optimizer) -> bool:
    """Plain Adam (no amsgrad, maximize, capturable) with 1 - beta1 < 0.5, on contiguous float32 CPU tensors."""
    if type(opt) is not torch.optim.Adam:
        return False
    if any(1 - g["betas"][0] >= 0.5 for g in opt.param_groups):
        return False
    if any(g.get("amsgrad") or g.get("maximize") or g.get("capturable") for g in opt.param_groups):
        return False
    return all(p.device.type == "cpu" and p.dtype == torch.float32 and p.is_contiguous() for p in params)
