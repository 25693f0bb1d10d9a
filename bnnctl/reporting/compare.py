"""Grids side by side: the same cell labels across grid folders, each with its seed interval and the published value.

``bnnctl ablate compare`` puts e.g. the report's Table 1, the report's recipe
(``clip_dropout_report``) and a correct BNN (``clip_dropout``) in one table and
one figure. Everything is rebuilt from the grid folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bnnctl.errors import ConfigError
from bnnctl.files import atomic_write_text
from bnnctl.reporting.grid_tables import cell_table, collect_grid, pm, published_pct
from bnnctl.reporting.tables import write_latex, write_table


def compare_grids(grid_dirs: list[Path], metric: str = "peak_val_acc") -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per cell label of the first grid: each grid's mean and CI of ``metric``, and the reference values.

    Returns the table and ``{"grids": [names], "reference": source}``. Grid names
    that repeat (the same grid in two runs folders) are told apart by folder.
    """
    if len(grid_dirs) < 2:
        raise ConfigError("ablate compare needs at least two grid folders")
    names, tables, source = [], [], ""
    reference: dict[str, Any] = {}
    for grid_dir in grid_dirs:
        manifest, per_seed = collect_grid(grid_dir)
        name = manifest["grid"]["name"]
        names.append(name if name not in names else f"{name} ({grid_dir})")
        tables.append(cell_table(manifest, per_seed).set_index("cell"))
        ref = manifest["grid"].get("reference") or {}
        if ref.get("values") and not reference:
            reference, source = ref["values"], ref.get("source", "")
    labels = list(tables[0].index)
    rows = []
    for label in labels:
        row: dict[str, Any] = {"cell": label, "reference": reference.get(label)}
        for name, table in zip(names, tables, strict=True):
            present = label in table.index
            for stat in ("mean", "ci_lo", "ci_hi"):
                row[f"{name}_{stat}"] = table.loc[label, f"{metric}_{stat}"] if present else float("nan")
            row[f"{name}_n"] = int(table.loc[label, "n"]) if present else 0
        rows.append(row)
    return pd.DataFrame(rows), {"grids": names, "reference": source, "metric": metric}


def display_comparison(table: pd.DataFrame, info: dict[str, Any]) -> pd.DataFrame:
    shown = pd.DataFrame({"cell": table["cell"]})
    if info["reference"]:
        shown["published %"] = table["reference"].map(published_pct)
    for name in info["grids"]:
        shown[f"{name} %"] = [
            pm(m, lo) + f" (n={n})" if m == m else "--"
            for m, lo, n in zip(table[f"{name}_mean"], table[f"{name}_ci_lo"], table[f"{name}_n"], strict=True)
        ]
    return shown


def write_comparison(grid_dirs: list[Path], out_dir: Path, metric: str = "peak_val_acc") -> dict[str, Any]:
    """comparison.csv, .md, .tex and .png in ``out_dir``."""
    from bnnctl.reporting.plots import plot_comparison

    table, info = compare_grids([Path(g).expanduser() for g in grid_dirs], metric)
    shown = display_comparison(table, info)
    out_dir = Path(out_dir).expanduser()
    files = write_table(table, out_dir, "comparison", markdown=False)
    caption = (
        f"{metric} by cell: "
        + ", ".join(info["grids"])
        + " (mean ± half-width of the 95% t-interval over seeds)"
        + (f"; published: {info['reference']}" if info["reference"] else "")
    )
    md = out_dir / "comparison.md"
    atomic_write_text(md, f"{caption}\n\n{shown.to_markdown(index=False, disable_numparse=True)}\n")
    files += [md, write_latex(shown, out_dir / "comparison.tex", caption=caption, label="tab:comparison")]
    files.append(plot_comparison(table, info, out_dir / "comparison.png"))
    return {"table": table, "display": shown, "files": files, **info}
