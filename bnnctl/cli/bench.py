"""``bnnctl bench train|gemm|infer``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from bnnctl.cli.app import bench_app
from bnnctl.cli.common import JSON_HELP, emit_json, errors, out, print_frame, say
from bnnctl.errors import BnnctlError


@bench_app.command("train")
def bench_train(
    batch_sizes: str = typer.Option(
        "100,256", "--batch-sizes", help="Mini-batch sizes, comma-separated (the BNN paper's MNIST batch is 100)."
    ),
    width: int = typer.Option(4096, help="Hidden width of every MLP (3 hidden layers)."),
    rounds: int = typer.Option(7, help="Interleaved rounds; figures are medians over them."),
    warmup: int = typer.Option(3, help="Untimed steps first (compilation happens here)."),
    compile_model: bool = typer.Option(True, "--compile/--no-compile", help="torch.compile every model."),
    device: str = typer.Option("auto", help="cpu, cuda or auto."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Training step (Trainer.step): float MLP (fp32, bf16 autocast) vs BNN MLP (fp32, exact int8/bf16), interleaved.

    Each ratio is a step time over the float32 float MLP's at the same batch size.
    """
    with errors():
        from bnnctl.bench.train_step import bench_train_step

        sizes = _ints(batch_sizes, "--batch-sizes")
        _at_least(1, **{"--width": width, "--rounds": rounds})
        _at_least(0, **{"--warmup": warmup})
        if min(sizes) < 2:
            raise BnnctlError(f"--batch-sizes must be >= 2 (batch norm needs two examples), got {batch_sizes!r}")
        result = bench_train_step(
            batch_sizes=tuple(sizes),
            width=width,
            rounds=rounds,
            warmup=warmup,
            compile_model=compile_model,
            device=device,
            progress=say,
        )
        if json_output:
            emit_json(result)
            return
        table = Table(
            title=f"training step, 784-{width}x3-10, {result['device']}, {result['threads']} threads, "
            f"compile={result['compiled']}, medians of {rounds} interleaved rounds"
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
        out.print(table)
        for name, why in result["skipped"].items():
            say(f"skipped {name}: {why}")


def _at_least(low: int, **options: int) -> None:
    """One-line errors for integer options below ``low`` (the first one named)."""
    for name, value in options.items():
        if value < low:
            raise BnnctlError(f"{name} must be >= {low}, got {value}")


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise BnnctlError(f"{option}: expected positive integers separated by commas, got {text!r}")
    return values


@bench_app.command("gemm")
def bench_gemm(
    m: str = typer.Option("1,64,256,1024", "--m", help="Rows of A (the batch), comma-separated."),
    kn: str = typer.Option("2048,4096", "--kn", help="K = N values, comma-separated."),
    rounds: int = typer.Option(7, help="Interleaved rounds; figures are medians over them."),
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
    with errors():
        import datetime as dt

        import pandas as pd

        from bnnctl.bench.gemm import DEFAULT, REFERENCE, bench_products, bench_sizes, skipped_methods
        from bnnctl.report.html import write_report
        from bnnctl.report.plots import plot_gemm_sizes
        from bnnctl.report.tables import write_table

        ms, kns = _ints(m, "--m"), _ints(kn, "--kn")
        _at_least(1, **{"--rounds": rounds, "--naive-max": naive_max})
        folder = output or Path("runs") / "bench" / "gemm" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        products = pd.DataFrame(bench_products(ms, kns, rounds, progress=say))
        written = write_table(products, folder, "products", floatfmt=".3g")
        result: dict = {"products": products.to_dict("records"), "skipped": skipped_methods()}
        if sizes:
            frame = pd.DataFrame(bench_sizes(_ints(size_list, "--size-list"), rounds, naive_max, progress=say))
            written += write_table(frame, folder, "sizes", floatfmt=".4g")
            written.append(plot_gemm_sizes(frame, folder / "sizes.png"))
            result["sizes"] = frame.to_dict("records")
        written.append(write_report(folder))  # last: it embeds the figure
        result["files"] = [str(p) for p in written]
        if json_output:
            emit_json(result)
            return
        shown = products[["M", "K", "method", "ms", "GOP/s", f"x_{REFERENCE}", f"x_{DEFAULT}"]]
        print_frame(shown, f"A (M x K) times W^T (K x N = K), medians of {rounds} interleaved rounds")
        if sizes:
            print_frame(pd.DataFrame(result["sizes"]), "square products")
        for name, why in result["skipped"].items():
            say(f"skipped {name}: {why}")
        out.print(f"wrote {', '.join(result['files'])}")


@bench_app.command("infer")
def bench_infer(
    run_dir: Path = typer.Argument(..., help="A run folder written by `bnnctl train`.", show_default=False),
    batch: str = typer.Option("1,256", "--batch", help="Batch sizes, comma-separated."),
    rounds: int = typer.Option(7, help="Interleaved rounds; figures are medians over them."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write infer.csv and infer.md here."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Images/s of the run's packed model vs its float model (as evaluated, and with its +-1 weights cached).

    All three forms are checked to give the same outputs on the benchmark batch before they are timed.
    """
    with errors():
        import pandas as pd

        from bnnctl.bench.infer import bench_infer as run_bench
        from bnnctl.report.html import write_report
        from bnnctl.report.tables import write_table

        _at_least(1, **{"--rounds": rounds})
        result = run_bench(run_dir, _ints(batch, "--batch"), rounds, progress=say)
        if output is not None:
            written = write_table(pd.DataFrame(result["rows"]), output, "infer", floatfmt=".4g")
            result["files"] = [str(p) for p in [*written, write_report(output)]]
        if json_output:
            emit_json(result)
            return
        print_frame(pd.DataFrame(result["rows"]), f"inference, {result['run']}, {result['threads']} threads")
