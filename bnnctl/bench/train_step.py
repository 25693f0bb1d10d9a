"""Training-step speed of the BNN MLP against the float MLP of the same shape.

Both models take ``Trainer.step``, the step ``bnnctl train`` runs (compiled
model, fused Adam, and for the BNN the latent-weight clipping), on random
inputs of MNIST's shape, one after the other in the same process so that the
figures are comparable.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from bnnctl.config import compose_train
from bnnctl.nn import build_model
from bnnctl.training import Trainer, resolve_device, tune_cpu

PRESETS = {  # what each benchmarked model is, as `bnnctl train` overrides
    "bnn_mlp": ["model=bnn_mlp", "train.weight_clip=true"],
    "mlp_float": ["model=mlp_float"],
}


def _time_model(
    preset: str, batch_size: int, width: int, steps: int, warmup: int, compile_model: bool, device: torch.device
) -> dict[str, Any]:
    cfg = compose_train(
        [*PRESETS[preset], f"model.width={width}", "data=synthetic", f"train.compile={str(compile_model).lower()}"]
    )
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.binarize, (1, 28, 28), 10).to(device)
    trainer = Trainer(cfg, model, device)
    x = torch.rand(batch_size, 1, 28, 28, device=device) * 2 - 1
    y = torch.randint(0, 10, (batch_size,), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    t0 = time.perf_counter()
    for _ in range(warmup):
        trainer.step(x, y)
    sync()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.step(x, y)
    sync()
    elapsed = time.perf_counter() - t0
    return {
        "step_ms": 1000 * elapsed / steps,
        "samples_per_s": batch_size * steps / elapsed,
        "warmup_s": warm,
        "binary_params": sum(p.numel() for p in trainer.clip_params),
    }


def bench_train_step(
    batch_size: int = 100,
    width: int = 4096,
    steps: int = 30,
    warmup: int = 5,
    compile_model: bool = True,
    device: str = "auto",
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Samples/s of both models and the ratio of their epoch times (BNN / float)."""
    torch_device = resolve_device(device)
    if torch_device.type == "cpu":
        tune_cpu()  # as bnnctl train does
    result: dict[str, Any] = {
        "batch_size": batch_size,
        "width": width,
        "steps": steps,
        "device": str(torch_device),
        "threads": torch.get_num_threads(),
        "compiled": compile_model,
        "torch": torch.__version__,
    }
    for preset in PRESETS:
        progress(f"timing {preset} ({warmup} warm-up + {steps} timed steps)...")
        result[preset] = _time_model(preset, batch_size, width, steps, warmup, compile_model, torch_device)
    result["bnn_over_float"] = result["mlp_float"]["samples_per_s"] / result["bnn_mlp"]["samples_per_s"]
    return result
