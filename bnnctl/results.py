"""Run folders -> pandas tables (CSV + Markdown). Tables are always rebuilt from the folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bnnctl.runs import CONFIG, OVERRIDES, SUMMARY, Run, atomic_write_text, list_runs

RUN_COLUMNS = [
    "run", "status", "name", "model", "data", "binarize", "epochs",
    "best_val_acc", "test_acc_at_best_val", "final_test_acc", "epoch_time_s", "overrides", "path",
]


def _run_row(run: Run) -> dict[str, Any]:
    config = yaml.safe_load((run.path / CONFIG).read_text()) or {}
    row: dict[str, Any] = {
        "run": run.name,
        "status": "done" if run.done else "incomplete",
        "name": config.get("name") or (config.get("choices") or {}).get("experiment"),
        "model": (config.get("model") or {}).get("name"),
        "data": (config.get("data") or {}).get("name"),
        "binarize": (config.get("choices") or {}).get("binarize"),
        "epochs": (config.get("train") or {}).get("epochs"),
        "overrides": " ".join((run.path / OVERRIDES).read_text().split()) if (run.path / OVERRIDES).is_file() else "",
        "path": str(run.path),
    }
    summary_path = run.path / SUMMARY
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
        except json.JSONDecodeError:
            summary = {}
        row["name"] = summary.get("name", row["name"])
        for key in ("best_val_acc", "test_acc_at_best_val", "final_test_acc", "epoch_time_s"):
            row[key] = summary.get(key)
        row["epochs"] = summary.get("epochs", row["epochs"])
    else:
        row["epochs_done"] = len([m for m in run.metrics() if m.get("kind") == "epoch"])
    return row


def collect_runs(runs_dir: str | Path, kind: str = "train") -> pd.DataFrame:
    """One row per run folder: status, what was trained, headline numbers."""
    rows = [_run_row(run) for run in list_runs(runs_dir, kind)]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    return frame.reindex(columns=RUN_COLUMNS + [c for c in frame.columns if c not in RUN_COLUMNS])


def summary_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """A finished run's summary as a two-column (metric, value) table."""
    return pd.DataFrame({"metric": list(summary), "value": list(summary.values())})


def write_table(frame: pd.DataFrame, out_dir: str | Path, stem: str, floatfmt: str = ".4f") -> list[Path]:
    """``<stem>.csv`` and ``<stem>.md`` in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{stem}.csv", out / f"{stem}.md"
    atomic_write_text(csv_path, frame.to_csv(index=False))
    atomic_write_text(md_path, frame.to_markdown(index=False, floatfmt=floatfmt) + "\n")
    return [csv_path, md_path]
