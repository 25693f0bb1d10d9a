"""Training-step speed: the BNN MLP against the float MLP of the same shape, in four variants, interleaved.

Every variant takes ``Trainer.step``, the step ``bnnctl train`` runs (compiled
model, fused Adam, and for the BNN the latent-weight clipping), on random
inputs of MNIST's shape:

* ``mlp_float``: the float MLP in float32 (the baseline every ratio divides by);
* ``mlp_float_bf16``: the float MLP under bf16 autocast, what a user would pick
  for speed (it changes the float model's numbers);
* ``bnn_fp32``: the BNN with float32 products;
* ``bnn_exact``: the BNN with its +-1 x +-1 products in the fastest exact
  format here (``train.binary_matmul=auto``: int8 on an x86 CPU with VNNI and
  native bf16, ``nn.lowp``).

On a CPU without native bf16 (AVX2 only: no AVX-512 BF16, no AMX) bf16 is
emulated, hundreds of times slower than float32 per product: the bf16
autocast variant is then skipped, with the reason in ``skipped``, and so is
``bnn_exact`` wherever ``auto`` resolves to float32.

The variants are timed round-robin in one process (``bench.timing``), for
each batch size, so that the machine's noise hits them alike; figures are
medians over rounds.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch

from bnnctl.bench.timing import interleaved_medians
from bnnctl.config.load import compose_train
from bnnctl.nn import build_model, lowp
from bnnctl.process import computing
from bnnctl.training import Trainer, resolve_device

VARIANTS = {  # name -> (`bnnctl train` overrides, bf16 autocast)
    "mlp_float": (["model=mlp_float", "train.binary_matmul=fp32"], False),
    "mlp_float_bf16": (["model=mlp_float", "train.binary_matmul=fp32"], True),
    "bnn_fp32": (["model=bnn_mlp", "train.weight_clip=true", "train.binary_matmul=fp32"], False),
    "bnn_exact": (["model=bnn_mlp", "train.weight_clip=true", "train.binary_matmul=auto"], False),
}
BASELINE = "mlp_float"


def _trainer(overrides: list[str], width: int, compile_model: bool, device: torch.device) -> Trainer:
    cfg = compose_train(
        [*overrides, f"model.width={width}", "data=synthetic", f"train.compile={str(compile_model).lower()}"]
    )
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.binarize, (1, 28, 28), 10).to(device)
    return Trainer(cfg, model, device)


def _stepper(trainer: Trainer, batch_size: int, autocast: bool, device: torch.device) -> Callable[[], None]:
    """One training step on a fixed random batch, synchronised, under bf16 autocast when asked."""
    x = torch.rand(batch_size, 1, 28, 28, device=device) * 2 - 1
    y = torch.randint(0, 10, (batch_size,), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step() -> None:
        context = torch.autocast(device.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with context:
            trainer.step(x, y)
        sync()

    return step


def skipped_variants(device: torch.device) -> dict[str, str]:
    """Variants not worth timing on ``device`` -> why: bf16 autocast where the CPU emulates bf16, and the
    exact path where ``auto`` resolves to float32 (it would time ``bnn_fp32`` twice)."""
    skipped = {}
    if device.type == "cpu" and not lowp.cpu_has_native_bf16():
        skipped["mlp_float_bf16"] = f"{lowp.bf16_emulated_reason()}, hundreds of times slower per product than float32"
    if lowp.resolve_format("auto", device) == "fp32":
        skipped["bnn_exact"] = (
            f"train.binary_matmul=auto is fp32 on this {device.type} (missing: "
            f"{', '.join(lowp.missing_int8_units()) or 'an exact low-precision product'}): the same as bnn_fp32"
        )
    return skipped


def bench_train_step(
    batch_sizes: tuple[int, ...] = (100, 256),
    width: int = 4096,
    rounds: int = 7,
    warmup: int = 3,
    compile_model: bool = True,
    device: str = "auto",
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Step time and samples/s of each variant at each batch size, and each one's ratio to the float32 float MLP."""
    torch_device = resolve_device(device)
    with computing(flush_denormals=torch_device.type == "cpu"):  # as bnnctl train does; restored after
        return _bench(batch_sizes, width, rounds, warmup, compile_model, torch_device, progress)


def _bench(
    batch_sizes: tuple[int, ...],
    width: int,
    rounds: int,
    warmup: int,
    compile_model: bool,
    torch_device: torch.device,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    skipped = skipped_variants(torch_device)
    variants = {name: spec for name, spec in VARIANTS.items() if name not in skipped}
    trainers = {}
    for name, (overrides, _) in variants.items():
        progress(f"building {name} (784-{width}x3-10)...")
        trainers[name] = _trainer(overrides, width, compile_model, torch_device)
    rows = []
    for batch_size in batch_sizes:
        steps = {name: _stepper(trainers[name], batch_size, variants[name][1], torch_device) for name in variants}
        progress(f"batch {batch_size}: {warmup} warm-up steps each (compilation happens here), then {rounds} rounds")
        for step in steps.values():
            for _ in range(warmup):
                step()
        seconds = interleaved_medians(steps, rounds, min_sample_s=0.2)
        for name, s in seconds.items():
            rows.append(
                {
                    "variant": name,
                    "batch_size": batch_size,
                    "step_ms": 1000 * s,
                    "samples_per_s": batch_size / s,
                    "vs_float32_mlp": s / seconds[BASELINE],
                    "binary_matmul": trainers[name].product_format,
                }
            )
    return {
        "width": width,
        "rounds": rounds,
        "device": str(torch_device),
        "threads": torch.get_num_threads(),
        "compiled": compile_model,
        "torch": torch.__version__,
        "rows": rows,
        "skipped": skipped,
        "binary_params": sum(p.numel() for p in trainers["bnn_fp32"].clip_params),
    }
