"""``bnnctl ablate grid``, ``bnnctl ablate table`` and ``bnnctl ablate compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer

from bnnctl.cli.app import ablate_app
from bnnctl.cli.common import (
    EXIT_CELLS_FAILED,
    JSON_HELP,
    STRICT_HELP,
    emit_json,
    errors,
    fail_if_damaged,
    options,
    out,
    print_frame,
    say,
)
from bnnctl.errors import ConfigError


def _print_grid_table(results: dict[str, Any], title: str) -> None:
    print_frame(results["display"], title)
    grid = results["manifest"]["grid"]
    source = (grid.get("reference") or {}).get("source")
    out.print(
        "mean ± half-width of the 95% t-interval over seeds" + (f"; report: {source}" if source else ""),
        markup=False,
        highlight=False,
    )


def _grid_json(results: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(results["table"].to_json(orient="records"))


@ablate_app.command(
    "grid",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=(
        f"Grids: {options('ablation')} (conf/ablation/), or a .yaml file of your own. "
        f"Launchers: {options('launcher')}. Overrides: ablation.KEY=V changes the grid "
        "(e.g. ablation.seeds=[0,1,2,3,4]); launcher=inline|local|ray|submitit and launcher.KEY=V pick where cells "
        "train (e.g. launcher.workers=2); runs_dir=PATH where the grid folder goes; anything else applies to every "
        "cell (data=fashion_mnist train.epochs=5). "
        "Exit codes: 0 all cells done, 2 bad input, 3 some cells failed (the others finished), 130 interrupted."
    ),
)
def ablate_grid(
    args: Optional[List[str]] = typer.Argument(
        None, help="[NAME] [OVERRIDES...]: the grid (default clip_dropout), then overrides.", show_default=False
    ),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Train every cell x seed of a grid (skipping those already DONE), then write its table and figure."""
    with errors(
        "finished cells are kept; run the same command again to train only the missing ones "
        "(a cut-off cell continues from its last finished epoch)"
    ):
        from bnnctl.cli.progress import grid_observer
        from bnnctl.config import load_grid, load_launcher
        from bnnctl.report.grid_tables import write_grid_results
        from bnnctl.sweep.grid import plan_grid, run_grid, split_grid_args

        name, grid_overrides, launcher_overrides, cell_overrides = split_grid_args(list(args or []))
        grid = load_grid(name, grid_overrides)
        launcher = load_launcher(launcher_overrides)
        plan = plan_grid(grid, cell_overrides)
        observer = grid_observer()
        try:
            result = run_grid(plan, launcher, observer)
        finally:
            observer.close()
        results = write_grid_results(plan.grid_dir)
        for task, moved in result.damaged:
            say(f"{task.key}: its finished folder could not be read; set aside as {moved} and trained again")
        if result.shared:
            say(
                f"{len(result.shared)} runs copied from other grids' finished twins (shared_from.txt names each source)"
            )
        for path in results["files"]:
            say(f"wrote {path}")
        if result.done:
            say(
                f"trained {len(result.done)} runs in {result.wall_s:.0f} s ({result.concurrency}): "
                f"{result.samples_per_s:.0f} training samples/s for the grid"
            )
        failed = [{"cell": t.cell.label, "seed": t.seed, "run_dir": t.run_dir, "error": e} for t, e in result.failed]
        if json_output:
            emit_json(
                {
                    "grid": grid.name,
                    "grid_dir": str(plan.grid_dir),
                    "runs": len(plan.tasks),
                    "skipped": len(result.skipped),
                    "shared": [{"run_dir": t.run_dir, "from": str(src)} for t, src in result.shared],
                    "trained": len(result.done),
                    "wall_s": result.wall_s,
                    "samples_per_s": result.samples_per_s,
                    "concurrency": result.concurrency,
                    "failed": failed,
                    "table": _grid_json(results),
                    "files": [str(p) for p in results["files"]],
                }
            )
        else:
            _print_grid_table(results, f"grid {grid.name} ({plan.grid_dir})")
        for f in failed:
            say(f"failed: {f['cell']} seed {f['seed']}: {f['error']} (traceback in {f['run_dir']}/error.txt)")
        if failed:
            raise typer.Exit(EXIT_CELLS_FAILED)


@ablate_app.command("table")
def ablate_table(
    grid_dir: Path = typer.Argument(..., help="A grid folder, e.g. runs/ablate/clip_dropout.", show_default=False),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Rebuild a grid's table (CSV, Markdown, LaTeX) and curves figure from its run folders.

    A damaged run folder is a row of runs.csv with status damaged and its reason; the table counts the others.
    """
    with errors():
        from bnnctl.report.grid_tables import write_grid_results

        results = write_grid_results(grid_dir)
        for path in results["files"]:
            say(f"wrote {path}")
        if json_output:
            emit_json(
                {"grid_dir": str(grid_dir), "table": _grid_json(results), "files": [str(p) for p in results["files"]]}
            )
        else:
            _print_grid_table(results, f"grid {results['manifest']['grid']['name']} ({grid_dir})")
        fail_if_damaged(results["per_seed"], strict)


@ablate_app.command("compare")
def ablate_compare(
    grid_dirs: List[Path] = typer.Argument(
        ..., help="Two or more grid folders; cells are matched by label, in the first grid's order.", show_default=False
    ),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for comparison.{csv,md,tex,png}."),
    metric: str = typer.Option(
        "peak_val_acc",
        help="An accuracy of the grid tables: peak_val_acc, final_val_acc, test_acc_at_peak, final_test_acc.",
    ),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Grids side by side (e.g. the report's recipe beside a correct BNN) with the published values."""
    with errors():
        from bnnctl.report.compare import write_comparison
        from bnnctl.report.grid_tables import ACCURACIES

        if metric not in ACCURACIES:
            raise ConfigError(f"--metric must be one of {', '.join(ACCURACIES)}, got {metric!r}")
        results = write_comparison(grid_dirs, out_dir, metric)
        for path in results["files"]:
            say(f"wrote {path}")
        if json_output:
            emit_json(
                {
                    "grids": results["grids"],
                    "metric": metric,
                    "table": json.loads(results["table"].to_json(orient="records")),
                    "files": [str(p) for p in results["files"]],
                }
            )
        else:
            print_frame(results["display"], f"{metric} by cell")
