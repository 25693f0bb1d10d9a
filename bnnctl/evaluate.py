"""Re-evaluate a finished run from its folder: config + checkpoint -> test metrics."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bnnctl.config import load_yaml
from bnnctl.data import load_dataset
from bnnctl.errors import RunError
from bnnctl.models import build_model, get_loss
from bnnctl.runs import CONFIG, open_run, write_json
from bnnctl.train import evaluate, resolve_device


def evaluate_run(run_dir: str | Path, data_root: str | None = None, device: str | None = None) -> dict[str, Any]:
    """Test accuracy and loss of the run's saved model; also written to ``<run>/eval.json``."""
    run = open_run(run_dir)
    cfg = load_yaml(run.path / CONFIG)
    if data_root is not None:
        cfg.data = dataclasses.replace(cfg.data, root=data_root)
    state = run.load_checkpoint()
    torch_device = resolve_device(device or cfg.train.device)
    data = load_dataset(dataclasses.replace(cfg.data, val_size=0), torch_device)
    model = build_model(cfg.model, cfg.binarize, data.input_shape, data.num_classes)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise RunError(f"the checkpoint in {run.path} does not fit its config: {first}") from None
    model.to(torch_device)
    metrics = evaluate(model, data.test, cfg.train.eval_batch_size, get_loss(cfg.model.loss))
    result = {
        "run": run.name, "data": cfg.data.name, "split": "test", "n": metrics["n"],
        "test_acc": metrics["acc"], "test_loss": metrics["loss"], "device": str(torch_device),
        "complete": run.done,
    }
    write_json(run.path / "eval.json", result)
    return result
