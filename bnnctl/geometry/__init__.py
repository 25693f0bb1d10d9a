"""The geometry of binarization (Anderson & Berg 2018): one study per module, each writing its own folder.

``random_angles`` (random vectors: sign, ternary, Hadamard, rotated basis), ``weight_angles``
(a trained run's weight vectors), ``dot_products`` (a.W_b vs a.W_c per layer),
``first_layer`` (PCA of image patches), ``filters`` (unique binary filters),
``distributions`` (latent vs binarized weight values, Hadamard vs sign),
with ``figures`` and ``output`` shared.
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


def angles_study(
    cfg: GeometryConfig, runs_dir: str | Path, run_dir: str | Path | None = None, progress=None
) -> StudyResult:
    """``bnnctl geometry angles``: random vectors, or with ``run_dir`` the weight vectors of a trained run."""
    from bnnctl.geometry import figures
    from bnnctl.geometry.output import study_dir, write_study
    from bnnctl.geometry.random_angles import run_angles

    if run_dir is not None:
        return _trained_weight_angles(cfg, runs_dir, run_dir)
    result = run_angles(cfg, progress) if progress is not None else run_angles(cfg)
    folder = study_dir(runs_dir, "angles")
    notes = {"variant": result.variant, **result.notes}
    files = write_study(folder, geometry_yaml(cfg), result.table, notes) + figures.draw(result, folder)
    return _reported(StudyResult(folder, result.table, notes, files))


def _reported(result: StudyResult) -> StudyResult:
    """The study's report.html, written after its tables and figures (it embeds them)."""
    from bnnctl.report.html import write_report

    result.files.append(write_report(result.folder))
    return result


def angles(overrides: list[str] | tuple[str, ...] = (), run_dir: str | Path | None = None) -> pd.DataFrame:
    """``bnnctl geometry angles [RUN_DIR] OVERRIDES...`` from Python: the study's table (its folder is written too).

    ``angles()`` gives x vs sign(x) and x vs an independent vector per dimension
    (37.07 and 90 degrees in high dimension); ``angles(["binarize=ternary"])`` the
    threshold sweep; ``angles(run_dir=...)`` a trained run's weight vectors.
    ``runs_dir=PATH`` among the overrides says where the folder goes.
    """
    from bnnctl.config import split_runs_dir
    from bnnctl.config.geometry import load_geometry

    runs_dir, rest = split_runs_dir(list(overrides))
    return angles_study(load_geometry("angles", rest), runs_dir, run_dir).table


def _trained_weight_angles(cfg: GeometryConfig, runs_dir: str | Path, run_dir: str | Path) -> StudyResult:
    from bnnctl.geometry import figures
    from bnnctl.geometry.output import study_dir, write_study
    from bnnctl.geometry.weight_angles import weight_angles
    from bnnctl.runs import load_trained

    _, model = load_trained(run_dir)
    table, layers = weight_angles(model, cfg)
    folder = study_dir(runs_dir, "weight-angles")
    notes = {"run": str(run_dir), "layers": len(layers)}
    config = f"run: {run_dir}\n" + geometry_yaml(cfg)
    files = write_study(folder, config, table, notes) + [figures.layer_histograms(layers, folder / "layer_angles.png")]
    return _reported(StudyResult(folder, table, notes, files))


def _trained(run_dir: str | Path):
    from bnnctl.runs import load_trained

    return load_trained(run_dir)


def dot_products_study(cfg: GeometryConfig, runs_dir: str | Path, run_dir: str | Path) -> StudyResult:
    """``bnnctl geometry dot-products RUN_DIR``: a.W_b vs a.W_c per layer on ``geometry.images`` test images."""
    import dataclasses

    from bnnctl.data import load_dataset
    from bnnctl.geometry import figures
    from bnnctl.geometry.dot_products import dot_products
    from bnnctl.geometry.output import study_dir, write_study

    run_cfg, model = _trained(run_dir)
    data = load_dataset(dataclasses.replace(run_cfg.data, val_size=0))
    images = data.test.x[: cfg.geometry.images]
    table, layers = dot_products(model, images, cfg.geometry.seed)
    folder = study_dir(runs_dir, "dot-products")
    notes = {"run": str(run_dir), "images": len(images), "data": run_cfg.data.name}
    files = write_study(folder, f"run: {run_dir}\n" + geometry_yaml(cfg), table, notes)
    files.append(figures.dot_product_hists(layers, table, folder / "dot_products.png"))
    return _reported(StudyResult(folder, table, notes, files))


def filters_study(cfg: GeometryConfig, runs_dir: str | Path, run_dir: str | Path) -> StudyResult:
    """``bnnctl geometry filters RUN_DIR``: the share of unique k x k binary filters per conv layer."""
    from bnnctl.geometry import figures
    from bnnctl.geometry.filters import unique_filters
    from bnnctl.geometry.output import study_dir, write_study

    _, model = _trained(run_dir)
    table = unique_filters(model)
    folder = study_dir(runs_dir, "filters")
    notes = {"run": str(run_dir), "layers": len(table)}
    files = write_study(folder, f"run: {run_dir}\n" + geometry_yaml(cfg), table, notes)
    files.append(figures.filter_shares(table, folder / "filters.png"))
    return _reported(StudyResult(folder, table, notes, files))


def first_layer_study(cfg: GeometryConfig, runs_dir: str | Path) -> StudyResult:
    """``bnnctl geometry first-layer``: PCA of image patches, angles in the pixel vs the PCA basis."""
    from bnnctl.files import atomic_write_text
    from bnnctl.geometry import figures
    from bnnctl.geometry.first_layer import first_layer_study as study
    from bnnctl.geometry.output import study_dir, write_study

    table, spectrum, notes, angles = study(cfg)
    folder = study_dir(runs_dir, "first-layer")
    files = write_study(folder, geometry_yaml(cfg), table, notes)
    atomic_write_text(folder / "pca.csv", spectrum.to_csv(index=False))
    files += [folder / "pca.csv", figures.first_layer_figure(spectrum, angles, notes, folder / "first_layer.png")]
    return _reported(StudyResult(folder, table, notes, files))


def weights_study(cfg: GeometryConfig, runs_dir: str | Path, run_dirs: list[str | Path]) -> StudyResult:
    """``bnnctl geometry weights RUN_DIR...``: latent vs binarized weight histograms per layer, W1 and relative L2."""
    from bnnctl.geometry import figures
    from bnnctl.geometry.distributions import weight_distributions
    from bnnctl.geometry.output import study_dir, write_study

    models = []
    for run_dir in run_dirs:
        run_cfg, model = _trained(run_dir)
        models.append((f"{run_cfg.run_name} ({Path(run_dir).name})", model))
    table, layers = weight_distributions(models)
    folder = study_dir(runs_dir, "weights")
    notes = {"runs": [str(r) for r in run_dirs], "layers": len(layers)}
    config = "".join(f"run: {r}\n" for r in run_dirs) + geometry_yaml(cfg)
    files = write_study(folder, config, table, notes)
    files.append(figures.weight_histograms(layers, table, folder / "weight_histograms.png"))
    return _reported(StudyResult(folder, table, notes, files))
