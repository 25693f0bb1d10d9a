"""``bnnctl train``, ``bnnctl eval`` and ``bnnctl export``: a run from training to its packed file."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import List, Optional

import typer

from bnnctl.cli.app import app
from bnnctl.cli.common import (
    JSON_HELP,
    OVERRIDES_HELP,
    emit_json,
    errors,
    out,
    print_frame,
    print_key_values,
    say,
    size_frame,
)
from bnnctl.errors import BnnctlError


def _groups_help() -> str:
    try:
        from bnnctl.config import describe_groups

        groups = describe_groups().replace("\n", "\n\n")
    except BnnctlError as exc:  # a broken install: say so in --help rather than crash
        groups = f"(config groups unavailable: {exc})"
    return (
        "Config groups (pick one option each, e.g. model=bnn_mlp):\n\n"
        + groups
        + "\n\nAny key can be overridden (train.epochs=3, train.weight_clip=true, model.dropout=0.5, "
        "optimizer.lr=3e-3, data.root=/path, binarize.activations.name=stochastic_sign); see conf/ for every key. "
        "runs_dir=PATH says where the run folder goes (default: runs)."
    )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, epilog=_groups_help())
def train(
    overrides: Optional[List[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    resume: Optional[Path] = typer.Option(
        None,
        "--resume",
        help="Continue the cut-off run in this folder from its last finished epoch (its resume.pt), with its own "
        "config; the result equals an uninterrupted run's. Only where-and-how keys may be overridden "
        "(data.root, data.download, train.threads).",
        show_default=False,
    ),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Train a model and write a run folder runs/train/<time>_<name>_<id>/ (or continue one with --resume).

    Ctrl-C or SIGTERM keeps every finished epoch; `--resume RUN_DIR` continues from the last one.

    dist.world_size=N trains data-parallel on N ranks spawned here (DDP: gloo on CPUs, NCCL on GPUs), with
    train.batch_size the global batch; dist.compress=bf16|sign|hadamard compresses the gradients they exchange
    (1-bit messages with error feedback). Under torchrun (`torchrun --nproc-per-node N -m bnnctl train ...`)
    the world is torchrun's and rank 0 writes the run folder.
    """
    from bnnctl.api import train as run_training
    from bnnctl.cli.progress import train_observer

    where: list[Path] = []
    with errors(lambda: _what_is_kept(where)), closing(train_observer()) as observer:
        result = run_training(overrides or [], resume=resume, observer=observer, on_run=lambda r: where.append(r.path))
    if result.run is None:
        return  # a torchrun rank other than 0: rank 0 prints
    if json_output:
        emit_json(result.to_json())
    else:
        print_key_values(f"run {result.run.name}", result.to_json())


def _what_is_kept(where: list[Path]) -> str:
    if not where or not where[0].exists():
        return "no epoch had finished, so no run folder was kept"
    return f"finished epochs are kept in {where[0]}; continue with: bnnctl train --resume {where[0]}"


@app.command("eval")
def eval_(
    run_dir: Path = typer.Argument(..., help="A run folder written by `bnnctl train`.", show_default=False),
    data_root: Optional[str] = typer.Option(None, help="Look for the dataset here instead of the run's data.root."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or auto (default: the run's train.device)."),
    packed: bool = typer.Option(
        False,
        "--packed",
        help="Also run the test set through the packed model (RUN_DIR/packed.npz from `bnnctl export`, else packed "
        "in memory) and compare its predictions with the float model's; exit 1 if any differ. Writes eval_packed.json.",
    ),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Evaluate a run's checkpoint on the test set; writes eval.json into the run folder."""
    from bnnctl import api

    with errors():
        result = (
            api.evaluate_packed(run_dir, data_root=data_root)
            if packed
            else api.evaluate(run_dir, data_root=data_root, device=device)
        )
    if json_output:
        emit_json(result)
    elif packed:
        print_key_values(f"eval --packed {Path(run_dir).name}", result)
    else:
        print_key_values(f"eval {Path(run_dir).name}", {k: v for k, v in result.items() if k != "layers"})
        print_frame(size_frame(result["layers"]), "size per layer (deployed vs float32)")
    if packed and not result["identical_predictions"]:
        say(
            f"error: the packed model's predictions differ from the float model's on {result['predictions_differ']} of {result['n']} images"
        )
        raise typer.Exit(1)


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
    from bnnctl.api import export as export_run

    with errors():
        result = export_run(run_dir, output)
    if json_output:
        emit_json(result)
        return
    import pandas as pd

    print_frame(pd.DataFrame(result["ops"]), f"packed ops of {result['run']}")
    print_key_values("packed model file", {k: v for k, v in result.items() if k != "ops"})
    out.print(f"{result['file']}: {result['x_smaller_than_float32']:.1f}x smaller than the float32 weights")
