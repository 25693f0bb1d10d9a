"""The geometry of binarization (Anderson & Berg 2018): one study per module, each writing its own folder.

``angles`` (random vectors: sign, ternary, Hadamard, rotated basis), ``weights``
(a trained run's weight vectors), with ``figures`` and ``output`` shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bnnctl.config.geometry import GeometryConfig, geometry_yaml


@dataclass
class StudyResult:
    folder: Path
    table: pd.DataFrame
    notes: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def angles_study(cfg: GeometryConfig, runs_dir: str | Path, run_dir: str | Path | None = None) -> StudyResult:
    """``bnnctl geometry angles``: random vectors, or with ``run_dir`` the weight vectors of a trained run."""
    from bnnctl.geometry import figures
    from bnnctl.geometry.angles import run_angles
    from bnnctl.geometry.output import study_dir, write_study

    if run_dir is not None:
        return _trained_weight_angles(cfg, runs_dir, run_dir)
    result = run_angles(cfg)
    folder = study_dir(runs_dir, "angles")
    notes = {"variant": result.variant, **result.notes}
    files = write_study(folder, geometry_yaml(cfg), result.table, notes) + figures.draw(result, folder)
    return StudyResult(folder, result.table, notes, files)


def _trained_weight_angles(cfg: GeometryConfig, runs_dir: str | Path, run_dir: str | Path) -> StudyResult:
    from bnnctl.geometry import figures
    from bnnctl.geometry.output import study_dir, write_study
    from bnnctl.geometry.weights import weight_angles
    from bnnctl.runs import load_trained

    _, model = load_trained(run_dir)
    table, layers = weight_angles(model, cfg)
    folder = study_dir(runs_dir, "weight-angles")
    notes = {"run": str(run_dir), "layers": len(layers)}
    config = f"run: {run_dir}\n" + geometry_yaml(cfg)
    files = write_study(folder, config, table, notes) + [figures.layer_histograms(layers, folder / "layer_angles.png")]
    return StudyResult(folder, table, notes, files)
