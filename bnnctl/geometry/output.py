"""Where a geometry study writes: ``<runs_dir>/geometry/<study>/<YYYYmmdd-HHMMSS>/``.

Each folder holds config.yaml (the resolved study config), results.csv,
table.md, summary.json (headline numbers) and the study's PNG figures.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd

from bnnctl.errors import RunError
from bnnctl.files import atomic_write_text, write_json
from bnnctl.report.tables import write_table


def study_dir(runs_dir: str | Path, study: str) -> Path:
    """A new folder for one run of ``study`` (``-2``, ``-3``... when two start in the same second)."""
    parent = Path(runs_dir).expanduser() / "geometry" / study
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        path = parent / (stamp if attempt == 0 else f"{stamp}-{attempt + 1}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunError(f"cannot create {path}: {exc.strerror or exc}") from None
    raise RunError(f"cannot create a folder under {parent}")


def write_study(folder: Path, config_yaml: str, table: pd.DataFrame, notes: dict[str, Any]) -> list[Path]:
    """config.yaml, results.csv, table.md and summary.json; returns their paths."""
    atomic_write_text(folder / "config.yaml", config_yaml)
    write_json(folder / "summary.json", notes)
    csv = write_table(table, folder, "results", markdown=False)
    shown = table.map(lambda v: f"{v:.3f}" if isinstance(v, float) else v)  # integers stay integers
    atomic_write_text(folder / "table.md", shown.to_markdown(index=False, disable_numparse=True) + "\n")
    return [folder / "config.yaml", *csv, folder / "table.md", folder / "summary.json"]
