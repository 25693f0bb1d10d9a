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
        from bnnctl.config import split_runs_dir
        from bnnctl.config.geometry import load_geometry
        from bnnctl.geometry import angles_study

        args = list(args or [])
        run_dir = args.pop(0) if args and "=" not in args[0] else None
        runs_dir, overrides = split_runs_dir(args)
        cfg = load_geometry("angles", overrides)
        result = angles_study(cfg, runs_dir, run_dir)
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
        print_frame(
            result.table, f"geometry angles ({result.notes.get('variant', 'trained weights')}) -> {result.folder}"
        )
        for key, value in result.notes.items():
            out.print(
                f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}", markup=False, highlight=False
            )
