"""Packed models of run folders: ``bnnctl export`` (the file and its size) and ``bnnctl eval --packed``.

``eval --packed`` runs the test set through the float model and the packed
one, batch by batch, and counts the images whose predicted class differs;
the packed model is built to make that count 0 (``export``), so a non-zero
count is a bug, reported as such by the CLI.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from bnnctl.data import iterate_batches, load_dataset
from bnnctl.files import write_json
from bnnctl.nn.size import model_size_bytes
from bnnctl.packed.export import PackedModel, load_packed, pack_model, save_packed
from bnnctl.runs import CHECKPOINT, Trained, load_trained_model, open_run

PACKED_FILE = "packed.npz"  # beside checkpoint.pt in the run folder


def export_run(run_dir: str | Path, output: str | Path | None = None) -> dict[str, Any]:
    """Pack the run's model into ``output`` (default ``<run>/packed.npz``); its size next to the float checkpoint's."""
    run = open_run(run_dir)
    trained = load_trained_model(run)
    packed = pack_model(trained.model, trained.input_shape)
    path = save_packed(packed, output or run.path / PACKED_FILE, {"run": run.name, "num_classes": trained.num_classes})
    packed_bytes = path.stat().st_size
    checkpoint_bytes = (run.path / CHECKPOINT).stat().st_size
    float32_bytes = model_size_bytes(trained.model)["bytes_float32"]
    return {
        "run": run.name,
        "file": str(path),
        "packed_bytes": packed_bytes,
        "checkpoint_bytes": checkpoint_bytes,
        "float32_bytes": int(float32_bytes),
        "x_smaller_than_float32": float32_bytes / packed_bytes,
        "x_smaller_than_checkpoint": checkpoint_bytes / packed_bytes,
        "thresholded_layers": packed.meta["thresholded_layers"],
        "ops": packed.summary(),
    }


def _packed_for(trained: Trained, run_path: Path) -> tuple[PackedModel, str]:
    """The exported file when the run has one (what a deployment runs), else the model packed in memory."""
    path = run_path / PACKED_FILE
    if path.is_file():
        return load_packed(path), str(path)
    return pack_model(trained.model, trained.input_shape), "packed in memory (bnnctl export writes the file)"


def evaluate_packed(run_dir: str | Path, data_root: str | None = None) -> dict[str, Any]:
    """Test accuracy of the float and the packed model (CPU), and the images whose predictions differ."""
    run = open_run(run_dir)
    trained = load_trained_model(run)
    cfg = trained.cfg
    packed, source = _packed_for(trained, run.path)
    data_cfg = dataclasses.replace(cfg.data, val_size=0, root=data_root if data_root is not None else cfg.data.root)
    data = load_dataset(data_cfg, "cpu")
    n = correct_float = correct_packed = differ = 0
    seconds = {"float": 0.0, "packed": 0.0}
    with torch.no_grad():
        for x, y in iterate_batches(data.test, cfg.train.eval_batch_size):
            t0 = time.perf_counter()
            expected = trained.model(x).argmax(1)
            t1 = time.perf_counter()
            got = packed(x).argmax(1)
            t2 = time.perf_counter()
            seconds["float"] += t1 - t0
            seconds["packed"] += t2 - t1
            n += len(y)
            correct_float += int((expected == y).sum())
            correct_packed += int((got == y).sum())
            differ += int((got != expected).sum())
    result = {
        "run": run.name,
        "data": cfg.data.name,
        "split": "test",
        "n": n,
        "packed_model": source,
        "test_acc_float": correct_float / max(n, 1),
        "test_acc_packed": correct_packed / max(n, 1),
        "predictions_differ": differ,
        "identical_predictions": differ == 0,
        "float_images_per_s": n / seconds["float"] if seconds["float"] else None,
        "packed_images_per_s": n / seconds["packed"] if seconds["packed"] else None,
        "batch_size": cfg.train.eval_batch_size,
    }
    write_json(run.path / "eval_packed.json", result)
    return result
