"""``bnnctl export``: a run's model as a packed file (1 bit per binary weight, thresholds), with its size."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bnnctl.cli.app import app
from bnnctl.cli.common import JSON_HELP, emit_json, errors, out, print_frame, print_key_values


@app.command("export")
def export(
    run_dir: Path = typer.Argument(..., help="A run folder written by `bnnctl train`.", show_default=False),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Where to write it (default: RUN_DIR/packed.npz)."
    ),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Write the packed model: binary layers as bits, batch norm folded into integer thresholds, first/last layer as they are.

    `bnnctl eval RUN_DIR --packed` then runs the test set through it. A model that cannot be packed
    exactly (Hadamard or ternary binarizers, sign(0) = 0, dropout at evaluation) is refused, naming the layer.
    """
    with errors():
        import pandas as pd

        from bnnctl.packed.runs import export_run

        result = export_run(run_dir, output)
        if json_output:
            emit_json(result)
            return
        ops = result.pop("ops")
        print_frame(pd.DataFrame(ops), f"packed ops of {result['run']}")
        print_key_values("packed model file", result)
        out.print(f"{result['file']}: {result['x_smaller_than_float32']:.1f}x smaller than the float32 weights")
