"""``bnnctl bench train``."""

from __future__ import annotations

import typer
from rich.table import Table

from bnnctl.cli.app import bench_app
from bnnctl.cli.common import JSON_HELP, emit_json, errors, out, say


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
    """Samples/s of the training step (Trainer.step): BNN MLP vs the float MLP of the same shape, side by side."""
    with errors():
        from bnnctl.bench.train_step import bench_train_step

        result = bench_train_step(
            batch_size=batch_size,
            width=width,
            steps=steps,
            warmup=warmup,
            compile_model=compile_model,
            device=device,
            progress=say,
        )
        if json_output:
            emit_json(result)
            return
        table = Table(
            title=f"training step, batch {batch_size}, 784-{width}x3-10, {result['device']}, "
            f"{result['threads']} threads, compile={result['compiled']}"
        )
        for column in ("model", "samples/s", "step ms", "epoch s (60k)"):
            table.add_column(column, justify="right")
        for name in ("bnn_mlp", "mlp_float"):
            r = result[name]
            table.add_row(name, f"{r['samples_per_s']:.0f}", f"{r['step_ms']:.1f}", f"{60000 / r['samples_per_s']:.1f}")
        out.print(table)
        out.print(f"BNN epoch / float epoch = {result['bnn_over_float']:.3f}  (target <= 1.15)")
