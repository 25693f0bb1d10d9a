"""Tables out: CSV, Markdown and LaTeX files; seed aggregation with t-intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bnnctl.files import atomic_write_text


def summary_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """A finished run's summary as a two-column (metric, value) table."""
    return pd.DataFrame({"metric": list(summary), "value": list(summary.values())})


def write_table(
    frame: pd.DataFrame, out_dir: str | Path, stem: str, floatfmt: str = ".4f", markdown: bool = True
) -> list[Path]:
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
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * std / n**0.5
    return mean, std, mean - half, mean + half


def aggregate_seeds(
    per_seed: pd.DataFrame, by: list[str], metrics: list[str], confidence: float = 0.95
) -> pd.DataFrame:
    """One row per group: n and, per metric, mean, std, ci_lo, ci_hi (t-distribution over the seeds)."""
    rows = []
    for key, group in per_seed.groupby(by, sort=False, dropna=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        row["n"] = int(group[metrics[0]].notna().sum())
        for metric in metrics:
            mean, std, lo, hi = t_interval(group[metric], confidence)
            row.update({f"{metric}_mean": mean, f"{metric}_std": std, f"{metric}_ci_lo": lo, f"{metric}_ci_hi": hi})
        rows.append(row)
    stats = [f"{m}_{s}" for m in metrics for s in ("mean", "std", "ci_lo", "ci_hi")]
    return pd.DataFrame(rows, columns=[*by, "n", *stats])  # the columns even when no group has finished


LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Text safe inside LaTeX (the caption: Styler escapes cells, not captions)."""
    return "".join(LATEX_SPECIALS.get(c, c) for c in text)


def write_latex(frame: pd.DataFrame, path: Path, caption: str = "", label: str = "") -> Path:
    """A booktabs LaTeX table (pandas' Styler), for pasting into a paper."""
    styler = frame.style.hide(axis="index").format(precision=2, na_rep="--", escape="latex")
    styler = styler.format_index(escape="latex", axis=1)
    latex = styler.to_latex(
        hrules=True, caption=latex_escape(caption) or None, label=label or None, position_float="centering"
    )
    atomic_write_text(path, latex.replace("±", r"$\pm$"))
    return path
