"""What every command shares: the consoles, one-line errors and exit codes, tables and JSON on stdout.

Exit codes: 0 done, 1 a bug (one line; BNNCTL_DEBUG=1 for the traceback),
2 bad input or a place that cannot be read or written (one line naming the key
or file), 3 a grid ran but some cells
failed, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM: ``kill``, a SLURM
time limit or preemption; handled like Ctrl-C). Output that is not a terminal gets no colour and no
live progress.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import sys
from typing import Any, Callable, Iterator

import typer
from rich.console import Console
from rich.table import Table

from bnnctl.errors import BnnctlError, Terminated

out = Console()  # results: tables, JSON
if not out.is_terminal:  # piped or logged: no 80-column wrapping of wide tables
    out = Console(width=int(os.environ.get("COLUMNS", 200)))
err = Console(stderr=True)  # progress, messages, errors (rich honours NO_COLOR: no colour, in both)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Options of the root command that every command obeys (``bnnctl -q ...``).

    They live on the invocation's Click context, not in the process, so one
    invocation's ``-q`` never carries over to the next (``CliRunner``, notebooks).
    """

    quiet: bool = False  # no progress: no live bars on a terminal, no per-epoch lines elsewhere


def settings() -> Settings:
    """The running invocation's settings (the defaults outside a command)."""
    import importlib

    click_package = typer.Context.__mro__[1].__module__.rsplit(".", 1)[0]  # click, or Typer's own copy of it
    ctx = importlib.import_module(f"{click_package}.globals").get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj if isinstance(obj, Settings) else Settings()


def show_progress() -> bool:
    """Whether to report progress at all (results and errors are printed regardless)."""
    return not settings().quiet


def live_progress() -> bool:
    """Whether to draw live bars: on a terminal, unless -q."""
    return err.is_terminal and show_progress()


OVERRIDES_HELP = "Hydra overrides, e.g. model=bnn_mlp data=fashion_mnist train.epochs=3 binarize=stochastic"
JSON_HELP = "Print a machine-readable JSON summary on stdout instead of tables."
STRICT_HELP = "Exit 2 when any run folder is damaged (it is still listed, with its reason)."
EXIT_CELLS_FAILED = 3  # `ablate grid`: the grid ran, but some cells failed
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT
EXIT_TERMINATED = 143  # SIGTERM: 128 + SIGTERM, what a shell reports for a killed process


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def say(message: str) -> None:
    """A plain line on stderr: no rich markup or highlighting, never wrapped, and no escape codes that a
    library put into its message (torch does) when stderr is not a terminal."""
    if not err.is_terminal:
        message = ANSI_ESCAPE.sub("", message)
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def _raise_terminated(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: the clean-up must not be cut off again
    raise Terminated()


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises Terminated in the main thread while the command runs, so ``finally`` blocks run."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (an embedding program): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def errors(
    interrupted: str | Callable[[], str] = "finished epochs are kept in the run folder, which has no DONE marker",
) -> Iterator[None]:
    """One line and exit 2 for bad input, 130 for Ctrl-C, 143 for SIGTERM, 1 (one line) for anything unexpected.

    ``interrupted`` says what survives an interruption (a callable: decided when it happens).
    """
    try:
        with _sigterm_raises():
            yield
    except BnnctlError as exc:
        say(f"error: {exc}")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        say(f"interrupted: {interrupted() if callable(interrupted) else interrupted}")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Terminated:
        say(f"terminated (SIGTERM): {interrupted() if callable(interrupted) else interrupted}")
        raise typer.Exit(EXIT_TERMINATED) from None
    except typer.Exit:
        raise
    except OSError as exc:
        if exc.filename is None or os.environ.get("BNNCTL_DEBUG"):
            _internal_error(exc)
        # A place that cannot be written or read (a read-only or full disk, no such folder): the environment.
        say(f"error: {exc.filename}: {exc.strerror or exc}")
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001 - a bug: one line, traceback on request
        _internal_error(exc)


def _internal_error(exc: Exception) -> None:
    if os.environ.get("BNNCTL_DEBUG"):
        raise exc
    say(f"internal error: {type(exc).__name__}: {exc} (set BNNCTL_DEBUG=1 for the traceback)")
    raise typer.Exit(1) from None


def options(group: str) -> str:
    """The options of a config group, for help texts (a broken install says so instead of crashing)."""
    try:
        from bnnctl.config import group_options

        return ", ".join(group_options(group))
    except BnnctlError as exc:
        return f"(unavailable: {exc})"


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


def print_key_values(title: str, items: dict[str, Any]) -> None:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in items.items():
        table.add_row(key, fmt(value))
    out.print(table)


def print_frame(frame, title: str) -> None:
    table = Table(title=title, header_style="bold")
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[fmt(v) if v == v else "" for v in row])  # v != v: NaN
    out.print(table)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def fail_if_damaged(frame, strict: bool) -> None:
    """``--strict``: after the table, one line and exit 2 when any row is a damaged folder."""
    if not strict or frame.empty or "status" not in frame:
        return
    damaged = frame[frame["status"] == "damaged"]
    if len(damaged):
        first = damaged.iloc[0]
        reason = first.get("error") if "error" in damaged else ""
        say(f"error: {len(damaged)} damaged run folder(s), e.g. {first['path']}: {reason}")
        raise typer.Exit(2)


def size_frame(layers: list[dict]):
    """The per-layer size rows as a table: kB deployed and in float32, bits per weight, the ratio."""
    import pandas as pd

    frame = pd.DataFrame(layers)
    return pd.DataFrame(
        {
            "layer": frame["layer"] + " " + frame["kind"],
            "weights": frame["weights"],
            "elements": frame["elements"],
            "bits/weight": frame["bits_per_weight"].map(lambda v: f"{v:.3g}" if v == v else ""),
            "kB float32": (frame["bytes_float32"] / 1000).map(lambda v: f"{v:.1f}"),
            "kB deployed": (frame["bytes_deployed"] / 1000).map(lambda v: f"{v:.1f}"),
            "x smaller": frame["compression"].map(lambda v: f"{v:.2f}"),
        }
    )


def records(frame) -> list[dict[str, Any]]:
    """A DataFrame as JSON records (NaN as null), for ``--json``."""
    return json.loads(frame.to_json(orient="records"))
