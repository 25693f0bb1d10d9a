"""A whole training run: ``fit(cfg) -> summary``, and ``train_into(run, cfg)`` for a run folder.

Every finished epoch is appended to the run's metrics file at once and the
training state saved after it (``resume``), so an interrupted run keeps what
it finished and can continue; ``DONE`` is written only at the end,
``error.txt`` (the traceback) when training fails. ``bnnctl train`` and every
grid cell train through ``train_into``.
"""

from __future__ import annotations

import math
import time
import traceback
from typing import Any, Callable

import torch
import torch.nn as nn

from bnnctl.config.schema import TrainConfig
from bnnctl.data import PIXEL_BOUNDS, AugmentSpec, Dataset, iterate_batches, load_dataset
from bnnctl.distributed.ddp import (
    RANK_SEED_STRIDE,
    DistributedError,
    communication_summary,
    needs_process_group,
    rank_device,
    seed_this_rank,
    shard,
    threads_per_rank,
    with_launched_world,
)
from bnnctl.distributed.launch import (
    LocalWorld,
    Rank,
    backend_for,
    join_alone,
    join_from_environment,
    leave,
    torchrun_rank,
)
from bnnctl.errors import ConfigError, TrainingDiverged
from bnnctl.kernels.threads import use_threads
from bnnctl.nn import build_model
from bnnctl.nn.layers import latent_weight_peaks
from bnnctl.process import computing
from bnnctl.runs import Run
from bnnctl.training.loggers import make_logger
from bnnctl.training.observer import Observers, TrainObserver
from bnnctl.training.resume import capture, restore
from bnnctl.training.runtime import resolve_device, seed_everything
from bnnctl.training.summary import products_of_epochs, summarize, warn_if_products_changed
from bnnctl.training.trainer import Trainer


def augment_spec(cfg: TrainConfig) -> AugmentSpec | None:
    """The augmentation of training batches, or None when ``data.augment`` is off."""
    d = cfg.data
    if not d.augment:
        return None
    low, high = PIXEL_BOUNDS[d.pixel_range]
    return AugmentSpec(d.augment_rotation, d.augment_shift, d.augment_jitter, low, high)


def steps_per_epoch(n_train: int, cfg: TrainConfig) -> int:
    steps = n_train // cfg.train.batch_size
    if steps == 0:
        raise ConfigError(f"train.batch_size={cfg.train.batch_size} exceeds the {n_train} training examples")
    return min(steps, cfg.train.max_steps_per_epoch) if cfg.train.max_steps_per_epoch else steps


def _periodic_validation(trainer: Trainer, data: Dataset, run: Run | None, steps: int, observer: TrainObserver):
    """After each step: validation accuracy every ``train.eval_every`` iterations, logged; returns its seconds.

    The last step of an epoch is left to the epoch's own evaluation (its record has the iteration too).
    """
    every, batch_size = trainer.cfg.train.eval_every, trainer.cfg.train.eval_batch_size

    def after_step(epoch: int) -> float:
        if not every or trainer.iteration % every or data.val is None or trainer.iteration % steps == 0:
            return 0.0
        t0 = time.perf_counter()
        acc = trainer.accuracy(data.val, batch_size)
        record = {"kind": "iter", "epoch": epoch + 1, "iteration": trainer.iteration, "val_acc": acc}
        if run is not None:
            run.log_metrics(record)
        observer.on_iteration(record)
        return time.perf_counter() - t0

    return after_step


def fit(
    cfg: TrainConfig,
    run: Run | None = None,
    observer: TrainObserver | None = None,
    overrides: list[str] | None = None,
    dataset: Dataset | None = None,
    resume: bool = False,
) -> dict[str, Any] | None:
    """Train the model ``cfg`` describes; log to ``run`` (if any) and return the summary.

    The order of set-up (device, files, seeds, data, model, optimizer) is what
    makes a run repeat bit for bit on the same machine. After every epoch the
    run folder gets the whole training state (``resume.pt``); ``resume=True``
    continues a cut-off run from it: the set-up is repeated, the state put
    back, and the epochs after the saved one are trained as they would have been.

    With ``dist.*`` (or under torchrun) the same training runs on every rank
    of a DDP world (``fit_data_parallel``); rank 0 returns the summary, other
    torchrun ranks None.
    """
    if needs_process_group(cfg) and resume:
        raise ConfigError("a data-parallel run cannot be resumed: its ranks' residuals are not saved; train it again")
    with computing(threads=cfg.train.threads, flush_denormals=_on_cpu(cfg)):  # restored when training ends
        if not needs_process_group(cfg):
            return fit_on_rank(cfg, run, observer, overrides, dataset, resume)
        return fit_data_parallel(fit_on_rank, cfg, run, observer, overrides)


