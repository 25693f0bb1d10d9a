"""``bnnctl geometry <study>``: every geometry study goes through ``run_study``.

A study computes its table and notes (``bnnctl.geometry.studies``); here each
gets the same folder, files and page, so the studies differ only in what they
measure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bnnctl.process import computing


@dataclass
class StudyResult:
    """A finished study: its folder, table, notes (summary.json) and every file it wrote."""

    study: str
    folder: Path
    table: pd.DataFrame
    notes: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def study_names() -> list[str]:
    from bnnctl.geometry.studies import STUDIES

    return list(STUDIES)


def run_study(
    study: str,
    overrides: Sequence[str] = (),
    run_dirs: Sequence[str | Path] = (),
    *,
    progress: Any = None,
) -> StudyResult:
    """Run one geometry study (``angles``, ``dot-products``, ``filters``, ``first-layer``, ``weights``).

    ``overrides`` as on the command line (``geometry.dims=[16,256]``, ``binarize=ternary``,
    ``runs_dir=PATH``); ``run_dirs`` the trained runs a study reads (none for random
    vectors and first-layer). Writes ``<runs_dir>/geometry/<study>/<time>/``.
    """
    from bnnctl.config import split_runs_dir
    from bnnctl.config.load import load_geometry
    from bnnctl.errors import ConfigError
    from bnnctl.geometry.output import study_dir, write_study
    from bnnctl.geometry.studies import STUDIES
    from bnnctl.reporting.html import write_study_page

    if study not in STUDIES:
        raise ConfigError(f"unknown study {study!r}: one of {', '.join(STUDIES)}")
    runs_dir, rest = split_runs_dir(list(overrides))
    if run_dirs and any(o.startswith("binarize=") for o in rest):
        raise ConfigError("binarize= chooses the random-vector study; a trained run's layers use their own binarizers")
    with computing():
        output = STUDIES[study](load_geometry(study, rest), list(run_dirs), progress)
        folder = study_dir(runs_dir, output.folder_name)
        files = write_study(folder, output.config_text, output.table, output.notes) + output.draw(folder)
        files.append(write_study_page(folder))  # last: the page embeds the figures
    return StudyResult(study, folder, output.table, output.notes, files)
