"""The Typer application and its command groups; each command module adds its commands to them."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

# Click's exceptions, wherever this Typer takes Click from (recent Typer versions carry their own copy).
_clicks = importlib.import_module(typer.BadParameter.__module__)


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


GLOBAL_FLAGS = ("-q", "--quiet")  # the root command's flags, accepted anywhere before a lone "--"


def global_options_first(args: list[str]) -> list[str]:
    """``bnnctl train -q ...`` as ``bnnctl -q train ...``: people put global flags where they like (git, pip)."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    return flags + [a for i, a in enumerate(args) if i >= end or a not in GLOBAL_FLAGS]


class OneLineErrors(TyperGroup):
    """Usage errors (an unknown option or command, a missing argument) as one plain line and exit 2.

    Click's own display is four lines, and Typer's a box drawn with rich,
    whatever stderr is; bnnctl's errors are one line that names what is wrong.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        args = global_options_first(list(sys.argv[1:] if args is None else args))
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            returned = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except _clicks.NoArgsIsHelpError as exc:
            exc.show()  # the help text, as a bare `bnnctl` or `bnnctl runs` asks for
            sys.exit(exc.exit_code)
        except _clicks.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _say(f"error: {exc.format_message()}{hint}")
            sys.exit(2)
        except _clicks.ClickException as exc:
            _say(f"error: {exc.format_message()}")
            sys.exit(exc.exit_code)
        except typer.Abort:
            _say("interrupted")
            sys.exit(130)
        sys.exit(returned if isinstance(returned, int) else 0)


HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    cls=OneLineErrors,
    context_settings=HELP_OPTIONS,
    name="bnnctl",
    help="Experiment runner for binary neural networks: train, evaluate and compare BNNs on real data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
)


def _print_version(value: bool) -> None:
    if value:
        from bnnctl.provenance import version_line

        sys.stdout.write(version_line() + "\n")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_print_version,
        is_eager=True,
        help="Print the versions (bnnctl, torch, its CUDA, numba, Python) and exit.",
    ),
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        help="No progress: no live bars on a terminal, no per-epoch lines (results and errors still print).",
    ),
) -> None:
    """Experiment runner for binary neural networks: train, evaluate and compare BNNs on real data.

    NO_COLOR=1 turns colour off; output that is not a terminal never has colour or live progress.
    """
    from bnnctl.cli.common import Settings

    ctx.obj = Settings(quiet=quiet)


runs_app = typer.Typer(context_settings=HELP_OPTIONS, help="Inspect and upgrade run folders.", no_args_is_help=True)
bench_app = typer.Typer(
    context_settings=HELP_OPTIONS, help="Speed benchmarks that print their figures.", no_args_is_help=True
)
ablate_app = typer.Typer(
    context_settings=HELP_OPTIONS,
    help="Ablation grids: cells x seeds, resumable, tables with confidence intervals.",
    no_args_is_help=True,
)
geometry_app = typer.Typer(
    context_settings=HELP_OPTIONS,
    help="The geometry of binarization (Anderson & Berg 2018): angles and more.",
    no_args_is_help=True,
)
app.add_typer(runs_app, name="runs")
app.add_typer(geometry_app, name="geometry")
app.add_typer(bench_app, name="bench")
app.add_typer(ablate_app, name="ablate")
