"""A run's headline numbers: the summary written beside its metrics, and the product format its epochs used."""

from __future__ import annotations

import statistics
import warnings
from typing import Any

import torch.nn as nn

from bnnctl.config.schema import TrainConfig
from bnnctl.data import Dataset
from bnnctl.nn import make_binarizer, model_size_bytes


def products_of_epochs(history: list[dict[str, Any]], current: str) -> str:
    """The run's product format: one name, or, where a resume on another CPU changed it, each with its epochs.

    ``train.binary_matmul=auto`` resolves per machine, so a run cut off on an
    int8 machine and resumed on an AVX2 one reads "int8 (epochs 1-10), fp32
    (epochs 11-15)". Epochs logged before records carried the format are skipped.
    """
    spans: list[list[Any]] = []  # [format, first epoch, last epoch]
    for record in history:
        fmt = record.get("binary_matmul")
        if fmt is None:
            continue
        if spans and spans[-1][0] == fmt:
            spans[-1][2] = record["epoch"]
        else:
            spans.append([fmt, record["epoch"], record["epoch"]])
    if len(spans) <= 1:
        return spans[0][0] if spans else current
    return ", ".join(f"{fmt} (epoch {a})" if a == b else f"{fmt} (epochs {a}-{b})" for fmt, a, b in spans)


def warn_if_products_changed(history: list[dict[str, Any]], current: str, asked: str) -> None:
    """Warn when a resumed run continues with other products than its finished epochs used."""
    before = history[-1].get("binary_matmul") if history else None
    if before is not None and before != current:
        warnings.warn(
            f"this run resumes with {current} products; its epochs 1-{len(history)} used {before} "
            f"(train.binary_matmul={asked} resolves per CPU): the forward is exact either way, the gradients differ",
            RuntimeWarning,
            stacklevel=2,
        )


def summarize(
    cfg: TrainConfig,
    history: list[dict[str, Any]],
    model: nn.Module,
    device: str,
    compiled: bool,
    total_time: float,
    data: Dataset,
) -> dict[str, Any]:
    """The run's headline numbers; test accuracy is also read at the best validation epoch (the papers' rule)."""
    last = history[-1]
    has_val = "val_acc" in last
    best = max(history, key=lambda r: r["val_acc"]) if has_val else last
    # The first epoch includes compilation; later epochs show the steady speed.
    steady = [r["epoch_time_s"] for r in history[1:]] or [history[0]["epoch_time_s"]]
    return {
        "name": cfg.run_name,
        "model": cfg.model.name,
        "data": cfg.data.name,
        "binarize_weights": repr(make_binarizer(cfg.binarize.weights)),  # e.g. ste_sign(clip=None)
        "binarize_activations": repr(make_binarizer(cfg.binarize.activations)),
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
        **{f"model_{k}": v for k, v in model_size_bytes(model).items()},
    }
