"""``bnnctl bench infer RUN_DIR``: images/s of a run's packed model against its float model.

Three forms of the same network, interleaved at each batch size:

* ``float``: the float simulation as ``bnnctl eval`` runs it (it re-binarizes
  its latent weights on every call);
* ``float_cached``: the same float ops with the +-1 weights binarized once
  (``pack_model(xnor=False)``): the fair float baseline;
* ``packed``: XNOR-popcount layers on bits (``pack_model``).

All three give the same outputs (checked on the benchmark batch before timing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from bnnctl.bench.timing import interleaved_medians
from bnnctl.packed.export import pack_model
from bnnctl.runs import load_trained_model


def _no_grad_call(form: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            form(x)

    return run


def bench_infer(
    run_dir: str | Path, batches: list[int], rounds: int, progress: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    trained = load_trained_model(run_dir)
    model = trained.model
    forms: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "float": model,
        "float_cached": pack_model(model, trained.input_shape, xnor=False),
        "packed": pack_model(model, trained.input_shape),
    }
    rows = []
    for batch in batches:
        progress(f"batch {batch}")
        x = torch.randn(batch, *trained.input_shape)
        with torch.no_grad():
            outputs = {name: form(x) for name, form in forms.items()}
        for name, out in outputs.items():
            if not torch.equal(out, outputs["float"]):
                raise AssertionError(f"{name} outputs differ from the float model's")

        seconds = interleaved_medians({name: _no_grad_call(form, x) for name, form in forms.items()}, rounds)
        for name, s in seconds.items():
            rows.append(
                {
                    "batch": batch, "model": name, "ms": s * 1e3, "images/s": batch / s,
                    "x_float": seconds["float"] / s, "x_float_cached": seconds["float_cached"] / s,
                }
            )  # fmt: skip
    return {
        "run": Path(run_dir).name,
        "input_shape": list(trained.input_shape),
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
