"""Loggers: a run's metrics, config and figures also sent to TensorBoard or MLflow (``logger=...``).

A logger is a ``TrainObserver`` beside the progress display (``observer.Observers``):
it sees the running training loss whenever the trainer reads it (every 20 steps and at the end of an epoch:
the loss stays on the device in between), every epoch's
record (step = the iteration count), the periodic validation accuracy, and at
the end the summary, the config as hyper-parameters and ``curves.png``. The run
folder stays the record; a logger is a view of it, and a logger that fails to
write warns once and steps aside rather than stopping the training.

* TensorBoard: ``torch.utils.tensorboard.SummaryWriter`` event files in
  ``<run folder>/tensorboard`` (or ``logger.dir``); scalars ``train/loss``, ``epoch/<metric>``, ``iter/val_acc``; the config as text and as
  hparams with the headline numbers; the curves as an image.
* MLflow: a run in ``logger.tracking_uri`` (default the file store ./mlruns;
  MLflow >= 3.7 wants ``MLFLOW_ALLOW_FILE_STORE=true`` for it, which bnnctl sets
  unless it is set already), in experiment ``logger.experiment`` (a grid's
  name for its cells), named after the run folder, tagged with ``logger.tags``
  (grid, cell, seed). Params are the flattened config; ``curves.png``,
  ``summary.json`` and ``config.yaml`` are artifacts.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

from bnnctl.config.schema import TrainConfig
from bnnctl.training.observer import TrainObserver


def flat_config(cfg: TrainConfig) -> dict[str, Any]:
    """The resolved config as dotted keys with scalar values (lists and dicts as their text)."""
    from bnnctl.config import to_container

    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            flat[prefix] = value if isinstance(value, (int, float, str, bool)) or value is None else str(value)

    walk("", to_container(cfg))
    return {k: v for k, v in flat.items() if not k.startswith(("logger.", "choices."))}


def numeric(record: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a record (its strings, flags and NaNs left out)."""
    return {
        k: float(v)
        for k, v in record.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    }


class _Logger(TrainObserver):
    """What both loggers share: the global step, failing softly."""

    def __init__(self, cfg: TrainConfig, run: Any):
        self.cfg, self.run = cfg, run
        self.steps_per_epoch = 1
        self.broken = False

    def _safely(self, action, *args) -> None:
        if self.broken:
            return
        try:
            action(*args)
        except Exception as exc:  # noqa: BLE001 - a logger must not stop a run
            self.broken = True
            warnings.warn(f"logger={self.cfg.logger.name.value} stopped logging: {exc}", RuntimeWarning, stacklevel=3)

    def on_fit_start(self, *, epochs, steps_per_epoch, run, device):
        self.steps_per_epoch = steps_per_epoch
        self._safely(self.start)

    def on_step(self, *, epoch, step, loss):
        if loss is not None:
            self._safely(self.scalars, {"train/loss": loss}, epoch * self.steps_per_epoch + step)

    def on_iteration(self, record):
        self._safely(self.scalars, {"iter/val_acc": record["val_acc"]}, record["iteration"])

    def on_epoch_end(self, record):
        values = {f"epoch/{k}": v for k, v in numeric(record).items() if k not in ("epoch", "iteration")}
        self._safely(self.scalars, values, record["iteration"])

    def on_fit_end(self, summary):
        self._safely(self.finish, summary)

    def start(self) -> None: ...

    def scalars(self, values: dict[str, float], step: int) -> None: ...

    def finish(self, summary: dict[str, Any]) -> None: ...


class TensorBoardLogger(_Logger):
    def start(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        folder = self.cfg.logger.dir or (str(Path(self.run.path) / "tensorboard") if self.run is not None else None)
        self.writer = SummaryWriter(log_dir=folder)
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in flat_config(self.cfg).items()))

    def scalars(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def finish(self, summary: dict[str, Any]) -> None:
        hparams = {k: v for k, v in flat_config(self.cfg).items() if isinstance(v, (int, float, str, bool))}
        headline = {
            f"hparam/{k}": v for k, v in numeric(summary).items() if k.endswith("_acc") or k == "final_train_loss"
        }
        self.writer.add_hparams(hparams, headline, run_name=".")
        curves = Path(self.run.path) / "curves.png" if self.run is not None else None
        if curves is not None and curves.is_file():
            import matplotlib.image

            image = matplotlib.image.imread(curves)[..., :3]  # (H, W, 3) floats in [0, 1]
            self.writer.add_image("curves", image, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if hasattr(self, "writer"):
            self.writer.close()


class MLflowLogger(_Logger):
    def start(self) -> None:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the local file store (see the module docstring)
        from mlflow.tracking import MlflowClient

        log = self.cfg.logger
        self.uri = log.tracking_uri or Path("mlruns").resolve().as_uri()
        self.client = MlflowClient(self.uri)
        experiment = log.experiment or self.cfg.run_name
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
        name = Path(self.run.path).name if self.run is not None else self.cfg.run_name
        tags = {**log.tags, "bnnctl.run_dir": str(self.run.path) if self.run is not None else ""}
        self.run_id = self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        params = [(k, str(v)[:500]) for k, v in flat_config(self.cfg).items()]  # MLflow caps a value at 500-6000 chars
        from mlflow.entities import Param

        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in params[i : i + 100]])
        self.ended = False

    def scalars(self, values: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key.replace("/", "."), value, now, step) for key, value in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, summary: dict[str, Any]) -> None:
        self.scalars({f"summary.{k}": v for k, v in numeric(summary).items()}, 0)
        if self.run is not None:
            for name in ("curves.png", "summary.json", "config.yaml"):
                path = Path(self.run.path) / name
                if path.is_file():
                    self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, "FINISHED")
        self.ended = True

    def close(self) -> None:
        if getattr(self, "run_id", None) and not self.ended:  # training failed or was interrupted
            try:
                self.client.set_terminated(self.run_id, "FAILED")
            except Exception:  # noqa: BLE001 - closing must not raise over the real error
                pass


PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # logger -> the module it needs


def make_logger(cfg: TrainConfig, run: Any) -> TrainObserver | None:
    """The logger ``cfg.logger`` asks for, or None; a missing package is a ConfigError naming it."""
    import importlib.util

    from bnnctl.errors import ConfigError

    name = cfg.logger.name.value
    if name == "none":
        return None
    if importlib.util.find_spec(PACKAGES[name]) is None:
        raise ConfigError(
            f"logger={name} needs the {PACKAGES[name]} package: pip install 'bnnctl[loggers]' (or {PACKAGES[name]})"
        )
    return {"tensorboard": TensorBoardLogger, "mlflow": MLflowLogger}[name](cfg, run)
