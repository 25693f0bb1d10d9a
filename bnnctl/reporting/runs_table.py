"""Training run folders -> one table row each, rebuilt from the folders every time.

A folder that cannot be read (bad YAML, a corrupt summary, an unreadable file)
becomes a row with status ``damaged`` and the reason: it never stops a listing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bnnctl.config.io import yaml_problem
from bnnctl.errors import RunError
from bnnctl.runs import CONFIG, OVERRIDES, Run, Status, list_runs

RUN_COLUMNS = [
    "run",
    "status",
    "name",
    "model",
    "data",
    "binarize",
    "epochs",
    "best_val_acc",
    "test_acc_at_best_val",
    "final_test_acc",
    "epoch_time_s",
    "compression",
    "overrides",
    "path",
]


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def _config_columns(run: Run) -> dict[str, Any]:
    """What was trained, read from config.yaml as plain YAML (any bnnctl version wrote it)."""
    if not (run.path / CONFIG).is_file():
        raise RunError(f"{run.path} has no {CONFIG}")
    try:
        config = yaml.safe_load((run.path / CONFIG).read_text())
    except yaml.YAMLError as exc:
        raise RunError(f"{run.path / CONFIG} is not valid YAML: {yaml_problem(exc)}") from None
    if not isinstance(config, dict):
        raise RunError(f"{run.path / CONFIG} is not a mapping")
    choices = _section(config, "choices")
    overrides = run.path / OVERRIDES
    return {
        "name": config.get("name") or choices.get("experiment"),
        "model": _section(config, "model").get("name"),
        "data": _section(config, "data").get("name"),
        "binarize": "none" if _section(config, "model").get("binarized") is False else choices.get("binarize"),
        "epochs": _section(config, "train").get("epochs"),
        "overrides": " ".join(overrides.read_text().split()) if overrides.is_file() else "",
    }


def _run_row(run: Run) -> dict[str, Any]:
    row: dict[str, Any] = {"run": run.name, "path": str(run.path)}
    try:
        row.update(_config_columns(run))
        state = run.state()
        status, summary = state.status, state.summary
        row["status"] = status.value
        if state.reason:
            row["error"] = state.reason
        if summary is not None:
            row["name"] = summary.get("name", row["name"])
            for key in ("best_val_acc", "test_acc_at_best_val", "final_test_acc", "epoch_time_s"):
                row[key] = summary.get(key)
            row["epochs"] = summary.get("epochs", row["epochs"])
            row["compression"] = summary.get("model_compression")  # deployed size vs float32
        else:
            row["epochs_done"] = len([m for m in run.metrics() if m.get("kind") == "epoch"])
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RunError) as exc:
        row["status"] = Status.damaged.value
        row["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return row


def collect_runs(runs_dir: str | Path, kind: str = "train") -> pd.DataFrame:
    """One row per run folder: status, what was trained, headline numbers."""
    rows = [_run_row(run) for run in list_runs(runs_dir, kind)]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    return frame.reindex(columns=RUN_COLUMNS + [c for c in frame.columns if c not in RUN_COLUMNS])
