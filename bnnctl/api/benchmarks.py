"""``bnnctl bench train|gemm|infer``: speed figures, measured interleaved in one process, as ratios.

Each returns a dict that ``--json`` prints as it is (``rows`` and ``skipped``:
the variants this CPU emulates and why they were left out).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bnnctl.errors import ConfigError
from bnnctl.process import computing

Progress = Callable[[str], None]


def _at_least(low: int, **options: int) -> None:
    """One-line errors for integer options below ``low`` (the first one named)."""
    for name, value in options.items():
        if value < low:
            raise ConfigError(f"{name} must be >= {low}, got {value}")


def _positive(values: Sequence[int], name: str) -> list[int]:
    if not values or min(values) < 1:
        raise ConfigError(f"{name}: expected positive integers, got {list(values)}")
    return list(values)


def bench_train(
    batch_sizes: Sequence[int] = (100, 256),
    *,
    width: int = 4096,
    rounds: int = 7,
    warmup: int = 3,
    compile_model: bool = True,
    device: str = "auto",
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """Training step of the float MLP (fp32, bf16 autocast) vs the BNN MLP (fp32, exact int8/bf16 products).

    Each row's ``vs_float32_mlp`` is its step time over the float32 float MLP's at the same batch size.
    """
    from bnnctl.bench.train_step import bench_train_step

    sizes = _positive(batch_sizes, "--batch-sizes")
    _at_least(1, **{"--width": width, "--rounds": rounds})
    _at_least(0, **{"--warmup": warmup})
    if min(sizes) < 2:
        raise ConfigError(f"--batch-sizes must be >= 2 (batch norm needs two examples), got {sizes}")
    return bench_train_step(
        batch_sizes=tuple(sizes),
        width=width,
        rounds=rounds,
        warmup=warmup,
        compile_model=compile_model,
        device=device,
        progress=progress,
    )


def bench_gemm(
    m: Sequence[int] = (1, 64, 256, 1024),
    kn: Sequence[int] = (2048, 4096),
    *,
    rounds: int = 7,
    sizes: Sequence[int] = (),
    naive_max: int = 1024,
    output: str | Path | None = None,
    runs_dir: str | Path = "runs",
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """The packed XNOR-popcount product vs float32, bf16 and int8 on the same +-1 operands: GOP/s and ratios.

    ``sizes``: also time square products M = K = N and plot them. Writes
    ``output`` (default ``<runs_dir>/bench/gemm/<time>/``): products.csv/md,
    sizes.csv/md/png, report.html.
    """
    import pandas as pd

    from bnnctl.bench.gemm import DEFAULT, REFERENCE, bench_products, bench_sizes, skipped_methods
    from bnnctl.reporting.html import write_study_page
    from bnnctl.reporting.plots import plot_gemm_sizes
    from bnnctl.reporting.tables import write_table
    from bnnctl.runs import new_timestamped_folder

    ms, kns = _positive(m, "--m"), _positive(kn, "--kn")
    _at_least(1, **{"--rounds": rounds, "--naive-max": naive_max})
    square = _positive(sizes, "--size-list") if sizes else []
    with computing():
        folder = Path(output) if output is not None else new_timestamped_folder(Path(runs_dir) / "bench" / "gemm")
        products = pd.DataFrame(bench_products(ms, kns, rounds, progress=progress))
        written = write_table(products, folder, "products", floatfmt=".3g")
        result: dict[str, Any] = {"folder": str(folder), "products": products.to_dict("records")}
        result.update(skipped=skipped_methods(), reference=REFERENCE, default=DEFAULT)  # the ratio columns' bases
        if square:
            frame = pd.DataFrame(bench_sizes(square, rounds, naive_max, progress=progress))
            written += write_table(frame, folder, "sizes", floatfmt=".4g")
            written.append(plot_gemm_sizes(frame, folder / "sizes.png"))
            result["sizes"] = frame.to_dict("records")
        written.append(write_study_page(folder))  # last: it embeds the figure
    result["files"] = [str(p) for p in written]
    return result


def bench_infer(
    run_dir: str | Path,
    batches: Sequence[int] = (1, 256),
    *,
    rounds: int = 7,
    output: str | Path | None = None,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """Images/s of a run's packed model vs its float model (as evaluated, and with its +-1 weights cached).

    All forms are checked to give the same outputs before they are timed. ``output``: also infer.csv/md and a page.
    """
    import pandas as pd

    from bnnctl.bench.infer import bench_infer as measure
    from bnnctl.reporting.html import write_study_page
    from bnnctl.reporting.tables import write_table

    _at_least(1, **{"--rounds": rounds})
    with computing():
        result = measure(run_dir, _positive(batches, "--batch"), rounds, progress=progress)
        if output is not None:
            written = write_table(pd.DataFrame(result["rows"]), Path(output), "infer", floatfmt=".4g")
            result["files"] = [str(p) for p in [*written, write_study_page(Path(output))]]
    return result
