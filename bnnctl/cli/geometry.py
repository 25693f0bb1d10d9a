"""``bnnctl geometry angles``."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

from bnnctl.cli.app import geometry_app
from bnnctl.cli.common import JSON_HELP, emit_json, errors, out, print_frame, say


@geometry_app.command(
    "angles",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=(
        "Without RUN_DIR: x ~ N(0, I_d) vs its binarized version and vs an independent vector, per d "
        "(geometry.dims=[...], geometry.samples=N, geometry.seed=S). binarize=ternary sweeps geometry.threshold_sigma "
        "at geometry.ternary_dim; binarize=hadamard sweeps geometry.beta at geometry.hadamard_dim; "
        "geometry.rotation=true compares the standard and a random rotated basis on decaying spectra "
        "(geometry.rotation_k, geometry.rotation_dims). With RUN_DIR: every weight vector of each binary layer of "
        "a trained run vs its binarized version. runs_dir=PATH: where the study folder goes (default runs). "
        "Writes runs/geometry/<study>/<time>/ (results.csv, table.md, config.yaml, summary.json, PNG figures)."
    ),
)
def geometry_angles(
    args: Optional[List[str]] = typer.Argument(None, help="[RUN_DIR] [OVERRIDES...]", show_default=False),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Angle preservation of binarization: random vectors (37.07 deg vs 90), or a trained run's weights."""
    with errors("nothing was written for the interrupted study"):
        from bnnctl.cli.progress import StudyProgress
        from bnnctl.config.geometry import load_geometry
        from bnnctl.geometry import angles_study

        run_dir, runs_dir, overrides = _run_and_overrides(args, need_run=False)
        if run_dir is not None and any(o.startswith("binarize=") for o in overrides):
            from bnnctl.errors import ConfigError

            raise ConfigError(
                "binarize= chooses the random-vector study; a trained run's layers use their own binarizers"
            )
        progress = StudyProgress("geometry angles")
        try:
            result = angles_study(load_geometry("angles", overrides), runs_dir, run_dir, progress)
        finally:
            progress.close()
        _show(result, f"geometry angles ({result.notes.get('variant', 'trained weights')})", json_output)


def _show(result, title: str, json_output: bool) -> None:
    for path in result.files:
        say(f"wrote {path}")
    if json_output:
        emit_json(
            {
                "folder": str(result.folder),
                "notes": result.notes,
                "table": json.loads(result.table.to_json(orient="records")),
            }
        )
        return
    print_frame(result.table, f"{title} -> {result.folder}")
    for key, value in result.notes.items():
        out.print(
            f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}", markup=False, highlight=False
        )


def _run_and_overrides(args: list[str] | None, need_run: bool):
    from bnnctl.config import split_runs_dir
    from bnnctl.errors import ConfigError

    args = list(args or [])
    run_dir = args.pop(0) if args and "=" not in args[0] else None
    if need_run and run_dir is None:
        raise ConfigError("RUN_DIR missing: give a trained run folder, e.g. runs/train/<time>_<name>_<id>")
    runs_dir, overrides = split_runs_dir(args)
    return run_dir, runs_dir, overrides


_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


@geometry_app.command("dot-products", context_settings=_EXTRA)
def geometry_dot_products(
    args: Optional[List[str]] = typer.Argument(
        None, help="RUN_DIR [geometry.images=500 geometry.seed=0 runs_dir=...]", show_default=False
    ),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """a.W_b vs a.W_c for every unit of each binary layer of a trained run: Pearson r, slope, 2-D histograms."""
    with errors("nothing was written for the interrupted study"):
        from bnnctl.config.geometry import load_geometry
        from bnnctl.geometry import dot_products_study

        run_dir, runs_dir, overrides = _run_and_overrides(args, need_run=True)
        _show(
            dot_products_study(load_geometry("dot-products", overrides), runs_dir, run_dir), "dot products", json_output
        )


@geometry_app.command("filters", context_settings=_EXTRA)
def geometry_filters(
    args: Optional[List[str]] = typer.Argument(None, help="RUN_DIR [runs_dir=...]", show_default=False),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The share of unique k x k binary filters per conv layer of a trained run (and up to sign)."""
    with errors("nothing was written for the interrupted study"):
        from bnnctl.config.geometry import load_geometry
        from bnnctl.geometry import filters_study

        run_dir, runs_dir, overrides = _run_and_overrides(args, need_run=True)
        _show(filters_study(load_geometry("filters", overrides), runs_dir, run_dir), "unique filters", json_output)


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
    with errors("nothing was written for the interrupted study"):
        from bnnctl.config.geometry import load_geometry
        from bnnctl.geometry import first_layer_study

        run_dir, runs_dir, overrides = _run_and_overrides(args, need_run=False)
        if run_dir is not None:
            from bnnctl.errors import ConfigError

            raise ConfigError(f"unexpected argument {run_dir!r}: first-layer studies a dataset (geometry.dataset=...)")
        _show(first_layer_study(load_geometry("first-layer", overrides), runs_dir), "first layer", json_output)


@geometry_app.command("weights", context_settings=_EXTRA)
def geometry_weights(
    args: Optional[List[str]] = typer.Argument(None, help="RUN_DIR [RUN_DIR...] [runs_dir=...]", show_default=False),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Latent weights vs their binarized versions per layer (e.g. a Hadamard run beside a sign run): W1, rel. L2."""
    with errors("nothing was written for the interrupted study"):
        from bnnctl.config import split_runs_dir
        from bnnctl.config.geometry import load_geometry
        from bnnctl.errors import ConfigError
        from bnnctl.geometry import weights_study

        args = list(args or [])
        run_dirs = [a for a in args if "=" not in a]
        if not run_dirs:
            raise ConfigError("RUN_DIR missing: give one or more trained run folders")
        runs_dir, overrides = split_runs_dir([a for a in args if "=" in a])
        _show(weights_study(load_geometry("weights", overrides), runs_dir, run_dirs), "weights", json_output)
