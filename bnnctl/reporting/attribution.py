"""Attribution: what one change does to a grid's accuracy and to an on/off axis's gap, with Welch tests.

A grid of listed cells (each one change from a reference cell) crossed with a
two-valued axis (e.g. dropout off/on) answers two questions per change:

* its effect on the accuracy with the axis off: ``acc(change, off) - acc(ref, off)``;
* its effect on the axis's gap: ``[acc(change, on) - acc(change, off)] - [acc(ref, on) - acc(ref, off)]``.

Each effect is a difference of means over seeds. The first is Welch's
t-test; the second, a contrast of four means, uses the same construction
(Welch-Satterthwaite degrees of freedom for the sum of the four variances of
the means). Runs of two cells with the same seed start from the same weights
and see the same batches where the architectures allow, so they are not
independent; the unpaired test ignores that pairing and is conservative.
A change that is inert with the axis off shares its reference's runs there:
its first effect is exactly zero (no test), and its gap effect is the
difference of the two cells with the axis on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bnnctl.reporting.tables import write_latex, write_table


@dataclass(frozen=True)
class Contrast:
    """sum_i sign_i * mean_i over independent groups, with its Welch t-interval and two-sided p-value."""

    estimate: float
    half_width: float
    p_value: float

    @classmethod
    def of(cls, groups: list[tuple[int, pd.Series]], confidence: float = 0.95) -> Contrast:
        from scipy import stats

        values = [(sign, g.dropna().astype(float)) for sign, g in groups]
        if any(len(g) == 0 for _, g in values):
            return cls(math.nan, math.nan, math.nan)
        estimate = sum(sign * float(g.mean()) for sign, g in values)
        if any(len(g) < 2 for _, g in values):
            return cls(estimate, math.nan, math.nan)
        parts = [float(g.var(ddof=1)) / len(g) for _, g in values]  # variances of the means
        var = sum(parts)
        if var == 0:  # every seed alike in every group: no test
            return cls(estimate, 0.0, math.nan)
        df = var**2 / sum(p**2 / (len(g) - 1) for p, (_, g) in zip(parts, values, strict=True))
        se = math.sqrt(var)
        half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
        p = float(2 * stats.t.sf(abs(estimate) / se, df))
        return cls(estimate, half, p)


def gap_axis(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The grid's one two-valued axis, when the grid lists cells and has exactly that axis (else None)."""
    grid = manifest["grid"]
    axes = grid.get("axes") or []
    if not grid.get("cells") or len(axes) != 1 or len(axes[0]["values"]) != 2:
        return None
    return axes[0]


def attribution_table(manifest: dict[str, Any], per_seed: pd.DataFrame, metric: str = "peak_val_acc") -> pd.DataFrame:
    """One row per listed cell (but the first): its reference, the levels, both effects with CI and p-value."""
    axis = gap_axis(manifest)
    if axis is None:
        raise ValueError("an attribution needs listed cells and exactly one two-valued axis")
    on_suffix = "+" + (axis.get("short") or axis["key"])
    specs = manifest["grid"]["cells"]
    ids = {c["label"]: c["id"] for c in manifest["cells"]}
    done = per_seed[per_seed["status"] == "done"]

    def values(label: str) -> pd.Series:
        return done.loc[done["cell"] == label, metric]

    rows = []
    for spec in specs[1:]:
        label, ref = spec["label"], spec.get("compare_to") or specs[0]["label"]
        s_off, s_on, r_off, r_on = (values(x) for x in (label, label + on_suffix, ref, ref + on_suffix))
        shared_off = ids.get(label) == ids.get(ref)
        base = Contrast.of([(1, s_off), (-1, r_off)])
        if shared_off:  # the off terms are the same runs: they cancel, and so does their noise
            gap = Contrast.of([(1, s_on), (-1, r_on)])
        else:
            gap = Contrast.of([(1, s_on), (-1, s_off), (-1, r_on), (1, r_off)])
        rows.append(
            {
                "change": label,
                "note": spec.get("note", ""),
                "compared_to": ref,
                "seeds": f"{len(s_off)}+{len(s_on)} vs {len(r_off)}+{len(r_on)}",
                "off_mean": s_off.mean(),
                "on_mean": s_on.mean(),
                "gap_mean": s_on.mean() - s_off.mean(),
                "ref_off_mean": r_off.mean(),
                "ref_gap_mean": r_on.mean() - r_off.mean(),
                "effect_off": 0.0 if shared_off else base.estimate,
                "effect_off_ci": math.nan if shared_off else base.half_width,
                "effect_off_p": math.nan if shared_off else base.p_value,
                "effect_gap": gap.estimate,
                "effect_gap_ci": gap.half_width,
                "effect_gap_p": gap.p_value,
                "shares_off_runs": shared_off,
            }
        )
    return pd.DataFrame(rows)