def _on_cpu(cfg: TrainConfig) -> bool:
    """Whether training computes on the CPU, where denormal floats cost (``bnnctl.process.computing``)."""
    return resolve_device(cfg.train.device).type == "cpu"


def fit_on_rank(
    cfg: TrainConfig,
    run: Run | None = None,
    observer: TrainObserver | None = None,
    overrides: list[str] | None = None,
    dataset: Dataset | None = None,
    resume: bool = False,
    rank: Rank | None = None,
) -> dict[str, Any] | None:
    """``fit`` in this process: alone (``rank=None``), or as one rank of a process group already joined."""
    observer = observer or TrainObserver()
    t_start = time.perf_counter()
    device = resolve_device(cfg.train.device)  # threads and denormals: set by ``fit`` for the whole training
    if rank is not None:
        device = rank_device(device, rank)
    saved = run.load_resume_state() if run is not None and resume else None
    if run is not None and not resume:
        run.write_config(cfg, overrides or [])
        run.write_environment(str(device))
    batch_gen = seed_everything(cfg.train.seed)
    data = dataset or load_dataset(cfg.data, device)
    model = build_model(cfg.model, cfg.binarize, data.input_shape, data.num_classes).to(device)
    trainer = Trainer(cfg, model, device, data_parallel=rank is not None)
    if rank is not None:
        seed_this_rank(cfg.train.seed, rank)
    main = rank is None or rank.is_main  # the process that evaluates and logs
    steps = steps_per_epoch(len(data.train), cfg)
    augment_seed = cfg.train.seed + 7919 + (RANK_SEED_STRIDE * rank.rank if rank is not None else 0)
    augment, augment_gen = augment_spec(cfg), torch.Generator().manual_seed(augment_seed)
    after_step = _periodic_validation(trainer, data, run, steps, observer) if main else (lambda epoch: 0.0)

    history: list[dict[str, Any]] = []
    elapsed_before = 0.0  # seconds the earlier attempts spent on the epochs they finished
    if saved is not None:
        history, elapsed_before = restore(saved, cfg, trainer, batch_gen, augment_gen)
        warn_if_products_changed(history, trainer.product_format, cfg.train.binary_matmul)
    if run is not None and resume:
        run.keep_metrics_through(len(history))  # what the cut-off epoch had logged goes
        run.clear_error()
    epochs = cfg.train.epochs
    where = str(data.train.x.device)
    if rank is not None:
        where += f" x {rank.world_size} ranks (DDP, dist.compress={cfg.dist.compress.value})"
    observer.on_fit_start(epochs=epochs, steps_per_epoch=steps, run=run, device=where)
    observer.on_resume(history)
    for epoch in range(len(history), epochs):
        record = _train_one_epoch(
            trainer, data, epoch, steps, batch_gen, augment, augment_gen, observer, after_step, rank, main
        )
        history.append(record)
        if run is not None:
            run.log_metrics(record)  # at once: an interrupted run keeps every finished epoch
        observer.on_epoch_end(record)
        check_finite(record, model)
        if run is not None and epoch + 1 < epochs and rank is None:
            elapsed = elapsed_before + time.perf_counter() - t_start
            run.save_resume_state(capture(cfg, trainer, batch_gen, augment_gen, history, elapsed))
    if not main:
        return None

    total_time = elapsed_before + time.perf_counter() - t_start
    summary = summarize(cfg, history, model, str(data.train.x.device), trainer.forward.is_compiled, total_time, data)
    summary["binary_matmul"] = products_of_epochs(history, trainer.product_format)
    summary.update(communication_summary(history, rank, cfg) if rank is not None else {"world_size": 1})
    if saved is not None:
        summary["resumed_from_epoch"] = saved["epoch"]
    if run is not None:
        _finish(run, cfg, model, data, history, summary)
    observer.on_fit_end(summary)
    return summary


FitOnRank = Callable[..., Any]  # fit_on_rank(cfg, run, observer, overrides, dataset, resume, rank) -> summary


def fit_data_parallel(
    fit_on_rank: FitOnRank, cfg: TrainConfig, run: Run | None, observer: Any, overrides: list[str] | None
) -> dict[str, Any] | None:
    """Train on a DDP world: torchrun's, one of W ranks spawned here, or a world of one (compression alone).

    This process runs ``fit_on_rank`` (rank 0 under a local world); spawned
    ranks run this module's own. Returns rank 0's summary (None on the other
    ranks of a torchrun world). See ``distributed.ddp`` for how the ranks split
    the work.
    """
    launched = torchrun_rank()
    backend = backend_for(cfg.dist.backend.value, resolve_device(cfg.train.device))
    if launched is not None:
        cfg = with_launched_world(cfg)
        join_from_environment(backend)
        try:
            return fit_on_rank(cfg, run if launched.is_main else None, observer if launched.is_main else None,
                               overrides, None, False, launched)  # fmt: skip
        finally:
            leave()
    world = cfg.dist.world_size
    threads = threads_per_rank(cfg, world)
    use_threads(threads)
    if world == 1:
        join_alone(backend)
        try:
            return fit_on_rank(cfg, run, observer, overrides, None, False, Rank(0, 1, 0))
        finally:
            leave()
    local = LocalWorld(world, backend, _train_child_rank, (cfg, threads))
    with local as rank0:
        try:
            return fit_on_rank(cfg, run, observer, overrides, None, False, rank0)
        except RuntimeError as exc:  # a collective failed: most likely another rank did first
            cause = local.cause()
            if cause is not None:
                raise DistributedError(cause) from exc
            raise


