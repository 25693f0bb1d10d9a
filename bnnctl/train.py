"""Training and evaluation: ``fit(cfg, run) -> summary`` and ``evaluate(model, split)``.

No printing here: progress goes to a ``TrainObserver`` that the caller chooses
(the CLI draws rich progress bars on a terminal and plain lines elsewhere).
Every finished epoch is appended to the run's metrics file at once, so an
interrupted run keeps what it finished; ``DONE`` is written only at the end.
"""

from __future__ import annotations

import logging
import math
import random
import re
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from bnnctl.augment import AugmentSpec, augment_batch
from bnnctl.config import DEVICE_PATTERN, OptimizerConfig, TrainConfig, to_dict, to_yaml
from bnnctl.data import PIXEL_BOUNDS, Dataset, Split, iterate_batches, load_dataset
from bnnctl.errors import ConfigError
from bnnctl.layers import binary_layers, clippable_parameters
from bnnctl.models import build_model, get_loss, model_size_bytes
from bnnctl.runs import Run

log = logging.getLogger(__name__)


class TrainObserver:
    """Receives progress; the default does nothing. Subclass to draw or log it."""

    def on_fit_start(self, *, epochs: int, steps_per_epoch: int, run: Run | None, device: str) -> None: ...

    def on_step(self, *, epoch: int, step: int, loss: float | None) -> None: ...

    def on_epoch_end(self, record: dict[str, Any]) -> None: ...

    def on_fit_end(self, summary: dict[str, Any]) -> None: ...


def resolve_device(name: str) -> torch.device:
    """'auto' means CUDA when there is a GPU, else the CPU; an absent GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(DEVICE_PATTERN, name):
        raise ConfigError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but no CUDA device is available (use train.device=cpu or auto)")
    return torch.device(name)


def keep_freed_memory_for_reuse() -> bool:
    """Stop glibc from returning large freed blocks to the OS (Linux, CPU training).

    A training step allocates and frees the same large tensors every time
    (binarized weights, gradients: 64 MB each for a 4096x4096 layer). glibc
    serves blocks that large with mmap and unmaps them on free, so every step
    page-faults all of that memory in again, which measured about 1.6x the
    cost of the copy itself here. Keeping freed memory in the heap lets the
    next step reuse it; PyTorch's CPU tuning guide reaches the same end with
    jemalloc or tcmalloc. Returns whether the setting took effect.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_mmap_max, m_trim_threshold = -4, -1
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**30))
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        return False


def flush_denormals() -> bool:
    """Treat floats below 1.2e-38 as zero on the CPU (x86 FTZ/DAZ); returns whether it took effect.

    Without batch norm a BNN's logits span hundreds, so softmax probabilities
    underflow into denormal floats, which x86 cores process many times slower.
    With an identity straight-through gradient they reach every backward
    matmul: measured 113 -> 49 ms per step for the Binary Linear Unit MLP when
    set at the start of the process; set in the middle of a process that had
    already run parallel work, it recovered only part of that. Set it early.
    """
    return bool(torch.set_flush_denormal(True))


def tune_cpu() -> None:
    """The process-wide CPU settings that training and the benchmark share (see the two functions)."""
    keep_freed_memory_for_reuse()
    flush_denormals()


def seed_everything(seed: int) -> torch.Generator:
    """Seed every RNG a run touches; return the generator that orders the batches."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def glorot_lr_scale(layer: nn.Module) -> float:
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
        groups = [{"params": [p], "lr": o.lr * scaled[id(p)], "lr_scale": scaled[id(p)]}
                  for p in model.parameters() if id(p) in scaled]
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


class EagerFallback:
    """Call the compiled model; if compilation fails, warn once and run eagerly from then on."""

    def __init__(self, model: nn.Module, compile_model: bool):
        self.model = model
        self.compiled: Callable | None = None
        if compile_model:
            _quiet_compiler_logs()
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
            if isinstance(exc, (KeyboardInterrupt, torch.cuda.OutOfMemoryError)):
                raise
            warnings.warn(f"torch.compile failed, training eagerly instead: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}", RuntimeWarning, stacklevel=2)
            self.compiled = None
            return self.model(x)


def _quiet_compiler_logs() -> None:
    """Inductor's informational warnings (no CUDA runtime, ignored profiler hooks) are noise on a CPU."""
    for name in ("torch.utils.cpp_extension", "torch._dynamo", "torch._inductor", "torch._logging"):
        logging.getLogger(name).setLevel(logging.ERROR)


