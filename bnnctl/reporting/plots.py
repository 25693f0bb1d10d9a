"""Figures (matplotlib, Agg backend: no display needed, same output everywhere)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bnnctl.reporting.canvas import subplots


def plot_learning_curves(
    epochs: list[dict[str, Any]], records: list[dict[str, Any]], path: Path, title: str = ""
) -> Path:
    """Loss and accuracy per epoch (train/val/test); validation per N iterations when logged."""
    fig, (ax_loss, ax_acc) = subplots(1, 2, figsize=(10, 4))
    x = [r["epoch"] for r in epochs]
    for split, style in (("train", "-"), ("val", "--"), ("test", ":")):
        if f"{split}_loss" in epochs[0]:
            ax_loss.plot(x, [r[f"{split}_loss"] for r in epochs], style, marker="o", label=split)
        if f"{split}_acc" in epochs[0]:
            ax_acc.plot(x, [r[f"{split}_acc"] for r in epochs], style, marker="o", label=split)
    iters = [r for r in records if r.get("kind") == "iter"]
    if iters and epochs:
        per_epoch = epochs[0]["iteration"] or 1
        ax_acc.plot(
            [r["iteration"] / per_epoch for r in iters],
            [r["val_acc"] for r in iters],
            alpha=0.5,
            lw=1,
            label="val (per N iterations)",
        )
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def plot_grid_curves(curves: Any, path: Path, manifest: dict[str, Any]) -> Path | None:
    """Validation accuracy vs iteration (vs epoch when cells differ in batch size), one panel per cell:
    mean over seeds, a +-1 std band, each seed thin.

    The dashed line is the published peak for the cell, where the grid file gives one.
    Returns None when no run has finished yet.
    """
    if curves.empty:
        return None
    labels = [c["label"] for c in manifest["cells"]]
    # Iterations compare cells only when they share the batch size; otherwise plot against epochs.
    x = "iteration" if curves["iters_per_epoch"].nunique() == 1 else "epoch"
    reference = (manifest["grid"].get("reference") or {}).get("values") or {}
    cols = min(4, len(labels))
    rows = -(-len(labels) // cols)
    fig, axes = subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), sharex=True, sharey=True, squeeze=False)
    for ax, label in zip(axes.flat, labels, strict=False):  # more panels than cells: the rest are hidden
        cell = curves[curves["cell"] == label]
        if not cell.empty:
            for _, seed in cell.groupby("seed"):
                ax.plot(seed[x], seed["val_acc"], lw=0.6, alpha=0.35, color="tab:blue")
            stats = cell.groupby(x)["val_acc"].agg(["mean", "std"]).reset_index()
            ax.plot(stats[x], stats["mean"], color="tab:blue", lw=1.6, label="mean over seeds")
            ax.fill_between(
                stats[x],
                stats["mean"] - stats["std"].fillna(0),
                stats["mean"] + stats["std"].fillna(0),
                color="tab:blue",
                alpha=0.2,
                lw=0,
            )
        if label in reference:
            ax.axhline(reference[label], color="tab:red", ls="--", lw=1, label="report's peak")
        n = cell["seed"].nunique() if not cell.empty else 0
        ax.set_title(f"{label} ({n} seeds)", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(labels) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(x)
    for ax in axes[:, 0]:
        ax.set_ylabel("validation accuracy")
    handles, names = axes.flat[0].get_legend_handles_labels()
    if handles:  # below the panels: above them it collides with the title when there is one row
        fig.legend(handles, names, loc="lower center", fontsize=8, ncol=len(handles), frameon=False)
    fig.suptitle(
        f"grid {manifest['grid']['name']}: validation accuracy (mean ± 1 std over seeds)",
        fontsize=10,
        x=0.02,
        ha="left",
    )
    fig.tight_layout(rect=(0, 0.05 if handles else 0, 1, 0.97))
    fig.savefig(path, dpi=120)
    return path


def plot_attribution(table: Any, path: Path, axis_name: str, reference: str) -> Path:
    """Two panels of horizontal bars: each change's effect on the accuracy with the axis off, and on its gap.

    Error bars are the 95% Welch intervals; a change whose off cell shares its
    reference's runs has no bar on the left (it is zero by construction).
    """
    n = len(table)
    fig, (ax_off, ax_gap) = subplots(1, 2, figsize=(11, 0.42 * n + 1.6), sharey=True)
    y = list(range(n))[::-1]
    for ax, column, title in (
        (ax_off, "effect_off", f"effect on peak accuracy, {axis_name} off"),
        (ax_gap, "effect_gap", f"effect on the {axis_name} gap (on - off)"),
    ):
        values = table[column] * 100
        errors = (table[f"{column}_ci"] * 100).fillna(0)
        colors = ["tab:red" if v < 0 else "tab:blue" for v in values.fillna(0)]
        ax.barh(y, values.fillna(0), xerr=errors, color=colors, alpha=0.75, capsize=3)
        ax.axvline(0, color="black", lw=0.8)
        ax.set(title=title, xlabel=f"points vs {reference} (or 'vs')")
        ax.grid(axis="x", alpha=0.3)
    ax_off.set_yticks(y, table["change"])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def plot_comparison(table: Any, info: dict[str, Any], path: Path) -> Path:
    """Grouped bars per cell: each grid's mean with its 95% interval, the published value as a black tick."""
    import numpy as np

    grids = info["grids"]
    x = np.arange(len(table))
    width = 0.8 / len(grids)
    fig, ax = subplots(figsize=(max(6.0, 0.9 * len(table) + 2) + 3, 4))
    for i, name in enumerate(grids):
        mean = table[f"{name}_mean"].to_numpy(dtype=float) * 100
        low = table[f"{name}_ci_lo"].to_numpy(dtype=float) * 100
        err = np.nan_to_num(mean - low)
        ax.bar(x - 0.4 + width * (i + 0.5), np.nan_to_num(mean), width, yerr=err, capsize=2, label=name, alpha=0.8)
    if info["reference"]:
        ref = table["reference"].to_numpy(dtype=float) * 100
        ax.scatter(x, ref, marker="_", s=900, color="black", zorder=3, label=f"published ({info['reference']})")
    ax.set_xticks(x, table["cell"], rotation=30, ha="right")
    ax.set(ylabel=f"{info['metric']} (%)", ylim=(0, 100))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def plot_grid_heatmap(table: Any, manifest: dict[str, Any], path: Path, metric: str = "peak_val_acc") -> Path | None:
    """A two-axis grid as a heatmap of the metric's mean over seeds (rows: the first axis, columns: the second).

    Drawn when a grid has exactly two axes and one of them has more than two
    values (a 2 x 2 grid reads better as its table). None when nothing finished.
    """
    import numpy as np

    axes = manifest["grid"]["axes"]
    if len(axes) != 2 or max(len(a["values"]) for a in axes) <= 2 or table[f"{metric}_mean"].isna().all():
        return None
    (ka, va), (kb, vb) = [(a["key"], a["values"]) for a in axes]
    grid = np.full((len(va), len(vb)), np.nan)
    for a, b, value in table[[ka, kb, f"{metric}_mean"]].itertuples(index=False, name=None):  # keys are dotted
        grid[va.index(a), vb.index(b)] = value * 100
    fig, ax = subplots(figsize=(1.1 * len(vb) + 2.5, 0.9 * len(va) + 1.8))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    for i in range(len(va)):
        for j in range(len(vb)):
            if grid[i, j] == grid[i, j]:
                bright = grid[i, j] > np.nanmean(grid)  # viridis is light at the top: dark text there
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", color="black" if bright else "white")
    ax.set_xticks(range(len(vb)), [str(v) for v in vb])
    ax.set_yticks(range(len(va)), [str(v) for v in va])
    ax.set(xlabel=kb, ylabel=ka, title=f"{manifest['grid']['name']}: {metric} (%), mean over seeds")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


