"""``bnnctl geometry angles|dot-products|filters|first-layer|weights``: each calls ``bnnctl.api.run_study``."""

from __future__ import annotations

from contextlib import closing
from typing import List, Optional

import typer

from bnnctl.cli.app import geometry_app
from bnnctl.cli.common import JSON_HELP, emit_json, errors, out, print_frame, records, say

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}
ANGLES_EPILOG = (
    "Without RUN_DIR: x ~ N(0, I_d) vs its binarized version and vs an independent vector, per d "
    "(geometry.dims=[...], geometry.samples=N, geometry.seed=S). binarize=ternary sweeps geometry.threshold_sigma "
    "at geometry.ternary_dim; binarize=hadamard sweeps geometry.beta at geometry.hadamard_dim; "
    "geometry.rotation=true compares the standard and a random rotated basis on decaying spectra "
    "(geometry.rotation_k, geometry.rotation_dims). With RUN_DIR: every weight vector of each binary layer of "
    "a trained run vs its binarized version. runs_dir=PATH: where the study folder goes (default runs). "
    "Writes runs/geometry/<study>/<time>/ (results.csv, table.md, config.yaml, summary.json, PNG figures)."
)


def _study(study: str, args: list[str] | None, json_output: bool, title: str) -> None:
    """Split RUN_DIRs from overrides, run the study with a progress bar, and show its table and notes."""
    from bnnctl.api import run_study
    from bnnctl.cli.progress import StudyProgress

    args = list(args or [])
    run_dirs = [a for a in args if "=" not in a]
    overrides = [a for a in args if "=" in a]
    with errors("nothing was written for the interrupted study"), closing(StudyProgress(f"geometry {study}")) as bar:
        result = run_study(study, overrides, run_dirs, progress=bar)
    for path in result.files:
        say(f"wrote {path}")
    if json_output:
        emit_json({"folder": str(result.folder), "notes": result.notes, "table": records(result.table)})
        return
    if study == "angles":
        title = f"{title} ({result.notes.get('variant', 'trained weights')})"
    print_frame(result.table, f"{title} -> {result.folder}")
    for key, value in result.notes.items():
        out.print(
            f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}", markup=False, highlight=False
        )


@geometry_app.command("angles", context_settings=_EXTRA, epilog=ANGLES_EPILOG)
def geometry_angles(
    args: Optional[List[str]] = typer.Argument(None, help="[RUN_DIR] [OVERRIDES...]", show_default=False),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Angle preservation of binarization: random vectors (37.07 deg vs 90), or a trained run's weights."""
    _study("angles", args, json_output, "geometry angles")


@geometry_app.command("dot-products", context_settings=_EXTRA)
def geometry_dot_products(
    args: Optional[List[str]] = typer.Argument(
        None, help="RUN_DIR [geometry.images=500 geometry.seed=0 runs_dir=...]", show_default=False
    ),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """a.W_b vs a.W_c for every unit of each binary layer of a trained run: Pearson r, slope, 2-D histograms."""
    _study("dot-products", args, json_output, "dot products")


@geometry_app.command("filters", context_settings=_EXTRA)
def geometry_filters(
    args: Optional[List[str]] = typer.Argument(None, help="RUN_DIR [runs_dir=...]", show_default=False),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The share of unique k x k binary filters per conv layer of a trained run (and up to sign)."""
    _study("filters", args, json_output, "unique filters")


@geometry_app.command("first-layer", context_settings=_EXTRA)
def geometry_first_layer(
    args: Optional[List[str]] = typer.Argument(
        None,
        help="[geometry.dataset=fashion_mnist geometry.patch_size=3 geometry.patches=50000 runs_dir=...]",
        show_default=False,
    ),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """PCA of a dataset's k x k x C patches and their angle to sign(patch) in the pixel vs the PCA basis."""
    _study("first-layer", args, json_output, "first layer")


@geometry_app.command("weights", context_settings=_EXTRA)
def geometry_weights(
    args: Optional[List[str]] = typer.Argument(None, help="RUN_DIR [RUN_DIR...] [runs_dir=...]", show_default=False),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Latent weights vs their binarized versions per layer (e.g. a Hadamard run beside a sign run): W1, rel. L2."""
    _study("weights", args, json_output, "weights")