@torch.no_grad()
def evaluate(model: Callable[[torch.Tensor], torch.Tensor] | nn.Module, split: Split, batch_size: int,
             loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
             module: nn.Module | None = None) -> dict[str, float]:
    """Accuracy (and mean loss) of ``model`` on ``split`` in evaluation mode."""
    module = module if module is not None else model  # the nn.Module whose mode to switch
    was_training = module.training
    module.eval()
    correct, loss_sum, n = 0, 0.0, 0
    for x, y in iterate_batches(split, batch_size):
        out = model(x)
        correct += int((out.argmax(1) == y).sum())
        if loss_fn is not None:
            loss_sum += float(loss_fn(out, y)) * len(y)
        n += len(y)
    module.train(was_training)
    metrics = {"acc": correct / max(n, 1), "n": n}
    if loss_fn is not None:
        metrics["loss"] = loss_sum / max(n, 1)
    return metrics


def _steps_per_epoch(n_train: int, cfg: TrainConfig) -> int:
    steps = n_train // cfg.train.batch_size
    if steps == 0:
        raise ConfigError(f"train.batch_size={cfg.train.batch_size} exceeds the {n_train} training examples")
    return min(steps, cfg.train.max_steps_per_epoch) if cfg.train.max_steps_per_epoch else steps


def run_identity(cfg: TrainConfig) -> dict[str, Any]:
    """What makes two runs the same experiment: everything but names and where files live."""
    d = to_dict(cfg)
    for key in ("name", "runs_dir", "choices"):
        d.pop(key, None)
    d["data"].pop("root", None)
    d["data"].pop("download", None)
    d["train"].pop("threads", None)  # how many cores a run used does not change what it computes
    return d


@dataclass
class _Training:
    """What one training run holds while it runs (built once by ``fit``)."""

    cfg: TrainConfig
    model: nn.Module
    forward: EagerFallback
    opt: torch.optim.Optimizer
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    clip_params: list[torch.Tensor]
    data: Dataset
    batch_gen: torch.Generator
    steps: int
    run: Run | None
    observer: TrainObserver
    augment: AugmentSpec | None = None
    augment_gen: torch.Generator | None = None
    iteration: int = 0

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step with the tweaks the config asks for; returns (loss, logits)."""
        out = self.forward(x)
        loss = self.loss_fn(out, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.train.grad_clip:
            clip_([p.grad for p in self.model.parameters() if p.grad is not None])
        self.opt.step()
        if self.cfg.train.weight_clip:
            clip_(self.clip_params)
        self.iteration += 1
        return loss.detach(), out.detach()

    def validate_every_n(self, epoch: int) -> float:
        """Log validation accuracy every ``train.eval_every`` iterations; returns the seconds it took."""
        every = self.cfg.train.eval_every
        if not every or self.iteration % every or self.data.val is None:
            return 0.0
        t0 = time.perf_counter()
        val = evaluate(self.forward, self.data.val, self.cfg.train.eval_batch_size, module=self.model)
        if self.run is not None:
            self.run.log_metrics({"kind": "iter", "epoch": epoch + 1, "iteration": self.iteration, "val_acc": val["acc"]})
        return time.perf_counter() - t0

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training set; loss and accuracy stay on the device until the end."""
        device = self.data.train.x.device
        self.model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen, eval_time = 0, 0.0
        batches = iterate_batches(self.data.train, self.cfg.train.batch_size, shuffle=True,
                                  generator=self.batch_gen, drop_last=True)
        for step, (x, y) in enumerate(batches):
            if step >= self.steps:
                break
            if self.augment is not None:
                x = augment_batch(x, self.augment, self.augment_gen)
            loss, out = self.step(x, y)
            loss_sum += loss * len(y)
            correct += (out.argmax(1) == y).sum()
            seen += len(y)
            report = step % 20 == 0 or step == self.steps - 1  # a host sync every 20 steps, not every step
            self.observer.on_step(epoch=epoch, step=step + 1, loss=float(loss_sum) / seen if report else None)
            eval_time += self.validate_every_n(epoch)
        train_time = time.perf_counter() - t0 - eval_time
        return {"train_loss": float(loss_sum) / seen, "train_acc": int(correct) / seen,
                "epoch_time_s": train_time, "samples_per_s": seen / train_time}

    def evaluate_epoch(self) -> dict[str, Any]:
        """Validation and test loss and accuracy, in evaluation mode."""
        t0 = time.perf_counter()
        record: dict[str, Any] = {}
        for name, split in (("val", self.data.val), ("test", self.data.test)):
            if split is not None:
                m = evaluate(self.forward, split, self.cfg.train.eval_batch_size, self.loss_fn, module=self.model)
                record[f"{name}_loss"], record[f"{name}_acc"] = m["loss"], m["acc"]
        record["eval_time_s"] = time.perf_counter() - t0
        return record


