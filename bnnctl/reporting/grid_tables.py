"""An ablation grid's run folders -> per-seed rows -> one row per cell with confidence intervals.

Everything is rebuilt from the folders that ``grid.yaml`` names, so rerunning
``bnnctl ablate table`` (or the grid, which ends with it) always gives the
table the finished runs support, never a table kept by hand. Wall times vary
from run to run; every other number is a function of the run folders alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bnnctl.errors import RunError
from bnnctl.files import atomic_write_text
from bnnctl.reporting.attribution import write_attribution
from bnnctl.reporting.tables import aggregate_seeds, write_latex, write_table
from bnnctl.runs import Run, cell_run_dir, read_manifest

METRICS_OF_A_RUN = {  # column -> summary.json key
    "peak_val_acc": "best_val_acc",
    "final_val_acc": "final_val_acc",
    "test_acc_at_peak": "test_acc_at_best_val",
    "final_test_acc": "final_test_acc",
    "epochs_to_peak": "best_epoch",
    "wall_time_s": "total_time_s",
}
ACCURACIES = ["peak_val_acc", "final_val_acc", "test_acc_at_peak", "final_test_acc"]
COLUMN_FORMATS = {  # a grid's extra ``columns:`` (config.schema.GRID_COLUMNS): header, scale, digits
    "epoch_time_s": ("s/epoch", 1, 1),
    "samples_per_s": ("samples/s", 1, 0),
    "comm_bytes_per_step": ("kB sent/step", 1e-3, 1),
    "comm_wire_bytes_per_step": ("kB on the wire/step", 1e-3, 1),
    "compression_ratio": ("x fewer than float32", 1, 1),
    "comm_s_per_epoch": ("comm s/epoch", 1, 1),
}
HEADERS = {
    "peak_val_acc": "peak val %",
    "final_val_acc": "final val %",
    "test_acc_at_peak": "test % at peak",
    "final_test_acc": "final test %",
    "epochs_to_peak": "epochs to peak",
    "wall_time_s": "wall s",
}


def collect_grid(grid_dir: str | Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """The manifest and one row per cell x seed (status, settings, headline numbers)."""
    grid_dir = Path(grid_dir).expanduser()
    manifest = read_manifest(grid_dir)
    rows = []
    for order, cell in enumerate(manifest["cells"]):
        for seed in manifest["grid"]["seeds"]:
            run = Run(cell_run_dir(grid_dir, cell["id"], seed))
            state = run.state()
            status, summary = state.status, state.summary
            row: dict[str, Any] = {
                "order": order,
                "cell": cell["label"],
                "cell_id": cell["id"],
                "seed": seed,
                **cell["settings"],
                "status": status.value,
                "path": str(run.path),
                "error": state.reason or "",
            }
            if summary is not None:
                row.update({column: summary.get(key) for column, key in METRICS_OF_A_RUN.items()})
                row.update({key: summary.get(key) for key in {"samples_per_s", *extra_columns(manifest)}})
                row["binary_matmul"] = summary.get("binary_matmul", "fp32")  # older runs: all float32
            rows.append(row)
    frame = pd.DataFrame(rows)
    for column in [
        *METRICS_OF_A_RUN,
        "samples_per_s",
        *extra_columns(manifest),
    ]:  # a damaged summary may hold text where a number belongs
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return manifest, frame


def extra_columns(manifest: dict[str, Any]) -> list[str]:
    """The summary keys the grid file adds to its table (``columns:``; older manifests have none)."""
    return [c for c in manifest["grid"].get("columns") or [] if c not in METRICS_OF_A_RUN]


def setting_keys(manifest: dict[str, Any]) -> list[str]:
    """The columns that say what a cell is: ``change`` (listed cells) and the axes' keys."""
    listed = ["change"] if (manifest["grid"].get("cells") or []) else []
    return listed + [axis["key"] for axis in manifest["grid"]["axes"]]


