"""``bnnctl report``: one self-contained HTML page for a run, a grid or a study folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bnnctl.cli.app import app
from bnnctl.cli.common import JSON_HELP, emit_json, errors, out


@app.command("report")
def report(
    path: Path = typer.Argument(
        ..., help="A run, grid or study folder (train, ablate, geometry, bench).", show_default=False
    ),
    output: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        help="Where to write it (default: PATH/report.html; elsewhere, only the page is written).",
    ),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Write PATH/report.html: config, sortable tables, figures (embedded) and environment on one page.

    Opens without a network or the folder. A grid's page also has its per-cell curves, the reference values and
    every seed's run; with the grid's run folders present its tables are rebuilt from them first.
    `ablate grid`, `ablate table`, the geometry studies and `bench gemm` write it themselves.
    """
    from bnnctl import api

    with errors():
        result = api.report(path, output)
    if json_output:
        emit_json({"report": str(result.page), "kind": result.kind, "bytes": result.page.stat().st_size})
    else:
        out.print(f"wrote {result.page}", markup=False, highlight=False)
