"""``bnnctl train``, ``bnnctl eval`` and ``bnnctl export``: a run from training to its packed file."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from bnnctl.cli.app import app
from bnnctl.cli.common import JSON_HELP, OVERRIDES_HELP, emit_json, errors, out, print_frame, print_key_values, say
from bnnctl.errors import BnnctlError, Terminated


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
    where: dict[str, Path] = {}

    def kept() -> str:
        if "run" not in where:
            return "no epoch had finished, so no run folder was kept"
        return f"finished epochs are kept in {where['run']}; continue with: bnnctl train --resume {where['run']}"

    with errors(kept):
        from bnnctl.cli.progress import train_observer
        from bnnctl.runs import discard_if_untrained
        from bnnctl.training import train_into

        overrides = list(overrides or [])
        if _is_other_torchrun_rank():
            return _train_as_other_rank(overrides)
        if resume is not None:
            run, cfg = _run_to_resume(resume, overrides)
        else:
            run, cfg = _new_run(overrides)
        where["run"] = run.path
        observer = train_observer()
        try:
            summary = train_into(run, cfg, overrides, observer, resume=resume is not None)
        except (BnnctlError, KeyboardInterrupt, Terminated):
            if resume is None and discard_if_untrained(run):  # the data was missing, or Ctrl-C came early
                where.pop("run")
            raise
        finally:
            observer.close()
        summary["run_dir"] = str(run.path)
        if json_output:
            emit_json(summary)
        else:
            print_key_values(f"run {run.name}", summary)


def _is_other_torchrun_rank() -> bool:
    from bnnctl.distributed.launch import torchrun_rank

    launched = torchrun_rank()
    return launched is not None and not launched.is_main


def _train_as_other_rank(overrides: list[str]) -> None:
    """Under torchrun, ranks other than 0 train their share and write nothing: rank 0 has the folder and output."""
    from bnnctl.config import compose_train, split_runs_dir
    from bnnctl.training import fit
    from bnnctl.training.data_parallel import with_launched_world

    _, hydra_overrides = split_runs_dir(overrides)
    fit(with_launched_world(compose_train(hydra_overrides)), overrides=overrides)


def _new_run(overrides: list[str]):
    from bnnctl.config import compose_train, split_runs_dir
    from bnnctl.runs import create_run
    from bnnctl.training.data_parallel import with_launched_world

    runs_dir, hydra_overrides = split_runs_dir(overrides)
    cfg = with_launched_world(compose_train(hydra_overrides))  # under torchrun, its world size
    return create_run(runs_dir, "train", cfg.run_name, cfg), cfg


def _run_to_resume(path: Path, overrides: list[str]):
    from bnnctl.runs import open_run
    from bnnctl.training.resume import config_to_resume

    run = open_run(path)
    return run, config_to_resume(run, overrides)


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
    if packed:
        return _eval_packed(run_dir, data_root, json_output)
    with errors():
        from bnnctl.training import evaluate_run

        metrics = evaluate_run(run_dir, data_root=data_root, device=device)
        if json_output:
            emit_json(metrics)
        else:
            layers = metrics.pop("layers")
            print_key_values(f"eval {Path(run_dir).name}", metrics)
            print_frame(size_frame(layers), "size per layer (deployed vs float32)")


def _eval_packed(run_dir: Path, data_root: Optional[str], json_output: bool) -> None:
    with errors():
        from bnnctl.packed.runs import evaluate_packed

        result = evaluate_packed(run_dir, data_root=data_root)
        if json_output:
            emit_json(result)
        else:
            print_key_values(f"eval --packed {Path(run_dir).name}", result)
    if not result["identical_predictions"]:
        say(
            f"error: the packed model's predictions differ from the float model's on {result['predictions_differ']} of {result['n']} images"
        )
        raise typer.Exit(1)


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
