"""Figures (matplotlib, Agg backend: no display needed, same output everywhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_learning_curves(epochs: list[dict[str, Any]], records: list[dict[str, Any]], path: Path,
                         title: str = "") -> Path:
    """Loss and accuracy per epoch (train/val/test); validation per N iterations when logged."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    x = [r["epoch"] for r in epochs]
    for split, style in (("train", "-"), ("val", "--"), ("test", ":")):
        if f"{split}_loss" in epochs[0]:
            ax_loss.plot(x, [r[f"{split}_loss"] for r in epochs], style, marker="o", label=split)
        if f"{split}_acc" in epochs[0]:
            ax_acc.plot(x, [r[f"{split}_acc"] for r in epochs], style, marker="o", label=split)
    iters = [r for r in records if r.get("kind") == "iter"]
    if iters and epochs:
        per_epoch = epochs[0]["iteration"] or 1
        ax_acc.plot([r["iteration"] / per_epoch for r in iters], [r["val_acc"] for r in iters],
                    alpha=0.5, lw=1, label="val (per N iterations)")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
