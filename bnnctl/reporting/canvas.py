"""Figures drawn without pyplot: no backend is chosen and no global figure registry is touched.

``matplotlib.use("Agg")`` at import changed the backend of every program that
imported bnnctl (a notebook lost its inline plots); ``matplotlib.figure.Figure``
renders PNGs through its own Agg canvas, so nothing process-wide changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` without pyplot: a new Figure and its axes (as pyplot shapes them)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save(fig: Figure, path: Path, dpi: int = 120) -> Path:
    """Write the figure as PNG; the Figure is garbage once nothing refers to it (no registry to close it in)."""
    fig.savefig(path, dpi=dpi)
    return path
