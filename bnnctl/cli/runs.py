"""``bnnctl runs ls`` and ``bnnctl runs migrate``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bnnctl.cli.app import runs_app
from bnnctl.cli.common import JSON_HELP, STRICT_HELP, emit_json, errors, fail_if_damaged, out, print_frame, records, say


@runs_app.command("ls")
def runs_ls(
    runs_dir: Path = typer.Option(Path("runs"), help="The runs folder."),
    write: Optional[Path] = typer.Option(None, help="Also write runs.csv and runs.md into this folder."),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List training runs as a table (rebuilt from the run folders; a damaged folder is a row, not an error)."""
    from bnnctl import api

    with errors():
        frame, files = api.runs_ls(runs_dir, write)
    for path in files:
        say(f"wrote {path}")
    if json_output:
        emit_json(records(frame))
    elif frame.empty:
        say(f"no runs under {runs_dir / 'train'}")
    else:
        print_frame(
            frame.drop(columns=[c for c in ("path", "name") if c in frame.columns]), f"runs in {runs_dir / 'train'}"
        )
    fail_if_damaged(frame, strict)


@runs_app.command("migrate")
def runs_migrate(
    runs_dir: Path = typer.Argument(Path("runs"), help="The runs folder whose grids to upgrade."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Give the cells of grids written by older bnnctl today's ids, so reruns resume them (nothing is retrained or deleted)."""
    from bnnctl import api

    with errors():
        results = api.runs_migrate(runs_dir)
    rows = [
        {"grid": str(r.grid_dir), "renamed": len(r.renamed), "unchanged": r.unchanged, "skipped": r.skipped}
        for r in results
    ]
    if json_output:
        return emit_json(rows)
    if not rows:
        say(f"no grid folders under {runs_dir / 'ablate'}")
    for row in rows:
        what = (
            f"left alone: {row['skipped']}"
            if row["skipped"]
            else f"{row['renamed']} cells renamed, {row['unchanged']} unchanged"
        )
        out.print(f"{row['grid']}: {what}", markup=False, highlight=False)
