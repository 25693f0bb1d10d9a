"""Every geometry study as one function from its config (and trained runs) to a ``StudyOutput``.

A study computes; ``bnnctl.api.run_study`` does what all of them share (the
folder, config.yaml, results.csv, table.md, summary.json, the figures, the
page). ``STUDIES`` names them as the command line does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bnnctl.config.io import to_yaml as geometry_yaml
from bnnctl.config.schema import GeometryConfig
from bnnctl.errors import ConfigError


@dataclass
class StudyOutput:
    """What a study found: its table and notes, the folder name it writes to, and how to draw its figures."""

    folder_name: str  # runs_dir/geometry/<folder_name>/<time>/
    table: pd.DataFrame
    notes: dict[str, Any]
    config_text: str  # config.yaml: the trained runs it read, then the resolved study config
    draw: Callable[[Path], list[Path]]  # writes the figures (and extra tables) into the folder
    extra: dict[str, Any] = field(default_factory=dict)


def _config_text(cfg: GeometryConfig, run_dirs: Sequence[str | Path]) -> str:
    return "".join(f"run: {r}\n" for r in run_dirs) + geometry_yaml(cfg)


def _needs_runs(study: str, run_dirs: Sequence[str | Path], how_many: str) -> None:
    if how_many == "none" and run_dirs:
        raise ConfigError(f"unexpected argument {str(run_dirs[0])!r}: {study} studies a dataset (geometry.dataset=...)")
    if how_many in ("one", "many") and not run_dirs:
        raise ConfigError(f"RUN_DIR missing: {study} needs a trained run folder, e.g. runs/train/<time>_<name>_<id>")
    if how_many == "one" and len(run_dirs) > 1:
        raise ConfigError(f"{study} takes one RUN_DIR, got {len(run_dirs)}")


def angles(cfg: GeometryConfig, run_dirs: Sequence[str | Path], progress: Any = None) -> StudyOutput:
    """Random vectors vs their binarized versions (37.07 deg vs 90), or a trained run's weight vectors."""
    from bnnctl.geometry import figures

    if run_dirs:
        return _weight_angles(cfg, run_dirs)
    from bnnctl.geometry.random_angles import run_angles

    result = run_angles(cfg, progress) if progress is not None else run_angles(cfg)
    notes = {"variant": result.variant, **result.notes}
    return StudyOutput("angles", result.table, notes, _config_text(cfg, ()), lambda f: figures.draw(result, f))


def _weight_angles(cfg: GeometryConfig, run_dirs: Sequence[str | Path]) -> StudyOutput:
    from bnnctl.geometry import figures
    from bnnctl.geometry.weight_angles import weight_angles
    from bnnctl.runs import load_trained

    _needs_runs("angles", run_dirs, "one")
    _, model = load_trained(run_dirs[0])
    table, layers = weight_angles(model, cfg)
    notes = {"run": str(run_dirs[0]), "layers": len(layers)}
    draw = lambda f: [figures.layer_histograms(layers, f / "layer_angles.png")]
    return StudyOutput("weight-angles", table, notes, _config_text(cfg, run_dirs), draw)


def dot_products(cfg: GeometryConfig, run_dirs: Sequence[str | Path], progress: Any = None) -> StudyOutput:
    """a.W_b vs a.W_c per binary layer of a trained run, on ``geometry.images`` test images."""
    from bnnctl.data import load_dataset
    from bnnctl.geometry import figures
    from bnnctl.geometry.dot_products import dot_products as measure
    from bnnctl.runs import load_trained

    _needs_runs("dot-products", run_dirs, "one")
    run_cfg, model = load_trained(run_dirs[0])
    data = load_dataset(dataclasses.replace(run_cfg.data, val_size=0))
    images = data.test.x[: cfg.geometry.images]
    table, layers = measure(model, images, cfg.geometry.seed)
    notes = {"run": str(run_dirs[0]), "images": len(images), "data": run_cfg.data.name}
    draw = lambda f: [figures.dot_product_hists(layers, table, f / "dot_products.png")]
    return StudyOutput("dot-products", table, notes, _config_text(cfg, run_dirs), draw)


def filters(cfg: GeometryConfig, run_dirs: Sequence[str | Path], progress: Any = None) -> StudyOutput:
    """The share of unique k x k binary filters per conv layer of a trained run."""
    from bnnctl.geometry import figures
    from bnnctl.geometry.filters import unique_filters
    from bnnctl.runs import load_trained

    _needs_runs("filters", run_dirs, "one")
    _, model = load_trained(run_dirs[0])
    table = unique_filters(model)
    notes = {"run": str(run_dirs[0]), "layers": len(table)}
    draw = lambda f: [figures.filter_shares(table, f / "filters.png")]
    return StudyOutput("filters", table, notes, _config_text(cfg, run_dirs), draw)


def first_layer(cfg: GeometryConfig, run_dirs: Sequence[str | Path], progress: Any = None) -> StudyOutput:
    """PCA of a dataset's image patches; their angle to sign(patch) in the pixel vs the PCA basis."""
    from bnnctl.files import atomic_write_text
    from bnnctl.geometry import figures
    from bnnctl.geometry.first_layer import first_layer_study

    _needs_runs("first-layer", run_dirs, "none")
    table, spectrum, notes, patch_angles = first_layer_study(cfg)

    def draw(folder: Path) -> list[Path]:
        atomic_write_text(folder / "pca.csv", spectrum.to_csv(index=False))
        figure = figures.first_layer_figure(spectrum, patch_angles, notes, folder / "first_layer.png")
        return [folder / "pca.csv", figure]

    return StudyOutput("first-layer", table, notes, _config_text(cfg, ()), draw)


def weights(cfg: GeometryConfig, run_dirs: Sequence[str | Path], progress: Any = None) -> StudyOutput:
    """Latent vs binarized weight histograms per layer of one or more runs: W1 and relative L2."""
    from bnnctl.geometry import figures
    from bnnctl.geometry.distributions import weight_distributions
    from bnnctl.runs import load_trained

    _needs_runs("weights", run_dirs, "many")
    models = []
    for run_dir in run_dirs:
        run_cfg, model = load_trained(run_dir)
        models.append((f"{run_cfg.run_name} ({Path(run_dir).name})", model))
    table, layers = weight_distributions(models)
    notes = {"runs": [str(r) for r in run_dirs], "layers": len(layers)}
    draw = lambda f: [figures.weight_histograms(layers, table, f / "weight_histograms.png")]
    return StudyOutput("weights", table, notes, _config_text(cfg, run_dirs), draw)


StudyFunction = Callable[[GeometryConfig, Sequence[str | Path], Any], StudyOutput]
STUDIES: dict[str, StudyFunction] = {
    "angles": angles,
    "dot-products": dot_products,
    "filters": filters,
    "first-layer": first_layer,
    "weights": weights,
}
