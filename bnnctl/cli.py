"""The ``bnnctl`` command line: parse, call the library, print. No tensors here.

Every command takes Hydra overrides where it composes a config, prints a rich
table at the end (``--json`` prints a machine-readable summary instead), and
exits 0; bad input exits 2 with one line naming what is wrong; Ctrl-C exits 130.
Output that is not a terminal gets no colour and no live progress.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator, List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bnnctl.errors import BnnctlError

out = Console()                  # results: tables, JSON
if not out.is_terminal:          # piped or logged: no 80-column wrapping of wide tables
    out = Console(width=int(os.environ.get("COLUMNS", 200)))
err = Console(stderr=True)       # progress, messages, errors

OVERRIDES_HELP = "Hydra overrides, e.g. model=bnn_mlp data=fashion_mnist train.epochs=3 binarize=stochastic"
JSON_HELP = "Print a machine-readable JSON summary on stdout instead of tables."


def _groups_help() -> str:
    try:
        from bnnctl.config import describe_groups

        groups = describe_groups().replace("\n", "\n\n")
    except BnnctlError as exc:  # a broken install: say so in --help rather than crash
        groups = f"(config groups unavailable: {exc})"
    return (
        "Config groups (pick one option each, e.g. model=bnn_mlp):\n\n" + groups +
        "\n\nAny key can be overridden (train.epochs=3, train.weight_clip=true, model.dropout=0.5, "
        "optimizer.lr=3e-3, data.root=/path); see conf/ for every key."
    )


def _options(group: str) -> str:
    try:
        from bnnctl.config import group_options

        return ", ".join(group_options(group))
    except BnnctlError as exc:
        return f"(unavailable: {exc})"


app = typer.Typer(
    name="bnnctl",
    help="Experiment runner for binary neural networks: train, evaluate and compare BNNs on real data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
runs_app = typer.Typer(help="Inspect run folders.", no_args_is_help=True)
bench_app = typer.Typer(help="Speed benchmarks that print their figures.", no_args_is_help=True)
ablate_app = typer.Typer(help="Ablation grids: cells x seeds, resumable, tables with confidence intervals.",
                         no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(bench_app, name="bench")
app.add_typer(ablate_app, name="ablate")

EXIT_CELLS_FAILED = 3   # `ablate grid`: the grid ran, but some cells failed


def _say(message: str) -> None:
    """A plain line on stderr: no rich markup or highlighting, never wrapped."""
    err.print(message, markup=False, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def _errors(interrupted: str = "finished epochs are kept in the run folder, which has no DONE marker") -> Iterator[None]:
    """One line and exit 2 for bad input, 130 for Ctrl-C, 1 (one line) for anything unexpected."""
    try:
        yield
    except BnnctlError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        _say(f"interrupted: {interrupted}")
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug: one line, traceback on request
        if os.environ.get("BNNCTL_DEBUG"):
            raise
        _say(f"internal error: {type(exc).__name__}: {exc} (set BNNCTL_DEBUG=1 for the traceback)")
        raise typer.Exit(1) from None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


def _print_key_values(title: str, items: dict[str, Any], console: Console) -> None:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in items.items():
        table.add_row(key, _fmt(value))
    console.print(table)


def _print_frame(frame, title: str, console: Console) -> None:
    table = Table(title=title, header_style="bold")
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[_fmt(v) if v == v else "" for v in row])  # v != v: NaN
    console.print(table)


def _emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


# --- progress -----------------------------------------------------------------

def _observer():
    """Rich progress bars on a terminal, one plain line per epoch otherwise."""
    from bnnctl.train import TrainObserver

    class LineObserver(TrainObserver):
        def on_fit_start(self, *, epochs, steps_per_epoch, run, device):
            where = f" -> {run.path}" if run is not None else ""
            _say(f"training {epochs} epochs x {steps_per_epoch} steps on {device}{where}")

        def on_epoch_end(self, record):
            parts = [f"epoch {record['epoch']}", f"loss {record['train_loss']:.4f}", f"train_acc {record['train_acc']:.4f}"]
            parts += [f"{k} {record[k]:.4f}" for k in ("val_acc", "test_acc") if k in record]
            parts.append(f"{record['epoch_time_s']:.1f}s")
            _say("  ".join(parts))

    class RichObserver(LineObserver):
        def __init__(self):
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                console=err, transient=False,
            )

        def on_fit_start(self, *, epochs, steps_per_epoch, run, device):
            super().on_fit_start(epochs=epochs, steps_per_epoch=steps_per_epoch, run=run, device=device)
            self.progress.start()
            self.epochs = self.progress.add_task("epochs", total=epochs, info="")
            self.steps = self.progress.add_task("epoch 1", total=steps_per_epoch, info="")

        def on_step(self, *, epoch, step, loss):
            info = {"info": f"loss {loss:.4f}"} if loss is not None else {}
            self.progress.update(self.steps, completed=step, description=f"epoch {epoch + 1}", **info)

        def on_epoch_end(self, record):
            accs = "  ".join(f"{k} {record[k]:.4f}" for k in ("train_acc", "val_acc", "test_acc") if k in record)
            self.progress.update(self.epochs, advance=1, info=accs)
            self.progress.reset(self.steps)

        def on_fit_end(self, summary):
            self.progress.stop()

    return RichObserver() if err.is_terminal else LineObserver()


# --- commands -----------------------------------------------------------------

@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=_groups_help(),
)
def train(
    overrides: Optional[List[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Train a model and write a run folder runs/train/<time>_<name>_<hash>/."""
    with _errors():
        from bnnctl.config import compose_train
        from bnnctl.runs import create_run, discard_if_untrained
        from bnnctl.train import fit, run_identity

        overrides = list(overrides or [])
        cfg = compose_train(overrides)
        run = create_run(cfg.runs_dir, "train", cfg.run_name, run_identity(cfg))
        observer = _observer()
        try:
            summary = fit(cfg, run, observer, overrides)
        except BnnctlError:
            discard_if_untrained(run)  # e.g. the data is missing: no empty folder left behind
            raise
        finally:
            if hasattr(observer, "progress"):
                observer.progress.stop()
        summary["run_dir"] = str(run.path)
        if json_output:
            _emit_json(summary)
        else:
            _print_key_values(f"run {run.name}", summary, out)