def _train_child_rank(rank: Rank, cfg: TrainConfig, threads: int) -> None:
    """What a spawned rank runs: the same training, no folder, no progress (picklable, top level)."""
    with computing(threads=threads, flush_denormals=_on_cpu(cfg)):
        fit_on_rank(cfg, None, None, None, None, False, rank)


def _train_one_epoch(
    trainer: Trainer,
    data: Dataset,
    epoch: int,
    steps: int,
    batch_gen: torch.Generator,
    augment: AugmentSpec | None,
    augment_gen: torch.Generator,
    observer: TrainObserver,
    after_step,
    rank: Rank | None = None,
    main: bool = True,
) -> dict[str, Any]:
    """One epoch's steps, then its evaluation (rank 0's alone): the epoch's metrics record."""
    cfg = trainer.cfg
    lr = trainer.start_epoch(epoch)
    batches = iterate_batches(data.train, cfg.train.batch_size, shuffle=True, generator=batch_gen, drop_last=True)
    if rank is not None:
        batches = shard(batches, rank)
    record = {
        "kind": "epoch",
        "epoch": epoch + 1,
        "lr": lr,
        **trainer.train_epoch(
            batches,
            steps,
            epoch=epoch,
            observer=observer,
            augment=augment,
            augment_gen=augment_gen,
            after_step=after_step,
        ),
    }
    record["iteration"] = trainer.iteration
    record["binary_matmul"] = trainer.product_format  # per epoch: a resume on another CPU may change it
    record.update(latent_weight_peaks(trainer.model))  # whether weight clipping could have acted yet
    if main:
        record.update(trainer.evaluate_splits({"val": data.val, "test": data.test}, cfg.train.eval_batch_size))
    return record


def check_finite(record: dict[str, Any], model: nn.Module) -> None:
    """Raise TrainingDiverged when the epoch's loss or any parameter or buffer is not finite.

    Such a model predicts nothing (NaN logits argmax to class 0), so its run must
    end as failed: the epoch records stay in metrics.jsonl, no checkpoint, no DONE.
    """
    loss = record.get("train_loss")
    if loss is not None and not math.isfinite(loss):
        raise TrainingDiverged(f"training diverged at epoch {record['epoch']}: the training loss is {loss}")
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise TrainingDiverged(f"training diverged at epoch {record['epoch']}: {name} is not finite")


def _finish(
    run: Run, cfg: TrainConfig, model: nn.Module, data: Dataset, history: list[dict[str, Any]], summary: dict[str, Any]
) -> None:
    """Checkpoint, summary, curves, then DONE: in this order, so DONE means all of them exist."""
    from bnnctl.reporting.plots import plot_learning_curves

    run.save_checkpoint(
        {
            "model": model.state_dict(),
            "epoch": cfg.train.epochs,
            "input_shape": list(data.input_shape),
            "num_classes": data.num_classes,
        },
        cfg,
    )
    run.write_summary(summary)
    plot_learning_curves(history, run.metrics(), run.path / "curves.png", title=run.name)
    run.mark_done()


def train_into(
    run: Run,
    cfg: TrainConfig,
    overrides: list[str] | None = None,
    observer: TrainObserver | None = None,
    dataset: Dataset | None = None,
    resume: bool = False,
) -> dict[str, Any] | None:
    """``fit`` into a run folder; a failure leaves its traceback in ``error.txt`` and is raised again.

    Ctrl-C or SIGTERM leaves the folder incomplete (finished epochs and the
    state after the last one kept, no DONE, no error); ``resume=True`` continues it.
    """
    try:
        logger = make_logger(cfg, run)  # TensorBoard / MLflow beside the progress display
    except Exception:
        run.write_error(traceback.format_exc())
        raise
    try:
        return fit(
            cfg, run, Observers(observer, logger) if logger is not None else observer, overrides, dataset, resume
        )
    except Exception:
        run.write_error(traceback.format_exc())
        raise
    finally:
        if logger is not None:
            logger.close()
