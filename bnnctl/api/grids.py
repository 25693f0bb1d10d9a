"""Ablation grids: train one (``bnnctl ablate grid``), rebuild its tables (``ablate table``), compare grids.

A grid's tables, figures and page are always written from a ``GridTables``
rebuilt from its run folders; a command that reads results never writes fewer
finished runs' worth of table over more (``report.grid_tables.refuse_to_shrink``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bnnctl.process import computing

if TYPE_CHECKING:
    import pandas as pd

    from bnnctl.reporting.grid_tables import GridTables
    from bnnctl.sweep import GridObserver, GridResult


@dataclass
class AblateResult:
    """What ``bnnctl ablate grid`` did and the tables it wrote.

    ``training``: which cells were trained, skipped, shared or failed (``failed``
    non-empty is the CLI's exit 3); ``tables.display`` the table as ``table.md``
    shows it, ``tables.table`` the numbers behind it; ``files`` what was written.
    """

    training: GridResult
    tables: GridTables
    files: list[Path] = field(default_factory=list)

    @property
    def grid_dir(self) -> Path:
        return self.tables.folder

    @property
    def table(self) -> pd.DataFrame:
        return self.tables.display

    @property
    def cells(self) -> pd.DataFrame:
        return self.tables.table

    @property
    def ok(self) -> bool:
        """Every cell x seed finished (the CLI's exit 0; otherwise 3)."""
        return self.training.ok

    @property
    def plan(self) -> Any:
        return self.training.plan

    @property
    def done(self) -> list[Any]:
        """The runs trained by this call (finished ones found on disk are ``training.skipped``)."""
        return self.training.done

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [
            {"cell": t.cell.label, "seed": t.seed, "run_dir": t.run_dir, "error": e} for t, e in self.training.failed
        ]


def ablate(
    grid: str = "clip_dropout", overrides: Sequence[str] = (), *, observer: GridObserver | None = None
) -> AblateResult:
    """Train a grid as ``bnnctl ablate grid GRID OVERRIDES...`` does, then write its tables, figures and page.

    Finished cells are skipped, so calling it again trains only what is missing.
    """
    from bnnctl.config.load import load_grid, load_launcher
    from bnnctl.sweep import plan_grid, run_grid, split_grid_args

    name, grid_overrides, launcher_overrides, cell_overrides = split_grid_args([grid, *overrides])
    with computing():
        plan = plan_grid(load_grid(name, grid_overrides), cell_overrides)
        training = run_grid(plan, load_launcher(launcher_overrides), observer)
        tables, files = rebuild_grid(plan.grid_dir)
    return AblateResult(training, tables, files)


def ablate_table(grid_dir: str | Path) -> AblateTable:
    """``bnnctl ablate table GRID_DIR``: rebuild the tables, figures and page from the grid's run folders.

    Refuses (``RunError``, nothing written) where that would replace a table of
    more finished runs, e.g. on a published copy whose run folders live elsewhere.
    """
    tables, files = rebuild_grid(Path(grid_dir).expanduser())
    return AblateTable(tables, files)


@dataclass
class AblateTable:
    tables: GridTables
    files: list[Path]


def rebuild_grid(grid_dir: Path) -> tuple[GridTables, list[Path]]:
    """Tables, figures and page from the grid's run folders (never fewer finished runs than its tables hold)."""
    from bnnctl.reporting.grid_tables import grid_tables, write_grid_tables
    from bnnctl.reporting.html import write_grid_page

    tables = grid_tables(grid_dir)
    files = write_grid_tables(tables)
    files.append(write_grid_page(tables))  # last: the page embeds every figure above
    return tables, files


def compare(grid_dirs: Sequence[str | Path], out_dir: str | Path, metric: str = "peak_val_acc") -> dict[str, Any]:
    """``bnnctl ablate compare GRID... -o OUT``: grids side by side by cell label, with the published values.

    Returns ``table`` (numbers), ``display`` (as comparison.md shows it), ``grids`` and ``files``.
    """
    from bnnctl.errors import ConfigError
    from bnnctl.reporting.compare import write_comparison
    from bnnctl.reporting.grid_tables import ACCURACIES

    if metric not in ACCURACIES:
        raise ConfigError(f"--metric must be one of {', '.join(ACCURACIES)}, got {metric!r}")
    return write_comparison([Path(g) for g in grid_dirs], Path(out_dir), metric)
