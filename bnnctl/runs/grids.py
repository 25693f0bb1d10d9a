"""Grid folders: ``<runs_dir>/ablate/<grid>/`` with ``grid.yaml`` and one ordinary run folder per cell x seed.

The manifest records the grid, the command line's overrides and each cell's
id, so ``ablate table`` rebuilds the table from the folder alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bnnctl.errors import RunError
from bnnctl.files import atomic_write_text
from bnnctl.runs.making import safe_name

GRID_MANIFEST = "grid.yaml"
MANIFEST_SCHEMA = 2  # 2: cell ids hash what differs from the schema defaults; absent (1): the whole config


def grid_dir(runs_dir: str | Path, grid_name: str) -> Path:
    return Path(runs_dir).expanduser() / "ablate" / safe_name(grid_name)


def cell_run_dir(grid: Path, cell: str, seed: int) -> Path:
    """``<grid>/cells/<cell id>/seed-<n>``: one ordinary run folder per cell x seed."""
    return grid / "cells" / cell / f"seed-{seed}"


def write_manifest(grid: Path, manifest: dict[str, Any]) -> Path:
    from omegaconf import OmegaConf

    path = grid / GRID_MANIFEST
    grid.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, OmegaConf.to_yaml(OmegaConf.create({"schema": MANIFEST_SCHEMA, **manifest})))
    return path


def read_manifest(grid: str | Path) -> dict[Any, Any]:
    """``grid.yaml`` of a grid folder (any schema version): the grid, the overrides, each cell's id."""
    from omegaconf import OmegaConf

    grid = Path(grid).expanduser()
    path = grid / GRID_MANIFEST
    if not grid.exists():
        raise RunError(f"grid folder {grid} does not exist")
    if not grid.is_dir():
        raise RunError(f"{grid} is a file, not a grid folder (give the folder that holds {GRID_MANIFEST})")
    if not path.is_file():
        raise RunError(f"{grid} is not an ablation grid folder (no {GRID_MANIFEST})")
    try:
        manifest = OmegaConf.to_container(OmegaConf.load(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt file
        raise RunError(f"cannot read {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("cells"), list) or "grid" not in manifest:
        raise RunError(f"cannot read {path}: not a bnnctl grid manifest")
    manifest.setdefault("schema", 1)
    for cell in manifest["cells"]:
        if isinstance(cell, dict) and "id" in cell:
            cell["id"] = str(cell["id"])  # a hand-edited all-digit id reads as a number
    return manifest
