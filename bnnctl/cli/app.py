"""The Typer application and its command groups; each command module adds its commands to them."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="bnnctl",
    help="Experiment runner for binary neural networks: train, evaluate and compare BNNs on real data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
runs_app = typer.Typer(help="Inspect and upgrade run folders.", no_args_is_help=True)
bench_app = typer.Typer(help="Speed benchmarks that print their figures.", no_args_is_help=True)
ablate_app = typer.Typer(
    help="Ablation grids: cells x seeds, resumable, tables with confidence intervals.", no_args_is_help=True
)
geometry_app = typer.Typer(
    help="The geometry of binarization (Anderson & Berg 2018): angles and more.", no_args_is_help=True
)
app.add_typer(runs_app, name="runs")
app.add_typer(geometry_app, name="geometry")
app.add_typer(bench_app, name="bench")
app.add_typer(ablate_app, name="ablate")