@app.command("eval")
def eval_(
    run_dir: Path = typer.Argument(..., help="A run folder written by `bnnctl train`.", show_default=False),
    data_root: Optional[str] = typer.Option(None, help="Look for the dataset here instead of the run's data.root."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or auto (default: the run's train.device)."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Evaluate a run's checkpoint on the test set; writes eval.json into the run folder."""
    with _errors():
        from bnnctl.evaluate import evaluate_run

        metrics = evaluate_run(run_dir, data_root=data_root, device=device)
        if json_output:
            _emit_json(metrics)
        else:
            _print_key_values(f"eval {Path(run_dir).name}", metrics, out)


@runs_app.command("ls")
def runs_ls(
    runs_dir: Path = typer.Option(Path("runs"), help="The runs folder."),
    write: Optional[Path] = typer.Option(None, help="Also write runs.csv and runs.md into this folder."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List training runs as a table (rebuilt from the run folders)."""
    with _errors():
        from bnnctl.results import collect_runs, write_table

        frame = collect_runs(runs_dir)
        if write is not None:
            for path in write_table(frame, write, "runs"):
                _say(f"wrote {path}")
        if json_output:
            _emit_json(json.loads(frame.to_json(orient="records")))
        elif frame.empty:
            _say(f"no runs under {runs_dir / 'train'}")
        else:
            shown = frame.drop(columns=[c for c in ("path", "name") if c in frame.columns])
            _print_frame(shown, f"runs in {runs_dir / 'train'}", out)


@bench_app.command("train")
def bench_train(
    batch_size: int = typer.Option(100, help="Mini-batch size (the BNN paper's MNIST batch is 100)."),
    width: int = typer.Option(4096, help="Hidden width of both MLPs (3 hidden layers)."),
    steps: int = typer.Option(30, help="Timed training steps per model."),
    warmup: int = typer.Option(5, help="Untimed steps first (compilation happens here)."),
    compile_model: bool = typer.Option(True, "--compile/--no-compile", help="torch.compile both models."),
    device: str = typer.Option("auto", help="cpu, cuda or auto."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Samples/s of a training step: BNN MLP vs the float MLP of the same shape, side by side."""
    with _errors():
        from bnnctl.bench import bench_train_step

        result = bench_train_step(batch_size=batch_size, width=width, steps=steps, warmup=warmup,
                                  compile_model=compile_model, device=device,
                                  progress=_say)
        if json_output:
            _emit_json(result)
            return
        table = Table(title=f"training step, batch {batch_size}, 784-{width}x3-10, {result['device']}, "
                            f"{result['threads']} threads, compile={result['compiled']}")
        for column in ("model", "samples/s", "step ms", "epoch s (60k)"):
            table.add_column(column, justify="right")
        for name in ("bnn_mlp", "mlp_float"):
            r = result[name]
            table.add_row(name, f"{r['samples_per_s']:.0f}", f"{r['step_ms']:.1f}", f"{60000 / r['samples_per_s']:.1f}")
        out.print(table)
        out.print(f"BNN epoch / float epoch = {result['bnn_over_float']:.3f}  (target <= 1.15)")


# --- ablation grids ---------------------------------------------------------------

def _grid_observer():
    """A rich bar for the grid (done / running / failed, ETA) on a terminal; a line per cell otherwise."""
    from bnnctl.ablate import GridObserver

    class LineGridObserver(GridObserver):
        def on_grid_start(self, plan, pending):
            self.total, self.finished, self.failed, self.running = len(pending), 0, 0, 0
            skipped = len(plan.tasks) - len(pending)
            _say(f"grid {plan.grid.name}: {len(plan.cells)} cells x {len(plan.grid.seeds)} seeds = {len(plan.tasks)} runs; "
                 f"{skipped} already done, {len(pending)} to train -> {plan.grid_dir}")

        def on_cell_start(self, task):
            self.running += 1
            if not err.is_terminal:
                _say(f"start {task.key} -> {task.run_dir}")

        def on_cell_end(self, task, outcome):
            self.running -= 1
            self.finished += 1
            if outcome["status"] == "failed":
                self.failed += 1
                _say(f"[{self.finished}/{self.total}] FAILED {task.key}: {outcome['error']}")
            elif outcome["status"] == "done":
                s = outcome["summary"]
                _say(f"[{self.finished}/{self.total}] done {task.key}: peak val {s['best_val_acc']:.4f} "
                     f"(epoch {s['best_epoch']}), final val {s['final_val_acc']:.4f}, {outcome['wall_s']:.0f} s")

    class RichGridObserver(LineGridObserver):
        def on_grid_start(self, plan, pending):
            super().on_grid_start(plan, pending)
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=err, transient=False,
            )
            self.progress.start()
            self.bar = self.progress.add_task(f"grid {plan.grid.name}", total=len(pending), info=self._info())

        def _info(self):
            return f"running {self.running}  failed {self.failed}"

        def on_cell_start(self, task):
            super().on_cell_start(task)
            self.progress.update(self.bar, info=self._info())

        def on_cell_end(self, task, outcome):
            super().on_cell_end(task, outcome)
            self.progress.update(self.bar, advance=1, info=self._info())

    return RichGridObserver() if err.is_terminal else LineGridObserver()


def _print_grid_table(results: dict[str, Any], title: str) -> None:
    _print_frame(results["display"], title, out)
    grid = results["manifest"]["grid"]
    source = (grid.get("reference") or {}).get("source")
    out.print("mean ± half-width of the 95% t-interval over seeds" + (f"; report: {source}" if source else ""),
              markup=False, highlight=False)


def _grid_json(results: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(results["table"].to_json(orient="records"))


@ablate_app.command(
    "grid",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=(
        f"Grids: {_options('ablation')} (conf/ablation/), or a .yaml file of your own. "
        f"Launchers: {_options('launcher')}. Overrides: ablation.KEY=V changes the grid "
        "(e.g. ablation.seeds=[0,1,2,3,4]); launcher=local|ray|submitit and launcher.KEY=V pick where cells "
        "train (e.g. launcher.workers=2); anything else applies to every cell (data=fashion_mnist train.epochs=5). "
        "Exit codes: 0 all cells done, 2 bad input, 3 some cells failed (the others finished), 130 interrupted."
    ),
)
def ablate_grid(
    args: Optional[List[str]] = typer.Argument(None, help="[NAME] [OVERRIDES...]: the grid (default clip_dropout), then overrides.",
                                               show_default=False),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Train every cell x seed of a grid (skipping those already DONE), then write its table and figure."""
    with _errors("finished cells are kept; run the same command again to train only the missing ones"):
        from bnnctl.ablate import plan_grid, run_grid, split_grid_args
        from bnnctl.config import load_grid, load_launcher
        from bnnctl.grid_results import write_grid_results

        name, grid_overrides, launcher_overrides, cell_overrides = split_grid_args(list(args or []))
        grid = load_grid(name, grid_overrides)
        launcher = load_launcher(launcher_overrides)
        plan = plan_grid(grid, cell_overrides)
        observer = _grid_observer()
        try:
            result = run_grid(plan, launcher, observer)
        finally:
            if hasattr(observer, "progress"):
                observer.progress.stop()
        results = write_grid_results(plan.grid_dir)
        for path in results["files"]:
            _say(f"wrote {path}")
        failed = [{"cell": t.cell.label, "seed": t.seed, "run_dir": t.run_dir, "error": e} for t, e in result.failed]
        if json_output:
            _emit_json({"grid": grid.name, "grid_dir": str(plan.grid_dir), "runs": len(plan.tasks),
                        "skipped": len(result.skipped), "trained": len(result.done), "failed": failed,
                        "table": _grid_json(results), "files": [str(p) for p in results["files"]]})
        else:
            _print_grid_table(results, f"grid {grid.name} ({plan.grid_dir})")
        for f in failed:
            _say(f"failed: {f['cell']} seed {f['seed']}: {f['error']} (traceback in {f['run_dir']}/error.txt)")
        if failed:
            raise typer.Exit(EXIT_CELLS_FAILED)


@ablate_app.command("table")
def ablate_table(
    grid_dir: Path = typer.Argument(..., help="A grid folder, e.g. runs/ablate/clip_dropout.", show_default=False),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Rebuild a grid's table (CSV, Markdown, LaTeX) and curves figure from its run folders."""
    with _errors():
        from bnnctl.grid_results import write_grid_results

        results = write_grid_results(grid_dir)
        for path in results["files"]:
            _say(f"wrote {path}")
        if json_output:
            _emit_json({"grid_dir": str(grid_dir), "table": _grid_json(results), "files": [str(p) for p in results["files"]]})
        else:
            _print_grid_table(results, f"grid {results['manifest']['grid']['name']} ({grid_dir})")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
