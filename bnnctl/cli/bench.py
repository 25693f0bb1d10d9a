"""``bnnctl bench train|gemm|infer``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from bnnctl.cli.app import bench_app
from bnnctl.cli.common import JSON_HELP, emit_json, errors, out, print_frame, say
from bnnctl.errors import ConfigError

ROUNDS_HELP = "Interleaved rounds; figures are medians over them."


def _ints(text: str, option: str) -> list[int]:
    """'100,256' -> [100, 256]; one line naming the option otherwise."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option}: expected positive integers separated by commas, got {text!r}") from None


@bench_app.command("train")
def bench_train(
    batch_sizes: str = typer.Option(
        "100,256", "--batch-sizes", help="Mini-batch sizes, comma-separated (the BNN paper's MNIST batch is 100)."
    ),
    width: int = typer.Option(4096, help="Hidden width of every MLP (3 hidden layers)."),
    rounds: int = typer.Option(7, help=ROUNDS_HELP),
    warmup: int = typer.Option(3, help="Untimed steps first (compilation happens here)."),
    compile_model: bool = typer.Option(True, "--compile/--no-compile", help="torch.compile every model."),
    device: str = typer.Option("auto", help="cpu, cuda or auto."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Training step (Trainer.step): float MLP (fp32, bf16 autocast) vs BNN MLP (fp32, exact int8/bf16), interleaved.

    Each ratio is a step time over the float32 float MLP's at the same batch size.
    """
    from bnnctl import api

    with errors():
        result = api.bench_train(
            _ints(batch_sizes, "--batch-sizes"),
            width=width,
            rounds=rounds,
            warmup=warmup,
            compile_model=compile_model,
            device=device,
            progress=say,
        )
    if json_output:
        return emit_json(result)
    out.print(_train_table(result))
    for name, why in result["skipped"].items():
        say(f"skipped {name}: {why}")


def _train_table(result: dict) -> Table:
    table = Table(
        title=f"training step, 784-{result['width']}x3-10, {result['device']}, {result['threads']} threads, "
        f"compile={result['compiled']}, medians of {result['rounds']} interleaved rounds"
    )
    for column in ("variant", "batch", "products", "step ms", "samples/s", "epoch s (60k)", "x float32 MLP"):
        table.add_column(column, justify="right")
    for r in result["rows"]:
        table.add_row(
            r["variant"],
            str(r["batch_size"]),
            r["binary_matmul"],
            f"{r['step_ms']:.1f}",
            f"{r['samples_per_s']:.0f}",
            f"{60000 / r['samples_per_s']:.1f}",
            f"{r['vs_float32_mlp']:.3f}",
        )
    return table


@bench_app.command("gemm")
def bench_gemm(
    m: str = typer.Option("1,64,256,1024", "--m", help="Rows of A (the batch), comma-separated."),
    kn: str = typer.Option("2048,4096", "--kn", help="K = N values, comma-separated."),
    rounds: int = typer.Option(7, help=ROUNDS_HELP),
    sizes: bool = typer.Option(
        False, "--sizes", help="Also time square products M = K = N (--size-list) and plot them."
    ),
    size_list: str = typer.Option("256,512,1024,2048,4096", help="Square sizes for --sizes."),
    naive_max: int = typer.Option(1024, help="Largest size the naive triple loop runs at (it takes minutes beyond)."),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Folder for the tables and figure (default: runs/bench/gemm/<time>)."
    ),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The packed XNOR-popcount product vs float32 (PyTorch default, oneDNN), bf16 and int8: GOP/s and ratios.

    bf16 and int8 are left out, saying why, where the CPU emulates them (no AVX-512 BF16 / AMX, no VNNI).

    Every method computes A W^T on the same +-1 operands in one process, interleaved; the packed result is
    checked equal to the float product first. Ops are counted as 2MNK. `packed+pack` includes packing the
    float activations; `packed_rows` is the kernel without register blocking.
    """
    import pandas as pd

    from bnnctl import api

    with errors():
        square = _ints(size_list, "--size-list") if sizes else []
        result = api.bench_gemm(
            _ints(m, "--m"), _ints(kn, "--kn"), rounds=rounds, sizes=square, naive_max=naive_max, output=output,
            progress=say,
        )  # fmt: skip
    if json_output:
        return emit_json(result)
    shown = pd.DataFrame(result["products"])
    columns = ["M", "K", "method", "ms", "GOP/s", f"x_{result['reference']}", f"x_{result['default']}"]
    print_frame(shown[columns], f"A (M x K) times W^T (K x N = K), medians of {rounds} interleaved rounds")
    if "sizes" in result:
        print_frame(pd.DataFrame(result["sizes"]), "square products")
    for name, why in result["skipped"].items():
        say(f"skipped {name}: {why}")
    out.print(f"wrote {', '.join(result['files'])}")


@bench_app.command("infer")
def bench_infer(
    run_dir: Path = typer.Argument(..., help="A run folder written by `bnnctl train`.", show_default=False),
    batch: str = typer.Option("1,256", "--batch", help="Batch sizes, comma-separated."),
    rounds: int = typer.Option(7, help=ROUNDS_HELP),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write infer.csv and infer.md here."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Images/s of the run's packed model vs its float model (as evaluated, and with its +-1 weights cached).

    All three forms are checked to give the same outputs on the benchmark batch before they are timed.
    """
    import pandas as pd

    from bnnctl import api

    with errors():
        result = api.bench_infer(run_dir, _ints(batch, "--batch"), rounds=rounds, output=output, progress=say)
    if json_output:
        return emit_json(result)
    print_frame(pd.DataFrame(result["rows"]), f"inference, {result['run']}, {result['threads']} threads")
