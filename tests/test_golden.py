"""Golden tests: the published results do not move under a refactor.

A published grid names its cells by id (a hash of what each cell's config sets
beyond the schema defaults). A changed default, a renamed key or a new identity
rule would rename every published cell, and a rerun would then retrain them all
instead of resuming; a changed aggregation would change a published number.
These tests pin both: every published manifest's cell ids are recomputed from
its own overrides, and the committed run folders rebuild the published tables
byte for byte.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bnnctl.config.load import compose_train
from bnnctl.reporting.grid_tables import grid_tables, write_grid_tables
from bnnctl.runs import cell_id
from helpers import REPO

PUBLISHED_MANIFESTS = sorted((REPO / "docs" / "results").rglob("grid.yaml"))
# runs/published/<name>/ablate/<grid>/ -> its read copy under docs/results/ablation/<name>/
REBUILT = {
    "clip_dropout_fashion_15ep": "ablation/clip_dropout_fashion_15ep",
    "clip_dropout_fashion_15ep_avx512": "ablation/clip_dropout_fashion_15ep_avx512",
}
PINNED_FILES = ("results.csv", "runs.csv", "table.md", "table.tex")


# Today's id of every published cell. Schema-2 manifests also carry it themselves; grids written before
# (schema 1: a hash of the whole config) get these ids from `bnnctl runs migrate`, so they are pinned here.
PINNED_IDS = json.loads((REPO / "tests" / "fixtures" / "published_cell_ids.json").read_text())


def _manifest(path: Path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(path))


def _key(path: Path) -> str:
    return str(path.parent.relative_to(REPO / "docs" / "results"))


def test_there_are_published_grids_to_pin():
    assert len(PUBLISHED_MANIFESTS) >= 8


@pytest.mark.parametrize("manifest", PUBLISHED_MANIFESTS, ids=lambda p: str(p.parent.relative_to(REPO / "docs")))
def test_published_cell_ids_are_recomputed_from_their_overrides(manifest):
    grid = _manifest(manifest)
    seed = grid["grid"]["seeds"][0]
    pinned = PINNED_IDS[_key(manifest)]
    assert [label for label, _ in pinned] == [cell["label"] for cell in grid["cells"]]
    moved = []
    for (label, pinned_id), cell in zip(pinned, grid["cells"], strict=True):
        now = cell_id(compose_train([*cell["overrides"], f"train.seed={seed}"]))
        published = cell["id"] if grid.get("schema") == 2 else pinned_id
        if now != published or now != pinned_id:
            moved.append(f"{label}: published {published}, now {now}")
    assert not moved, (
        f"the cell ids of the published grid {manifest.parent.name} moved ({'; '.join(moved)}): a schema default, "
        "a key or the identity rule changed; keep the published ids (defaults are part of the run contract) or "
        "migrate the grids with `bnnctl runs migrate` and republish them"
    )


@pytest.mark.parametrize("name", sorted(REBUILT))
def test_published_tables_rebuild_byte_for_byte_from_their_run_folders(name, tmp_path, monkeypatch):
    source = REPO / "runs" / "published" / name / "ablate" / "clip_dropout"
    relative = Path("runs") / "published" / name / "ablate" / "clip_dropout"  # runs.csv names runs by this path
    shutil.copytree(source, tmp_path / relative, ignore=shutil.ignore_patterns(*PINNED_FILES, "*.png", "*.html"))
    monkeypatch.chdir(tmp_path)
    write_grid_tables(grid_tables(relative))
    published = REPO / "docs" / "results" / REBUILT[name]
    for file in PINNED_FILES:
        rebuilt, expected = (tmp_path / relative / file).read_text(), (published / file).read_text()
        assert rebuilt == expected, (
            f"{published / file} no longer rebuilds from {source}: the aggregation or the table format changed; "
            "if on purpose, rebuild and republish it with `bnnctl ablate table`"
        )