GEMM_STYLES = {  # method -> (label, colour, marker)
    "naive": ("classical triple loop (CMMA)", "tab:gray", "x"),
    "float32": ("float32, PyTorch default (MKL)", "tab:blue", "o"),
    "float32_onednn": ("float32, oneDNN", "tab:cyan", "s"),
    "hadamard_block": ("Hadamard block, beta=16 (xHBNN)", "tab:orange", "^"),
    "packed": ("XNOR-popcount, packed (xBNN)", "tab:red", "D"),
}


def plot_gemm_sizes(frame: Any, path: Path) -> Path:
    """Time per square product vs size, log-log: the Hadamard post's "CMMA vs xHBNN" and "MKL vs xHBNN" panels."""
    panels = (
        ("classical vs binary", ("naive", "hadamard_block", "packed")),
        ("MKL / oneDNN vs binary", ("float32", "float32_onednn", "hadamard_block", "packed")),
    )
    fig, axes = subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, (title, methods) in zip(axes, panels, strict=True):
        for method in methods:
            rows = frame[frame["method"] == method].sort_values("size")
            if rows.empty:
                continue
            label, colour, marker = GEMM_STYLES[method]
            ax.plot(rows["size"], rows["seconds"], marker=marker, color=colour, label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("M = K = N")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("seconds per product (median)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    return path


MARKERS = "osD^v<>p*"


@dataclass(frozen=True)
class TradeoffPoint:
    """One cell on the accuracy-against-bytes plot."""

    bytes_per_step: float  # where it is drawn: the cell's mean, nudged sideways by its marker (see below)
    accuracy: float  # percent, mean over seeds
    half_width: float  # percent, the 95% interval's half width (0 with one seed)
    colour: str  # the first axis' value (the compression method)
    marker: str  # the second axis' value (the world size)


@dataclass(frozen=True)
class TradeoffStyle:
    """Which axis value gets which colour and which marker: the points and the legend read the same one."""

    colour_key: str  # the first axis (the compression method)
    colour_label: str
    colours: dict[str, str]  # str(value) -> matplotlib colour, in the axis' order
    marker_key: str | None  # the second axis (the world size), if the grid has one
    marker_label: str
    markers: dict[str, str]  # str(value) -> marker, in the axis' order


def tradeoff_style(manifest: dict[str, Any]) -> TradeoffStyle:
    axes = manifest["grid"]["axes"]
    second = axes[1] if len(axes) > 1 else None
    return TradeoffStyle(
        colour_key=axes[0]["key"],
        colour_label=axes[0].get("short") or axes[0]["key"],
        colours={str(v): f"C{i}" for i, v in enumerate(axes[0]["values"])},
        marker_key=second["key"] if second else None,
        marker_label=(second.get("short") or second["key"]) if second else "",
        markers={str(v): MARKERS[i % len(MARKERS)] for i, v in enumerate(second["values"])} if second else {},
    )


def tradeoff_points(table: Any, manifest: dict[str, Any], metric: str = "peak_val_acc") -> list[TradeoffPoint]:
    """The finished cells that sent something, as plot points.

    Cells of one method send the same bytes at every world size, so their
    points are spread 6% apart sideways (on a log axis) in marker order, to be
    seen apart; the table has the exact figures.
    """
    done = table[table[f"{metric}_mean"].notna() & table["comm_bytes_per_step_mean"].notna()]
    style = tradeoff_style(manifest)
    marker_values = list(style.markers)
    points = []
    for values in done.to_dict("records"):  # records keep dotted column names ('dist.compress'); itertuples does not
        mean = values[f"{metric}_mean"] * 100
        half = (values[f"{metric}_mean"] - values[f"{metric}_ci_lo"]) * 100
        marker_value = str(values[style.marker_key]) if style.marker_key else None
        which = marker_values.index(marker_value) if marker_value is not None else 0
        nudge = 1.06 ** (which - (len(marker_values) - 1) / 2) if marker_values else 1.0
        points.append(
            TradeoffPoint(
                bytes_per_step=values["comm_bytes_per_step_mean"] * nudge,
                accuracy=mean,
                half_width=half if half == half else 0.0,
                colour=style.colours.get(str(values[style.colour_key]), "k"),
                marker=style.markers.get(marker_value, "o") if marker_value is not None else "o",
            )
        )
    return points


def plot_accuracy_vs_bytes(
    table: Any, manifest: dict[str, Any], path: Path, metric: str = "peak_val_acc"
) -> Path | None:
    """Accuracy against the gradient bytes each rank sends per step (log x), one point per cell.

    Mean over seeds with its 95% interval as the error bar; the colour is the
    cell's value of the first axis (the compression method), the marker its
    value of the second (the world size). None when nothing finished.
    """
    points = tradeoff_points(table, manifest, metric)
    if not points:
        return None
    style = tradeoff_style(manifest)
    fig, ax = subplots(figsize=(6.4, 4.2))
    for p in points:
        ax.errorbar(p.bytes_per_step, p.accuracy, yerr=p.half_width, fmt=p.marker, color=p.colour, capsize=3, ms=6)
    ax.set_xscale("log")
    for value, colour in style.colours.items():
        ax.plot([], [], "s", color=colour, label=f"{style.colour_label}={value}")
    for value, marker in style.markers.items():
        ax.plot([], [], marker, color="grey", label=f"{style.marker_label}={value}")
    ax.set_xlabel("gradient bytes each rank sends per step (log)")
    ax.set_ylabel(f"{metric.replace('_', ' ')} % (mean, 95% CI)")
    ax.set_title(f"{manifest['grid']['name']}: accuracy against bytes sent", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    return path
