"""TensorBoard and MLflow loggers: what a run sends, read back through each tool's own reader."""

from __future__ import annotations

import json

import pytest

from bnnctl.api import ablate, train


def epochs_of(run):
    return [r for r in run.metrics() if r["kind"] == "epoch"]


def test_tensorboard_event_files_hold_every_epoch_the_running_loss_and_the_curves(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train(["debug=tiny", "train.epochs=2", "train.eval_every=10", "logger=tensorboard", f"runs_dir={tmp_path}"])
    events = EventAccumulator(str(run.path / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    epochs = epochs_of(run)
    val = events.Scalars("epoch/val_acc")
    assert [e.step for e in val] == [r["iteration"] for r in epochs]  # step = iterations so far
    assert [e.value for e in val] == pytest.approx([r["val_acc"] for r in epochs])
    loss = events.Scalars("train/loss")  # the running loss as the trainer reads it: steps 1, 21 and the last
    assert [e.step for e in loss] == [1, 21, 32, 33, 53, 64]
    assert loss[2].value == pytest.approx(epochs[0]["train_loss"]) and loss[-1].value == pytest.approx(
        epochs[1]["train_loss"]
    )
    periodic = [r for r in run.metrics() if r["kind"] == "iter"]
    assert [e.value for e in events.Scalars("iter/val_acc")] == pytest.approx([r["val_acc"] for r in periodic])
    assert "curves" in tags["images"]
    assert "config" in events.Tags()["tensors"] or "config/text_summary" in events.Tags()["tensors"]


def test_an_mlflow_run_has_the_config_as_params_every_epoch_and_the_figures(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # the default store is ./mlruns
    run = train(["debug=tiny", "train.epochs=2", "logger=mlflow", f"runs_dir={tmp_path / 'runs'}"])
    client = MlflowClient((tmp_path / "mlruns").as_uri())
    [experiment] = [e for e in client.search_experiments() if e.name == "blu_mlp-synthetic"]
    [logged] = client.search_runs([experiment.experiment_id])
    assert logged.info.status == "FINISHED" and logged.info.run_name == run.path.name
    assert logged.data.params["train.epochs"] == "2" and logged.data.params["model.width"] == "64"
    history = client.get_metric_history(logged.info.run_id, "epoch.val_acc")
    epochs = epochs_of(run)
    assert [(m.step, m.value) for m in history] == [(r["iteration"], pytest.approx(r["val_acc"])) for r in epochs]
    summary = json.loads((run.path / "summary.json").read_text())
    assert logged.data.metrics["summary.final_test_acc"] == pytest.approx(summary["final_test_acc"])
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"curves.png", "summary.json", "config.yaml"} <= artifacts


def test_grid_cells_are_one_mlflow_experiment_tagged_with_cell_and_seed(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    grid = tmp_path / "tiny.yaml"
    grid.write_text(
        "name: tiny_logged\nfixed: [debug=tiny, train.epochs=1, train.max_steps_per_epoch=3]\n"
        "axes:\n  - {key: train.weight_clip, values: [false, true], short: W}\nseeds: [0, 1]\n"
    )
    result = ablate(str(grid), ["logger=mlflow", "launcher=inline", f"runs_dir={tmp_path / 'runs'}"])
    assert result.ok and len(result.done) == 4
    client = MlflowClient((tmp_path / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("tiny_logged")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted((r.data.tags["cell"], r.data.tags["seed"]) for r in runs) == [
        ("W", "0"), ("W", "1"), ("none", "0"), ("none", "1")
    ]  # fmt: skip
    assert all(r.data.tags["grid"] == "tiny_logged" for r in runs)


def test_a_missing_logger_package_is_one_error_naming_it(tmp_path, monkeypatch):
    import importlib.util

    from bnnctl.errors import ConfigError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigError, match="logger=mlflow needs the mlflow package"):
        train(["debug=tiny", "logger=mlflow", f"runs_dir={tmp_path}"])
    assert not list((tmp_path / "train").iterdir())  # no folder left behind
