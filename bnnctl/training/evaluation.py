"""Re-evaluate a finished run from its folder: the trained model (``runs.load_trained``) on the test split."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bnnctl.data import load_dataset
from bnnctl.files import write_json
from bnnctl.nn import get_loss, layer_sizes, model_size_bytes
from bnnctl.runs import load_trained, open_run
from bnnctl.training.runtime import resolve_device
from bnnctl.training.trainer import evaluate


def evaluate_run(run_dir: str | Path, data_root: str | None = None, device: str | None = None) -> dict[str, Any]:
    """Test accuracy and loss of the run's saved model, and its size per layer; also written to ``<run>/eval.json``."""
    run = open_run(run_dir)
    cfg, model = load_trained(run)
    if data_root is not None:
        cfg.data = dataclasses.replace(cfg.data, root=data_root)
    torch_device = resolve_device(device or cfg.train.device)
    data = load_dataset(dataclasses.replace(cfg.data, val_size=0), torch_device)
    model.to(torch_device)
    metrics = evaluate(model, data.test, cfg.train.eval_batch_size, get_loss(cfg.model.loss))
    layers = layer_sizes(model)
    result = {
        "run": run.name,
        "data": cfg.data.name,
        "split": "test",
        "n": metrics["n"],
        "test_acc": metrics["acc"],
        "test_loss": metrics["loss"],
        "device": str(torch_device),
        "complete": run.done,
        **{f"model_{k}": v for k, v in model_size_bytes(model, layers).items()},
        "layers": layers,
    }
    write_json(run.path / "eval.json", result)
    return result
