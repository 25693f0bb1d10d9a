"""``bnnctl runs migrate``: grid folders written before run ids hashed only non-default values.

Until manifest schema 2 a cell's id hashed its whole resolved config, so the
ids of old grid folders are not the ones today's ``ablate grid`` computes, and
a rerun would retrain every finished cell beside them. Migration gives every
cell folder its id under today's rule, read from the config its own runs
wrote, and renames ``cells/<old id>`` to ``cells/<new id>``; that covers cells
of earlier commands in the same grid folder that the manifest no longer lists.
Nothing is deleted or retrained: the old manifest stays beside the new one as
``grid.v1.yaml``, and run folders keep every file. A migration cut off midway
is finished by running it again (a renamed cell is recognised as such).
``ablate table`` reads old and new grids alike, so migrating is only needed to
resume or extend an old grid.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bnnctl.config import split_runs_dir
from bnnctl.config.load import compose_train, load_yaml
from bnnctl.errors import BnnctlError, RunError
from bnnctl.runs.folder import CONFIG
from bnnctl.runs.grids import GRID_MANIFEST, MANIFEST_SCHEMA, read_manifest, write_manifest
from bnnctl.runs.ids import cell_id
from bnnctl.sweep.lock import GridLock

V1_MANIFEST_COPY = "grid.v1.yaml"


@dataclass
class GridMigration:
    grid_dir: Path
    renamed: dict[str, str] = field(default_factory=dict)  # old cell id -> new
    unchanged: int = 0
    skipped: str | None = None  # why this grid was left alone


def _id_from_runs(cell_dir: Path) -> str | None:
    """Today's id of a cell folder, from the configs its runs wrote (None: no run has started)."""
    ids = {cell_id(load_yaml(p)) for p in sorted(cell_dir.glob(f"seed-*/{CONFIG}"))}
    if len(ids) > 1:
        raise RunError(f"the seeds in {cell_dir} disagree about their config")
    return ids.pop() if ids else None


def _id_from_overrides(cell: dict[str, Any]) -> str:
    """Today's id of a listed cell no run of which has started: composed again from its overrides."""
    _, overrides = split_runs_dir(list(cell.get("overrides", [])))
    return cell_id(compose_train([*overrides, "train.seed=0"]))


def _rename(cells: Path, old: str, new: str) -> None:
    if (cells / new).exists():
        raise RunError(f"{cells / new} exists already beside {cells / old}; move one away and migrate again")
    (cells / old).rename(cells / new)


def _plan(grid: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """old id -> new id for every cell folder on disk and every cell the manifest lists."""
    cells = grid / "cells"
    plan = {}
    for folder in sorted(p for p in cells.glob("*") if p.is_dir()) if cells.is_dir() else []:
        new = _id_from_runs(folder)
        if new is not None:
            plan[folder.name] = new
    for cell in manifest["cells"]:
        if cell["id"] not in plan:
            renamed_before = _id_from_overrides(cell)  # cut off midway: the folder may carry its new name already
            plan[cell["id"]] = renamed_before
    return plan


def migrate_grid(grid: Path) -> GridMigration:
    """Give every cell of one grid folder today's id (a grid already at schema 2 is left alone)."""
    result = GridMigration(grid)
    manifest = read_manifest(grid)
    if manifest["schema"] >= MANIFEST_SCHEMA:
        result.skipped = f"already at schema {manifest['schema']}"
        return result
    with GridLock(grid):
        plan = _plan(grid, manifest)
        if not (grid / V1_MANIFEST_COPY).exists():
            shutil.copy2(grid / GRID_MANIFEST, grid / V1_MANIFEST_COPY)
        for old, new in plan.items():
            if new == old:
                result.unchanged += 1
            elif (grid / "cells" / old).exists():
                _rename(grid / "cells", old, new)
                result.renamed[old] = new
        for cell in manifest["cells"]:
            cell["id"] = plan[cell["id"]]
        manifest.pop("schema", None)
        write_manifest(grid, manifest)  # last: until it is written, the grid reads as schema 1
    return result


def migrate_runs(runs_dir: str | Path) -> list[GridMigration]:
    """Migrate every grid folder under ``<runs_dir>/ablate``; one that cannot be migrated is reported, not fatal."""
    parent = Path(runs_dir).expanduser() / "ablate"
    results = []
    grids = sorted(p for p in parent.glob("*") if (p / GRID_MANIFEST).is_file()) if parent.is_dir() else []
    for grid in grids:
        try:
            results.append(migrate_grid(grid))
        except BnnctlError as exc:
            results.append(GridMigration(grid, skipped=str(exc)))
    return results
