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


def write_table(frame: pd.DataFrame, out_dir: str | Path, stem: str, floatfmt: str = ".4f",
                markdown: bool = True) -> list[Path]:
    """``<stem>.csv`` and (unless ``markdown`` is false) ``<stem>.md`` in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{stem}.csv", out / f"{stem}.md"
    atomic_write_text(csv_path, frame.to_csv(index=False))
    if not markdown:
        return [csv_path]
    atomic_write_text(md_path, frame.to_markdown(index=False, floatfmt=floatfmt) + "\n")
    return [csv_path, md_path]


# --- aggregation over seeds ---------------------------------------------------------

def t_interval(values: pd.Series, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sample std and the two-sided t confidence interval of the mean (NaN with fewer than 2 values)."""
    from scipy import stats

    x = values.dropna().astype(float)
    n = len(x)
    if n == 0:
        return (float("nan"),) * 4
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan"), float("nan"), float("nan")
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * std / n ** 0.5
    return mean, std, mean - half, mean + half


def aggregate_seeds(per_seed: pd.DataFrame, by: list[str], metrics: list[str], confidence: float = 0.95) -> pd.DataFrame:
    """One row per group: n and, per metric, mean, std, ci_lo, ci_hi (t-distribution over the seeds)."""
    rows = []
    for key, group in per_seed.groupby(by, sort=False, dropna=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row["n"] = int(group[metrics[0]].notna().sum())
        for metric in metrics:
            mean, std, lo, hi = t_interval(group[metric], confidence)
            row.update({f"{metric}_mean": mean, f"{metric}_std": std, f"{metric}_ci_lo": lo, f"{metric}_ci_hi": hi})
        rows.append(row)
    return pd.DataFrame(rows)


LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Text safe inside LaTeX (the caption: Styler escapes cells, not captions)."""
    return "".join(LATEX_SPECIALS.get(c, c) for c in text)


def write_latex(frame: pd.DataFrame, path: Path, caption: str = "", label: str = "") -> Path:
    """A booktabs LaTeX table (pandas' Styler), for pasting into a paper."""
    styler = frame.style.hide(axis="index").format(precision=2, na_rep="--", escape="latex")
    styler = styler.format_index(escape="latex", axis=1)
    latex = styler.to_latex(hrules=True, caption=latex_escape(caption) or None, label=label or None,
                            position_float="centering")
    atomic_write_text(path, latex.replace("±", r"$\pm$"))
    return path