def cell_table(manifest: dict[str, Any], per_seed: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: mean, std and 95% t-interval of each metric over its finished seeds, and the reference."""
    settings = setting_keys(manifest)
    done = per_seed[per_seed["status"] == "done"]
    metrics = [*METRICS_OF_A_RUN, *extra_columns(manifest)]
    table = aggregate_seeds(done, ["order", "cell", "cell_id", *settings], metrics)
    cells = per_seed[["order", "cell", "cell_id", *settings]].drop_duplicates("order")
    table = cells.merge(table, how="left", on=["order", "cell", "cell_id", *settings]).sort_values("order")
    table["n"] = table["n"].fillna(0).astype(int)
    table["seeds"] = len(manifest["grid"]["seeds"])
    reference = manifest["grid"].get("reference") or {}
    table["reference"] = table["cell"].map(lambda c: (reference.get("values") or {}).get(c))
    return table.drop(columns=["order"]).reset_index(drop=True)


def pm(mean: float, lo: float, scale: float = 100, digits: int = 2) -> str:
    """'mean ± half-width of the 95% CI' (just the mean when there is no interval; '--' without a mean)."""
    if mean != mean:
        return "--"
    if lo != lo:
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {(mean - lo) * scale:.{digits}f}"


def published_pct(value: float | None) -> str:
    """A published accuracy as the tables show it: whole percent, '--' where there is none."""
    return "--" if value is None or value != value else f"{value * 100:.0f}"


def _setting(value: Any) -> str:
    """An axis value as a table shows it: on/off for switches, the value otherwise."""
    return "on" if value is True else "off" if value is False else str(value)


def _axis_headers(axes: list[dict[str, Any]]) -> list[str]:
    """Column headers: an on/off axis by its short label, another by its key's last part (``dropout``),
    unless two axes would share it (``...weights.params.beta``, ``...activations.params.beta``): then the short label.
    """
    switch = [all(isinstance(v, bool) for v in a["values"]) for a in axes]
    headers = [
        (a.get("short") or a["key"]) if s else a["key"].rsplit(".", 1)[-1] for a, s in zip(axes, switch, strict=True)
    ]
    return [(a.get("short") or a["key"]) if headers.count(h) > 1 else h for a, h in zip(axes, headers, strict=True)]


def display_table(manifest: dict[str, Any], table: pd.DataFrame) -> pd.DataFrame:
    """The cell table as people read it: accuracies in %, 'mean ± 95% CI', the report's value beside."""
    axes = manifest["grid"]["axes"]
    reference = manifest["grid"].get("reference") or {}
    shown = pd.DataFrame({"cell": table["cell"]})
    if "change" in table and not (table["change"] == table["cell"]).all():  # listed cells crossed with axes
        shown["change"] = table["change"]
    for axis, header in zip(axes, _axis_headers(axes), strict=True):
        shown[header] = table[axis["key"]].map(_setting)
    shown["seeds"] = table["n"].astype(str) + "/" + table["seeds"].astype(str)
    scale: float
    for metric in METRICS_OF_A_RUN:
        scale, digits = (100, 2) if metric in ACCURACIES else (1, 1)
        shown[HEADERS[metric]] = [
            pm(m, lo, scale, digits) for m, lo in zip(table[f"{metric}_mean"], table[f"{metric}_ci_lo"], strict=True)
        ]
    for column in extra_columns(manifest):
        header, scale, digits = COLUMN_FORMATS[column]
        shown[header] = [
            pm(m, lo, scale, digits) for m, lo in zip(table[f"{column}_mean"], table[f"{column}_ci_lo"], strict=True)
        ]
    metric = reference.get("metric", "peak_val_acc")
    if reference.get("values"):
        shown[f"report {HEADERS.get(metric, metric)}"] = table["reference"].map(published_pct)
    return shown


def grid_caption(grid: dict[str, Any]) -> str:
    """The tables' caption: what the grid is, what the ± means, and what 'report' is when it has one."""
    caption = f"Ablation grid {grid['name']}: {grid.get('description', '')}. Mean ± half-width of the 95% t-interval over seeds"
    source = (grid.get("reference") or {}).get("source")
    return f"{caption}; 'report' is {source}." if source else f"{caption}."


@dataclass
class GridTables:
    """A grid's results, rebuilt from its run folders (or read from a published copy's CSVs).

    ``per_seed``: one row per cell x seed (runs.csv); ``table``: one row per cell
    with means and 95% t-intervals (results.csv); ``display``: the table as
    people read it (table.md, table.tex, the page). Pages and commands take this
    object; nothing parses the Markdown back.
    """

    folder: Path
    manifest: dict[str, Any]
    per_seed: pd.DataFrame
    table: pd.DataFrame
    display: pd.DataFrame
    from_runs: bool = True  # False: a published copy's CSVs, its run folders elsewhere

    @property
    def grid(self) -> dict[str, Any]:
        return self.manifest["grid"]

    @property
    def finished(self) -> int:
        return finished_runs(self.per_seed)

    @property
    def footer(self) -> str:
        """How fast the runs trained, and which product formats they used where those differ."""
        lines = (throughput_footer(self.per_seed), products_footer(self.per_seed))
        return " ".join(line.strip() for line in lines if line.strip())


def finished_runs(per_seed: pd.DataFrame | None) -> int:
    if per_seed is None or "status" not in per_seed:
        return 0
    return int((per_seed["status"] == "done").sum())


def grid_tables(grid_dir: str | Path) -> GridTables:
    """The tables the grid's run folders support now."""
    grid_dir = Path(grid_dir).expanduser()
    manifest, per_seed = collect_grid(grid_dir)
    table = cell_table(manifest, per_seed)
    return GridTables(grid_dir, manifest, per_seed, table, display_table(manifest, table))


def published_grid_tables(grid_dir: str | Path) -> GridTables:
    """A copy without run folders (``docs/results/...``): its tables as they were written."""
    grid_dir = Path(grid_dir).expanduser()
    manifest = read_manifest(grid_dir)
    table = read_csv_or_none(grid_dir / "results.csv")
    per_seed = read_csv_or_none(grid_dir / "runs.csv")
    if table is None or per_seed is None:
        raise RunError(f"{grid_dir}: no run folders (cells/) and no results.csv + runs.csv to show")
    return GridTables(grid_dir, manifest, per_seed, table, display_table(manifest, table), from_runs=False)


def read_csv_or_none(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        return None


def refuse_to_shrink(tables: GridTables) -> None:
    """Never replace a grid's tables with fewer finished runs' worth (a copy without its runs, a lost folder).

    Reading results must not destroy them: the command stops, writes nothing,
    and says which file holds the larger table.
    """
    before = finished_runs(read_csv_or_none(tables.folder / "runs.csv"))
    if tables.finished < before:
        raise RunError(
            f"{tables.folder / 'runs.csv'} lists {before} finished runs but only {tables.finished} run folders "
            "are here: not overwriting its tables (move runs.csv away to rebuild them from these runs)"
        )


def write_grid_tables(tables: GridTables) -> list[Path]:
    """results.csv (per cell), runs.csv (per seed), table.md, table.tex and the figures; returns their paths."""
    from bnnctl.reporting.plots import plot_accuracy_vs_bytes, plot_grid_curves, plot_grid_heatmap

    refuse_to_shrink(tables)
    grid_dir, manifest, per_seed, table, shown = (
        tables.folder,
        tables.manifest,
        tables.per_seed,
        tables.table,
        tables.display,
    )
    grid = manifest["grid"]
    files = write_table(table, grid_dir, "results", markdown=False) + write_table(
        per_seed, grid_dir, "runs", markdown=False
    )
    caption = grid_caption(grid)
    md = grid_dir / "table.md"
    overrides = " ".join(manifest.get("overrides") or []) or "(none)"
    atomic_write_text(
        md,
        f"{caption}\n\nOverrides: `{overrides}`\n\n{shown.to_markdown(index=False, disable_numparse=True)}\n"
        f"\n{throughput_footer(per_seed)}\n{products_footer(per_seed)}",
    )
    files.append(md)
    files.append(write_latex(shown, grid_dir / "table.tex", caption=caption, label=f"tab:{grid['name']}"))
    curves = plot_grid_curves(_curves(manifest, per_seed), grid_dir / "curves.png", manifest)
    if curves is not None:
        files.append(curves)
    files += write_attribution(grid_dir, manifest, per_seed)  # grids of listed cells x one on/off axis
    heatmap = plot_grid_heatmap(table, manifest, grid_dir / "heatmap.png")  # two axes, one with > 2 values
    if heatmap is not None:
        files.append(heatmap)
    if "comm_bytes_per_step" in extra_columns(manifest):
        tradeoff = plot_accuracy_vs_bytes(table, manifest, grid_dir / "accuracy_vs_bytes.png")
        if tradeoff is not None:
            files.append(tradeoff)
    return files


def throughput_footer(per_seed: pd.DataFrame) -> str:
    """How fast the finished runs trained: median samples/s of a run, and their training time together."""
    done = per_seed[per_seed["status"] == "done"] if "status" in per_seed else per_seed.iloc[0:0]
    speed = done["samples_per_s"].dropna() if "samples_per_s" in done else pd.Series(dtype=float)
    if speed.empty:
        return "Throughput: no finished run."
    hours = float(done["wall_time_s"].fillna(0).sum()) / 3600
    return (
        f"Throughput: a run trained at {speed.median():.0f} samples/s (median of {len(speed)} runs, "
        f"{speed.min():.0f}-{speed.max():.0f}); the runs took {hours:.2f} h of training time together."
    )


def products_footer(per_seed: pd.DataFrame) -> str:
    """Which product format the finished runs used, where they differ (else nothing).

    ``train.binary_matmul=auto`` resolves per machine (int8 only with VNNI and
    native bf16): a grid resumed on another CPU can mix formats in one cell,
    and its readers should know which runs had bf16-rounded gradients.
    """
    if "binary_matmul" not in per_seed:
        return ""
    done = per_seed[per_seed["status"] == "done"]
    if done["binary_matmul"].nunique() < 2:
        return ""
    parts = []
    for fmt, runs in done.groupby("binary_matmul", sort=True):
        cells = ", ".join(dict.fromkeys(runs.sort_values("order")["cell"]))
        parts.append(f"{fmt} in {len(runs)} run{'' if len(runs) == 1 else 's'} ({cells})")
    return f"\nProducts of the +-1 layers (train.binary_matmul as resolved on each run's CPU): {'; '.join(parts)}.\n"


def _curves(manifest: dict[str, Any], per_seed: pd.DataFrame) -> pd.DataFrame:
    """Validation accuracy by iteration (and fraction of epochs), one row per cell x seed x iteration (finished runs)."""
    rows = []
    for run in per_seed[per_seed["status"] == "done"].itertuples():
        try:
            records = Run(Path(run.path)).metrics()
        except RunError:  # a damaged metrics file costs the run its curve, not its row in the table
            continue
        per_epoch = next((r["iteration"] for r in records if r.get("kind") == "epoch"), 1) or 1
        for record in records:
            if "val_acc" in record and "iteration" in record:
                rows.append(
                    {
                        "cell": run.cell,
                        "seed": run.seed,
                        "iteration": record["iteration"],
                        "epoch": record["iteration"] / per_epoch,
                        "iters_per_epoch": per_epoch,
                        "val_acc": record["val_acc"],
                    }
                )
    frame = pd.DataFrame(rows, columns=["cell", "seed", "iteration", "epoch", "iters_per_epoch", "val_acc"])
    return frame.drop_duplicates(["cell", "seed", "iteration"])
