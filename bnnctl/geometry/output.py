"""Where a geometry study writes: ``<runs_dir>/geometry/<study>/<YYYYmmdd-HHMMSS>/``.

Each folder holds config.yaml (the resolved study config), results.csv,
table.md, summary.json (headline numbers) and the study's PNG figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bnnctl.files import atomic_write_text, write_json
from bnnctl.reporting.tables import write_table
from bnnctl.runs.making import new_timestamped_folder


def study_dir(runs_dir: str | Path, study: str) -> Path:
    """A new folder for one run of ``study`` (``-2``, ``-3``... when two start in the same second).

    Made by the runs' one timestamped-folder maker, so studies, train runs and benchmarks are named alike.
    """
    return new_timestamped_folder(Path(runs_dir).expanduser() / "geometry" / study)


def write_study(folder: Path, config_yaml: str, table: pd.DataFrame, notes: dict[str, Any]) -> list[Path]:
    """config.yaml, results.csv, table.md and summary.json; returns their paths."""
    atomic_write_text(folder / "config.yaml", config_yaml)
    write_json(folder / "summary.json", notes)
    csv = write_table(table, folder, "results", markdown=False)
    shown = table.map(lambda v: f"{v:.3f}" if isinstance(v, float) else v)  # integers stay integers
    atomic_write_text(folder / "table.md", shown.to_markdown(index=False, disable_numparse=True) + "\n")
    return [folder / "config.yaml", *csv, folder / "table.md", folder / "summary.json"]
