"""The training step and the epoch loop around it: ``Trainer.step`` is what ``bnnctl bench train`` times.

No printing here: progress goes to a ``TrainObserver`` that the caller chooses
(the CLI draws rich progress bars on a terminal and plain lines elsewhere).
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any, Callable, Iterable

import torch
import torch.nn as nn

from bnnctl.config.schema import TrainConfig
from bnnctl.data import AugmentSpec, Split, augment_batch, iterate_batches
from bnnctl.distributed.ddp import communication_record, sum_over_ranks, wrap_for_data_parallel
from bnnctl.nn import clippable_parameters, get_loss, quantized_parameters
from bnnctl.nn.lowp import resolve_format, slow_format_warning
from bnnctl.nn.products import set_binary_matmul
from bnnctl.training.adam_clip import adam_clip_step_, can_fuse
from bnnctl.training.observer import TrainObserver
from bnnctl.training.optim import clip_, lr_at_epoch, make_optimizer, set_lr, zero_positive_
from bnnctl.training.runtime import EagerFallback

if TYPE_CHECKING:
    from bnnctl.distributed import HookState


@torch.no_grad()
def evaluate(
    model: Callable[[torch.Tensor], torch.Tensor] | nn.Module,
    split: Split,
    batch_size: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    module: nn.Module | None = None,
) -> dict[str, float]:
    """Accuracy (and mean loss) of ``model`` on ``split`` in evaluation mode."""
    if module is None:  # the nn.Module whose mode to switch: the model itself
        assert isinstance(model, nn.Module), "a model that is not a module comes with its module"
        module = model
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


class Trainer:
    """A model with its optimizer, loss and the config's tweaks (gradient and weight clipping).

    ``step`` is one optimizer step; ``train_epoch`` and ``evaluate_epoch`` are
    what ``fit`` repeats. Nothing here knows about run folders.
    """

    def __init__(self, cfg: TrainConfig, model: nn.Module, device: torch.device, data_parallel: bool = False):
        self.cfg = cfg
        self.model = model
        # +-1 x +-1 products in an exact low-precision format (before compiling: the format is baked in).
        self.binary_matmul = resolve_format(cfg.train.binary_matmul, device)
        self.low_precision_layers = set_binary_matmul(model, self.binary_matmul)
        if self.low_precision_layers and (slow := slow_format_warning(self.binary_matmul, device)) is not None:
            warnings.warn(slow, RuntimeWarning, stacklevel=2)
        self.forward = EagerFallback(model, cfg.train.compile)  # evaluation: this rank alone, no DDP
        # Training steps go through DDP and its gradient hook when the process group is up (data_parallel).
        self.comm: HookState | None = None
        self.train_forward = self.forward
        if data_parallel:
            ddp, self.comm = wrap_for_data_parallel(model, device, cfg.dist.compress.value, cfg.dist.beta)
            self.train_forward = EagerFallback(ddp, cfg.train.compile)
        self.opt = make_optimizer(model, cfg.optimizer, device)
        self.loss_fn = get_loss(cfg.model.loss)
        self.clip_params = clippable_parameters(model) if cfg.train.weight_clip else []
        # Adam and the clip in one pass over the latent weights (training.adam_clip), the same to the bit.
        self.fused_clip = (
            bool(self.clip_params) and cfg.train.weight_clip_at == "after_step" and can_fuse(self.clip_params, self.opt)
        )
        self.binary_params = quantized_parameters(model)
        self.iteration = 0

    @property
    def product_format(self) -> str:
        """The format the +-1 x +-1 products actually use: ``binary_matmul`` where a layer takes it, else fp32."""
        return self.binary_matmul if self.low_precision_layers else "fp32"

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step; returns (loss, logits), detached and still on the device."""
        out = self.train_forward(x)
        loss = self.loss_fn(out, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.train.grad_clip:
            self._change_gradients()
        if self.fused_clip:
            self._step_with_fused_clip()
        else:
            clip_before = self.cfg.train.weight_clip_at == "before_step"
            if self.clip_params and clip_before:
                clip_(self.clip_params)  # the report's order: the step may take them past 1 again
            self.opt.step()
            if self.clip_params and not clip_before:
                clip_(self.clip_params)
        self.iteration += 1
        return loss.detach(), out.detach()

    def _step_with_fused_clip(self) -> None:
        """torch's fused Adam on the other parameters (it skips those without a gradient), then Adam + clip."""
        grads = [p.grad for p in self.clip_params]
        for p in self.clip_params:
            p.grad = None
        self.opt.step()
        for p, grad in zip(self.clip_params, grads, strict=True):
            p.grad = grad
        adam_clip_step_(self.clip_params, self.opt)

    def _change_gradients(self) -> None:
        """``train.grad_clip``: clamp every gradient to [-1, 1], or zero the binary layers' positive ones."""
        if self.cfg.train.grad_clip_mode == "zero_positive":
            zero_positive_([p.grad for p in self.binary_params if p.grad is not None])
        else:
            clip_([p.grad for p in self.model.parameters() if p.grad is not None])

    def start_epoch(self, epoch: int) -> float:
        """Set the scheduled learning rate of a 0-based epoch; returns it."""
        lr = lr_at_epoch(self.cfg.optimizer, epoch, self.cfg.train.epochs)
        set_lr(self.opt, lr)
        return lr

    def train_epoch(
        self,
        batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
        steps: int,
        *,
        epoch: int,
        observer: TrainObserver,
        augment: AugmentSpec | None = None,
        augment_gen: torch.Generator | None = None,
        after_step: Callable[[int], float] = lambda epoch: 0.0,
    ) -> dict[str, Any]:
        """Up to ``steps`` steps over ``batches``; loss and accuracy stay on the device until the end.

        ``after_step(epoch)`` runs after every step and returns the seconds it
        spent (periodic validation), which training time does not count.
        """
        self.model.train()
        t0 = time.perf_counter()
        device = next(self.model.parameters()).device
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen, taken, side_time = 0, 0, 0.0
        for step, (x, y) in enumerate(batches):
            if step >= steps:
                break
            if augment is not None:
                x = augment_batch(x, augment, augment_gen)
            loss, out = self.step(x, y)
            loss_sum += loss * len(y)
            correct += (out.argmax(1) == y).sum()
            seen += len(y)
            taken += 1
            report = step % 20 == 0 or step == steps - 1  # a host sync every 20 steps, not every step
            observer.on_step(epoch=epoch, step=step + 1, loss=float(loss_sum) / seen if report else None)
            side_time += after_step(epoch)
        train_time = time.perf_counter() - t0 - side_time
        loss_total, correct_total, seen_total = float(loss_sum), int(correct), seen
        if self.comm is not None:  # the epoch over every rank
            loss_total, correct_total, seen_total = sum_over_ranks(loss_sum, correct, seen)
        record = {
            "train_loss": loss_total / seen_total,
            "train_acc": correct_total / seen_total,
            "epoch_time_s": train_time,
            "samples_per_s": seen_total / train_time,
        }
        if self.comm is not None:
            record.update(communication_record(self.comm.take_counters(), taken))
        return record

    def evaluate_splits(self, splits: dict[str, Split | None], batch_size: int) -> dict[str, Any]:
        """Loss and accuracy of each split in evaluation mode, as ``<split>_loss`` and ``<split>_acc``."""
        t0 = time.perf_counter()
        record: dict[str, Any] = {}
        measured: dict[int, dict[str, float]] = {}  # a split given twice (validation = test) is evaluated once
        for name, split in splits.items():
            if split is not None:
                if id(split) not in measured:
                    measured[id(split)] = evaluate(self.forward, split, batch_size, self.loss_fn, module=self.model)
                m = measured[id(split)]
                record[f"{name}_loss"], record[f"{name}_acc"] = m["loss"], m["acc"]
        record["eval_time_s"] = time.perf_counter() - t0
        return record

    def accuracy(self, split: Split, batch_size: int) -> float:
        return evaluate(self.forward, split, batch_size, module=self.model)["acc"]