def _prepare(cfg: TrainConfig, run: Run | None, observer: TrainObserver, overrides: list[str],
             dataset: Dataset | None) -> _Training:
    """Device, run files, seeds, data, model and optimizer, in the order that makes runs repeat."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    if device.type == "cpu":
        tune_cpu()
    if run is not None:
        run.write_config(to_yaml(cfg), overrides)
        run.write_environment(str(device))
    batch_gen = seed_everything(cfg.train.seed)
    data = dataset or load_dataset(cfg.data, device)
    model = build_model(cfg.model, cfg.binarize, data.input_shape, data.num_classes).to(device)
    return _Training(
        cfg=cfg, model=model, forward=EagerFallback(model, cfg.train.compile),
        opt=make_optimizer(model, cfg.optimizer, device), loss_fn=get_loss(cfg.model.loss),
        clip_params=clippable_parameters(model), data=data, batch_gen=batch_gen,
        steps=_steps_per_epoch(len(data.train), cfg), run=run, observer=observer,
        augment=augment_spec(cfg), augment_gen=torch.Generator().manual_seed(cfg.train.seed + 7919),
    )


def augment_spec(cfg: TrainConfig) -> AugmentSpec | None:
    """The augmentation of training batches, or None when ``data.augment`` is off."""
    d = cfg.data
    if not d.augment:
        return None
    low, high = PIXEL_BOUNDS[d.pixel_range]
    return AugmentSpec(d.augment_rotation, d.augment_shift, d.augment_jitter, low, high)


def fit(cfg: TrainConfig, run: Run | None = None, observer: TrainObserver | None = None,
        overrides: list[str] | None = None, dataset: Dataset | None = None) -> dict[str, Any]:
    """Train the model ``cfg`` describes; log to ``run`` (if any) and return the summary."""
    observer = observer or TrainObserver()
    t_start = time.perf_counter()
    t = _prepare(cfg, run, observer, overrides or [], dataset)
    epochs = cfg.train.epochs
    observer.on_fit_start(epochs=epochs, steps_per_epoch=t.steps, run=run, device=str(t.data.train.x.device))
    history: list[dict[str, Any]] = []
    for epoch in range(epochs):
        lr = lr_at_epoch(cfg.optimizer, epoch, epochs)
        set_lr(t.opt, lr)
        record = {"kind": "epoch", "epoch": epoch + 1, "lr": lr, **t.train_epoch(epoch)}
        record.update(iteration=t.iteration, **t.evaluate_epoch())
        history.append(record)
        if run is not None:
            run.log_metrics(record)  # at once: an interrupted run keeps every finished epoch
        observer.on_epoch_end(record)

    summary = summarize(cfg, history, t.model, str(t.data.train.x.device), t.forward.is_compiled,
                        time.perf_counter() - t_start, t.data)
    if run is not None:
        run.save_checkpoint({
            "format": "bnnctl-checkpoint-v1", "model": t.model.state_dict(), "epoch": epochs,
            "input_shape": list(t.data.input_shape), "num_classes": t.data.num_classes,
        })
        run.write_summary(summary)
        _plot_curves(run, history)
        run.mark_done()
    observer.on_fit_end(summary)
    return summary


def _plot_curves(run: Run, history: list[dict[str, Any]]) -> None:
    from bnnctl.plots import plot_learning_curves

    plot_learning_curves(history, run.metrics(), run.path / "curves.png", title=run.name)


def summarize(cfg: TrainConfig, history: list[dict[str, Any]], model: nn.Module, device: str,
              compiled: bool, total_time: float, data: Dataset) -> dict[str, Any]:
    """The run's headline numbers; test accuracy is also read at the best validation epoch (the papers' rule)."""
    last = history[-1]
    has_val = "val_acc" in last
    best = max(history, key=lambda r: r["val_acc"]) if has_val else last
    # The first epoch includes compilation; later epochs show the steady speed.
    steady = [r["epoch_time_s"] for r in history[1:]] or [history[0]["epoch_time_s"]]
    size = model_size_bytes(model)
    return {
        "name": cfg.run_name,
        "model": cfg.model.name,
        "data": cfg.data.name,
        "binarize_weights": cfg.binarize.weights,
        "binarize_activations": cfg.binarize.activations,
        "epochs": len(history),
        "best_val_acc": best.get("val_acc"),
        "best_epoch": best["epoch"],
        "test_acc_at_best_val": best["test_acc"],
        "final_val_acc": last.get("val_acc"),
        "final_test_acc": last["test_acc"],
        "final_train_loss": last["train_loss"],
        "epoch_time_s": statistics.median(steady),
        "first_epoch_time_s": history[0]["epoch_time_s"],
        "samples_per_s": statistics.median([r["samples_per_s"] for r in history[1:]] or [history[0]["samples_per_s"]]),
        "total_time_s": total_time,
        "device": device,
        "compiled": compiled,
        "data_source": data.source,
        **{f"model_{k}": v for k, v in size.items()},
    }
