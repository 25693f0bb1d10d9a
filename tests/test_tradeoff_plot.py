"""The accuracy-against-bytes figure draws each method in its colour and each world size with its marker."""

import pandas as pd

from bnnctl.reporting.grid_tables import grid_caption
from bnnctl.reporting.plots import plot_accuracy_vs_bytes, tradeoff_points

MANIFEST = {
    "grid": {
        "name": "dist_compress",
        "axes": [
            {"key": "dist.compress", "values": ["none", "bf16", "sign"], "short": "compress"},
            {"key": "dist.world_size", "values": [1, 2, 4], "short": "W"},
        ],
    }
}
BYTES = {"none": 3_735_632.0, "bf16": 1_867_816.0, "sign": 116_747.0}


def _table() -> pd.DataFrame:
    rows = []
    for method, sent in BYTES.items():
        for w in (1, 2, 4):
            rows.append(
                {
                    "dist.compress": method,  # dotted names, as the grid's table has them
                    "dist.world_size": w,
                    "peak_val_acc_mean": 0.87,
                    "peak_val_acc_ci_lo": 0.865,
                    "comm_bytes_per_step_mean": float("nan") if (method, w) == ("none", 1) else sent,
                }
            )
    return pd.DataFrame(rows)


def test_each_method_has_its_colour_and_each_world_size_its_marker():
    points = tradeoff_points(_table(), MANIFEST)
    assert len(points) == 8  # float32 in one process sends nothing: no point
    by_method = {}
    for p in points:
        by_method.setdefault(p.colour, []).append(p)
    assert len(by_method) == 3
    sign = by_method["C2"]
    assert [p.marker for p in sign] == ["o", "s", "D"]
    xs = [p.bytes_per_step for p in sign]
    assert xs == sorted(xs) and len(set(xs)) == 3  # spread sideways, in world-size order
    assert abs(xs[1] - BYTES["sign"]) < 1e-6 and 0.9 < xs[0] / BYTES["sign"] < 1  # the middle one where it is
    assert all(abs(p.accuracy - 87.0) < 1e-9 and abs(p.half_width - 0.5) < 1e-9 for p in points)


def test_the_figure_is_written(tmp_path):
    out = plot_accuracy_vs_bytes(_table(), MANIFEST, tmp_path / "accuracy_vs_bytes.png")
    assert out is not None and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_grid_without_a_published_source_does_not_name_one():
    assert grid_caption({"name": "g", "description": "d"}) == (
        "Ablation grid g: d. Mean ± half-width of the 95% t-interval over seeds."
    )
    assert grid_caption({"name": "g", "description": "d", "reference": {"source": "the report"}}).endswith(
        "; 'report' is the report."
    )
