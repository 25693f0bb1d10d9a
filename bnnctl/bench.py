"""Training-step speed of the BNN MLP against the float MLP of the same shape.

Both models run the same loop as ``bnnctl train`` (compiled model, fused Adam,
and for the BNN the latent-weight clipping), on random inputs of MNIST's shape,
one after the other in the same process so that the figures are comparable.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from bnnctl.config import compose_train
from bnnctl.layers import clippable_parameters
from bnnctl.models import build_model, get_loss
from bnnctl.train import EagerFallback, clip_, make_optimizer, resolve_device, tune_cpu


def _time_model(model_preset: str, batch_size: int, width: int, steps: int, warmup: int,
                compile_model: bool, device: torch.device) -> dict[str, Any]:
    cfg = compose_train([f"model={model_preset}", f"model.width={width}", "data=synthetic"])
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.binarize, (1, 28, 28), 10).to(device)
    opt = make_optimizer(model, cfg.optimizer, device)
    loss_fn = get_loss(cfg.model.loss)
    forward = EagerFallback(model, compile_model)
    clip_params = clippable_parameters(model)
    x = torch.rand(batch_size, 1, 28, 28, device=device) * 2 - 1
    y = torch.randint(0, 10, (batch_size,), device=device)

    def step() -> None:
        loss = loss_fn(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if clip_params:  # the BNN's weight clipping is part of its step
            clip_(clip_params)

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    elapsed = time.perf_counter() - t0
    return {
        "step_ms": 1000 * elapsed / steps,
        "samples_per_s": batch_size * steps / elapsed,
        "warmup_s": warm,
        "binary_params": sum(p.numel() for p in clip_params),
    }


def bench_train_step(batch_size: int = 100, width: int = 4096, steps: int = 30, warmup: int = 5,
                     compile_model: bool = True, device: str = "auto",
                     progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Samples/s of both models and the ratio of their epoch times (BNN / float)."""
    torch_device = resolve_device(device)
    if torch_device.type == "cpu":
        tune_cpu()  # as bnnctl train does
    result: dict[str, Any] = {
        "batch_size": batch_size, "width": width, "steps": steps, "device": str(torch_device),
        "threads": torch.get_num_threads(), "compiled": compile_model, "torch": torch.__version__,
    }
    for preset in ("bnn_mlp", "mlp_float"):
        progress(f"timing {preset} ({warmup} warm-up + {steps} timed steps)...")
        result[preset] = _time_model(preset, batch_size, width, steps, warmup, compile_model, torch_device)
    result["bnn_over_float"] = result["mlp_float"]["samples_per_s"] / result["bnn_mlp"]["samples_per_s"]
    return result