def _points(value: float, half: float) -> str:
    if value != value:
        return "--"
    return f"{value * 100:+.2f}" + ("" if half != half else f" ± {half * 100:.2f}")


def _pct(value: float, signed: bool = False) -> str:
    return "--" if value != value else (f"{value * 100:+.2f}" if signed else f"{value * 100:.2f}")


def _p(p: float, shared: bool = False) -> str:
    if shared:
        return "same runs"
    return "--" if p != p else ("<0.001" if p < 0.001 else f"{p:.3f}")


def display_attribution(table: pd.DataFrame, axis_name: str) -> pd.DataFrame:
    """The attribution as people read it: accuracies in %, effects in points with their 95% CI."""
    return pd.DataFrame(
        {
            "change": table["change"],
            "vs": table["compared_to"],
            f"peak % ({axis_name} off)": [_pct(v) for v in table["off_mean"]],
            f"peak % ({axis_name} on)": [_pct(v) for v in table["on_mean"]],
            "effect off (points)": [
                _points(v, h) for v, h in zip(table["effect_off"], table["effect_off_ci"], strict=True)
            ],
            "p off": [_p(p, s) for p, s in zip(table["effect_off_p"], table["shares_off_runs"], strict=True)],
            f"{axis_name} gap (points)": [_pct(v, signed=True) for v in table["gap_mean"]],
            "effect on gap (points)": [
                _points(v, h) for v, h in zip(table["effect_gap"], table["effect_gap_ci"], strict=True)
            ],
            "p gap": [_p(p) for p in table["effect_gap_p"]],
            "what changes": table["note"],
        }
    )


def write_attribution(grid_dir: Path, manifest: dict[str, Any], per_seed: pd.DataFrame) -> list[Path]:
    """attribution.csv, .md, .tex and .png in the grid folder (nothing when the grid is not an attribution)."""
    from bnnctl.files import atomic_write_text
    from bnnctl.reporting.plots import plot_attribution

    axis = gap_axis(manifest)
    if axis is None:
        return []
    table = attribution_table(manifest, per_seed)
    if table.empty:
        return []
    name = axis.get("short") or axis["key"]
    shown = display_attribution(table, name)
    first = manifest["grid"]["cells"][0]["label"]
    caption = (
        f"Attribution ({manifest['grid']['name']}): each change's effect on the peak accuracy with {name} off, and "
        f"on the {name} gap (on minus off), against {first} (or the cell named in 'vs'); mean over seeds ± half-width "
        "of the 95% Welch t-interval; p: two-sided Welch test."
    )
    files = write_table(table, grid_dir, "attribution", markdown=False)
    md = grid_dir / "attribution.md"
    atomic_write_text(md, f"{caption}\n\n{shown.to_markdown(index=False, disable_numparse=True)}\n")
    files += [md, write_latex(shown, grid_dir / "attribution.tex", caption=caption, label="tab:attribution")]
    files.append(plot_attribution(table, grid_dir / "attribution.png", name, first))
    return files
