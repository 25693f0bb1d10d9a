"""Figures of the geometry studies (matplotlib, Agg): what the paper draws, with the theory beside it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm

from bnnctl.geometry.random_angles import SIGN_THEORY_DEG, AnglesResult, ternary_theory_deg
from bnnctl.geometry.weight_angles import LayerAngles
from bnnctl.reporting.canvas import subplots


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def distributions(result: AnglesResult, path: Path) -> Path:
    """Histograms of angle(x, sign x) for a few d, the 37.07 deg limit, and two random vectors at the largest d."""
    fig, ax = subplots(figsize=(7, 4))
    for d, s in sorted(result.samples.items()):
        ax.hist(
            s.to_transform.numpy(),
            bins=120,
            range=(0, 90),
            density=True,
            histtype="step",
            lw=1.4,
            label=f"x vs sign(x), d={d}",
        )
    if result.samples:
        d, s = max(result.samples.items())
        ax.hist(
            s.random_pair.numpy(),
            bins=120,
            range=(0, 180),
            density=True,
            histtype="stepfilled",
            alpha=0.25,
            color="grey",
            label=f"two random vectors, d={d}",
        )
    ax.axvline(SIGN_THEORY_DEG, color="tab:red", ls="--", lw=1, label=f"arccos(sqrt(2/pi)) = {SIGN_THEORY_DEG:.2f} deg")
    ax.set(
        xlabel="angle (degrees)",
        ylabel="density",
        title="angle between x ~ N(0, I_d) and its binarized version",
        xlim=(0, 100),
    )
    ax.legend(fontsize=8)
    return _save(fig, path)


def mean_and_std_vs_d(result: AnglesResult, path: Path) -> Path:
    """Mean angle against the limit, and the std on log-log axes beside a d^-1/2 line."""
    t = result.table
    fig, (left, right) = subplots(1, 2, figsize=(10, 4))
    left.errorbar(
        t["d"], t["mean_deg"], yerr=t["std_deg"], fmt="o-", ms=4, capsize=2, label="x vs sign(x): mean +- std"
    )
    left.axhline(SIGN_THEORY_DEG, color="tab:red", ls="--", lw=1, label="37.07 deg")
    left.plot(t["d"], t["random_mean_deg"], "s-", ms=3, color="grey", label="two random vectors")
    left.set(xscale="log", xlabel="dimension d", ylabel="angle (degrees)", title="mean angle")
    right.loglog(
        t["d"], t["std_deg"], "o-", ms=4, label=f"std (fitted slope {result.notes.get('std_slope', float('nan')):.3f})"
    )
    ref = t["std_deg"].iloc[-1] * (t["d"] / t["d"].iloc[-1]) ** -0.5
    right.loglog(t["d"], ref, "--", color="tab:red", lw=1, label="slope -1/2")
    right.set(xlabel="dimension d", ylabel="std of the angle (degrees)", title="spread")
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return _save(fig, path)


def ternary_sweep(result: AnglesResult, path: Path) -> Path:
    t = result.table
    grid = np.linspace(0, max(t["threshold_sigma"].max(), 1.5), 200)
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(grid, [ternary_theory_deg(x) for x in grid], color="tab:red", lw=1, label="closed form")
    ax.errorbar(
        t["threshold_sigma"],
        t["mean_deg"],
        yerr=t["std_deg"],
        fmt="o",
        ms=4,
        capsize=2,
        label=f"Monte Carlo, d={t['d'].iloc[0]}",
    )
    ax.axhline(SIGN_THEORY_DEG, color="grey", ls=":", lw=1, label="sign: 37.07 deg")
    best = result.notes.get("best_theory_threshold_sigma")
    if best is not None:
        ax.axvline(best, color="tab:green", ls="--", lw=1, label=f"minimum at t = {best:.3f} sigma")
    ax.set(xlabel="threshold t (units of sigma)", ylabel="angle (degrees)", title="ternary sign(x) 1{|x| > t}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def hadamard_sweep(result: AnglesResult, path: Path) -> Path:
    t = result.table
    fig, ax = subplots(figsize=(6, 4))
    ax.errorbar(t["beta"], t["mean_deg"], yerr=t["std_deg"], fmt="o-", ms=4, capsize=2, label=f"d={t['d'].iloc[0]}")
    ax.axhline(SIGN_THEORY_DEG, color="tab:red", ls="--", lw=1, label="sign: 37.07 deg")
    ax.set(xscale="log", xlabel="block length beta", ylabel="angle (degrees)", title="Hadamard: delta(beta) * sign(x)")
    ax.set_xscale("log", base=2)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def rotation_bars(result: AnglesResult, path: Path) -> Path:
    t = result.table
    dims = sorted(t["d"].unique())
    x = np.arange(len(dims))
    fig, ax = subplots(figsize=(6, 4))
    for offset, basis in ((-0.2, "standard"), (0.2, "rotated")):
        rows = t[t["basis"] == basis].set_index("d").loc[dims]
        ax.bar(
            x + offset,
            rows["mean_deg"],
            width=0.4,
            yerr=rows["std_deg"],
            capsize=3,
            label="sign(x)" if basis == "standard" else "R^T sign(R x)",
        )
    ax.axhline(SIGN_THEORY_DEG, color="tab:red", ls="--", lw=1, label="37.07 deg")
    ax.set_xticks(x, [f"d={d}" for d in dims])
    ax.set(ylabel="angle (degrees)", title=f"decaying spectrum exp(k(i - d/2)), k={t['k'].iloc[0]}")
    ax.legend(fontsize=8)
    return _save(fig, path)


def layer_histograms(layers: list[LayerAngles], path: Path) -> Path:
    cols = min(3, len(layers))
    rows = math.ceil(len(layers) / cols)
    fig, axes = subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    for ax, layer in zip(axes.flat, layers, strict=False):
        ax.hist(layer.angles.numpy(), bins=60, color="tab:blue", alpha=0.8)
        ax.axvline(SIGN_THEORY_DEG, color="tab:red", ls="--", lw=1)
        ax.set_title(f"{layer.name} ({len(layer.angles)} vectors)", fontsize=9)
        ax.set_xlabel("angle(w, binarized w) (deg)", fontsize=8)
    for ax in axes.flat[len(layers) :]:
        ax.set_visible(False)
    return _save(fig, path)


def dot_product_hists(layers, table, path: Path) -> Path:
    """a.W_b against a.W_c per layer as 2-D histograms (the paper's figure), r and slope in each title."""
    cols = min(3, len(layers))
    rows = math.ceil(len(layers) / cols)
    fig, axes = subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for ax, layer, (_, row) in zip(axes.flat, layers, table.iterrows(), strict=False):
        x, y = layer.continuous.numpy(), layer.binary.numpy()
        if len(x) > 200_000:
            keep = np.random.default_rng(0).choice(len(x), 200_000, replace=False)
            x, y = x[keep], y[keep]
        ax.hist2d(x, y, bins=80, cmap="Blues", norm=LogNorm())
        ax.set_title(f"{layer.name}: r = {row['r']:.3f}, slope {row['slope']:.2f}", fontsize=9)
        ax.set_xlabel("a . W_c (continuous weights)", fontsize=8)
        ax.set_ylabel("a . W_b (binary weights)", fontsize=8)
    for ax in axes.flat[len(layers) :]:
        ax.set_visible(False)
    return _save(fig, path)


def first_layer_figure(spectrum, angles: dict, notes: dict, path: Path) -> Path:
    """The patches' PCA spectrum and the angle to the binarized patch in the pixel vs the PCA basis."""
    fig, (left, right) = subplots(1, 2, figsize=(10, 4))
    left.bar(spectrum["component"], spectrum["share"], color="tab:blue", label="variance share")
    left.plot(spectrum["component"], spectrum["cumulative_share"], "o-", color="tab:orange", ms=3, label="cumulative")
    left.set(
        xlabel="principal component",
        ylabel="share of variance",
        title=f"{notes['dataset']} {notes['patch']} patches: participation ratio {notes['participation_ratio']:.2f}",
    )
    left.legend(fontsize=8)
    for label, a in angles.items():
        right.hist(a.numpy(), bins=90, range=(0, 90), density=True, histtype="step", lw=1.3, label=label)
    right.axvline(SIGN_THEORY_DEG, color="tab:red", ls="--", lw=1, label="Gaussian: 37.07 deg")
    right.set(xlabel="angle(patch, binarized patch) (deg)", ylabel="density", title="pixel basis vs PCA basis")
    right.legend(fontsize=8)
    return _save(fig, path)


def filter_shares(table, path: Path) -> Path:
    """Unique k x k binary filters per conv layer, as a share of the layer's filters, with and without sign."""
    x = np.arange(len(table))
    fig, ax = subplots(figsize=(max(5, 1.1 * len(table)), 3.6))
    ax.bar(x - 0.2, table["unique_share"], width=0.4, label="unique")
    ax.bar(x + 0.2, table["unique_up_to_sign_share"], width=0.4, label="unique up to sign")
    for i, row in table.iterrows():
        ax.annotate(
            f"{row['unique']}/{row['filters']}", (x[i] - 0.2, row["unique_share"]), ha="center", va="bottom", fontsize=7
        )
    ax.set_xticks(x, list(table["layer"]))
    ax.set(
        ylabel="share of the layer's k x k filters",
        ylim=(0, 1.1),
        title=f"unique binary filters (of {table['possible'].iloc[0]} possible patterns)",
    )
    ax.legend(fontsize=8)
    return _save(fig, path)


FIGURES = {
    "sign": [("angle_distributions.png", distributions), ("angle_vs_dimension.png", mean_and_std_vs_d)],
    "ternary": [("ternary_sweep.png", ternary_sweep)],
    "hadamard": [("hadamard_sweep.png", hadamard_sweep)],
    "rotation": [("rotation.png", rotation_bars)],
}


def draw(result: AnglesResult, folder: Path) -> list[Path]:
    return [fn(result, folder / name) for name, fn in FIGURES[result.variant]]


def weight_histograms(layers, table, path: Path) -> Path:
    """Per layer (rows) and run (columns): the latent weights' histogram against the binarized weights'.

    Both on the same bins spanning both; log counts, so that plain sign's two
    spikes and the latent spread both show. Each panel names W1 and the relative L2.
    """
    runs = list(dict.fromkeys(w.run for w in layers))
    per_run = {r: [w for w in layers if w.run == r] for r in runs}
    depth = max(len(v) for v in per_run.values())
    fig, axes = subplots(depth, len(runs), figsize=(4.2 * len(runs), 2.6 * depth), squeeze=False)
    for col, run in enumerate(runs):
        for row in range(depth):
            ax = axes[row][col]
            if row >= len(per_run[run]):
                ax.set_visible(False)
                continue
            w = per_run[run][row]
            lo = float(min(w.latent.min(), w.binarized.min()))
            hi = float(max(w.latent.max(), w.binarized.max()))
            bins = np.linspace(lo, hi, 121)
            ax.hist(w.latent.numpy(), bins=bins, alpha=0.6, color="tab:blue", label="latent W")
            ax.hist(w.binarized.numpy(), bins=bins, alpha=0.6, color="tab:orange", label="binarized")
            ax.set_yscale("log")
            stats = table[(table["run"] == run) & (table["layer"] == w.layer)].iloc[0]
            ax.set_title(
                f"{run}: layer {w.layer}\n{w.binarizer}\nW1 {stats['wasserstein_1']:.4f}, "
                f"rel. L2 {stats['relative_l2']:.3f}",
                fontsize=7,
            )
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)
