"""``bnnctl ablate grid``, ``bnnctl ablate table`` and ``bnnctl ablate compare``."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import List, Optional

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
    records,
    say,
)


def _print_grid_table(tables, title: str) -> None:
    print_frame(tables.display, title)
    source = (tables.grid.get("reference") or {}).get("source")
    out.print(
        "mean ± half-width of the 95% t-interval over seeds" + (f"; report: {source}" if source else ""),
        markup=False,
        highlight=False,
    )


def _say_wrote(files) -> None:
    for path in files:
        say(f"wrote {path}")


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
    from bnnctl.api import ablate
    from bnnctl.cli.progress import grid_observer

    kept = (
        "finished cells are kept; run the same command again to train only the missing ones "
        "(a cut-off cell continues from its last finished epoch)"
    )
    args = list(args or [])
    name, overrides = (args[0], args[1:]) if args and "=" not in args[0] else ("clip_dropout", args)
    with errors(kept), closing(grid_observer()) as observer:
        result = ablate(name, overrides, observer=observer)
    _say_grid_training(result)
    if json_output:
        emit_json(_grid_json(result))
    else:
        _print_grid_table(result.tables, f"grid {result.tables.grid['name']} ({result.grid_dir})")
    for f in result.failed:
        say(f"failed: {f['cell']} seed {f['seed']}: {f['error']} (traceback in {f['run_dir']}/error.txt)")
    if result.failed:
        raise typer.Exit(EXIT_CELLS_FAILED)


def _say_grid_training(result) -> None:
    training = result.training
    for task, moved in training.damaged:
        say(f"{task.key}: its finished folder could not be read; set aside as {moved} and trained again")
    if training.shared:
        say(f"{len(training.shared)} runs copied from other grids' finished twins (shared_from.txt names each source)")
    _say_wrote(result.files)
    if training.done:
        say(
            f"trained {len(training.done)} runs in {training.wall_s:.0f} s ({training.concurrency}): "
            f"{training.samples_per_s:.0f} training samples/s for the grid"
        )


def _grid_json(result) -> dict:
    training = result.training
    return {
        "grid": result.tables.grid["name"],
        "grid_dir": str(result.grid_dir),
        "runs": len(training.plan.tasks),
        "skipped": len(training.skipped),
        "shared": [{"run_dir": t.run_dir, "from": str(src)} for t, src in training.shared],
        "trained": len(training.done),
        "wall_s": training.wall_s,
        "samples_per_s": training.samples_per_s,
        "concurrency": training.concurrency,
        "failed": result.failed,
        "table": records(result.cells),
        "files": [str(p) for p in result.files],
    }


@ablate_app.command("table")
def ablate_table(
    grid_dir: Path = typer.Argument(..., help="A grid folder, e.g. runs/ablate/clip_dropout.", show_default=False),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Rebuild a grid's table (CSV, Markdown, LaTeX) and curves figure from its run folders.

    A damaged run folder is a row of runs.csv with status damaged and its reason; the table counts the others.
    Tables of more finished runs than the folder holds (a published copy) are never overwritten: exit 2.
    """
    from bnnctl.api import ablate_table as rebuild

    with errors():
        result = rebuild(grid_dir)
    _say_wrote(result.files)
    if json_output:
        emit_json(
            {"grid_dir": str(grid_dir), "table": records(result.tables.table), "files": [str(p) for p in result.files]}
        )
    else:
        _print_grid_table(result.tables, f"grid {result.tables.grid['name']} ({grid_dir})")
    fail_if_damaged(result.tables.per_seed, strict)


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
    from bnnctl.api import compare

    with errors():
        results = compare(grid_dirs, out_dir, metric)
    _say_wrote(results["files"])
    if json_output:
        emit_json(
            {
                "grids": results["grids"],
                "metric": metric,
                "table": records(results["table"]),
                "files": [str(p) for p in results["files"]],
            }
        )
    else:
        print_frame(results["display"], f"{metric} by cell")
