"""Data-parallel training's pieces: DDP around the model, each rank's slice of a batch, sums over ranks.

``training.fit`` trains on every rank of a DDP world with these (and
``launch`` to join or spawn the world), rank 0 writing the run folder.

``train.batch_size`` is the global batch. Every rank draws the same batch
order (the same seeded generator) and takes its own 1/W slice of each batch
(``shard``), so together the ranks see every example of an epoch once and take
the same optimizer steps as one process would. DDP averages the gradients of
the slices (through ``distributed.hooks``, compressed or not), and the mean of
W slice means is the batch mean: with ``dist.compress=none`` a world of W
trains the weights a world of 1 does, up to float rounding (tested). Batch
norm is the exception: it normalizes over each rank's slice (DDP's default;
CPU tensors have no SyncBatchNorm).

Model initialisation is rank 0's (DDP broadcasts it); the random streams that
act during training (dropout, stochastic sign, augmentation) differ per rank,
as each rank's slice would draw its own masks. Rank 0 evaluates, logs and
writes the folder; the other ranks train only. Communication counters are
rank 0's (every rank sends the same amount).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Iterator

import torch
import torch.distributed as dist
import torch.nn as nn

from bnnctl.config.schema import TrainConfig
from bnnctl.config.validate import check_train
from bnnctl.distributed.hooks import HookState, compression_hook
from bnnctl.distributed.launch import Rank, torchrun_rank
from bnnctl.errors import BnnctlError, ConfigError

RANK_SEED_STRIDE = 1_000_003  # rank r's training streams start at seed + r * stride (rank 0: the run's own)


class DistributedError(BnnctlError):
    """A rank failed or vanished; the message says which and why."""


def needs_process_group(cfg: TrainConfig) -> bool:
    """DDP is used when there are several ranks, when torchrun started us, or when gradients are compressed."""
    return cfg.dist.world_size > 1 or cfg.dist.compress.value != "none" or torchrun_rank() is not None


def with_launched_world(cfg: TrainConfig) -> TrainConfig:
    """Under torchrun, ``dist.world_size`` is torchrun's (so the run's config and id say how it trained)."""
    launched = torchrun_rank()
    if launched is None or cfg.dist.world_size == launched.world_size:
        return cfg
    if cfg.dist.world_size != 1:
        raise ConfigError(
            f"dist.world_size={cfg.dist.world_size} but torchrun started {launched.world_size} ranks "
            "(leave dist.world_size out under torchrun)"
        )
    world = dataclasses.replace(cfg.dist, world_size=launched.world_size)
    return check_train(dataclasses.replace(cfg, dist=world))  # the config's own checks, at torchrun's world size


def wrap_for_data_parallel(model: nn.Module, device: torch.device, method: str, beta: int):
    """(DDP around ``model``, the hook's counters): every gradient bucket goes through ``compression_hook``."""
    with warnings.catch_warnings():
        # torch 2.14 renames it forward_sync_buffers, which older releases lack; its own warning says to keep
        # broadcast_buffers=False for rank-local buffers until a replacement for the init sync exists.
        warnings.filterwarnings("ignore", message="`broadcast_buffers` is deprecated", category=FutureWarning)
        ddp = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            gradient_as_bucket_view=True,  # gradients live in the buckets the hook reads: no copy in, no copy out
            # Batch-norm statistics stay per rank: rank 0 evaluates with its own, which broadcasting rank 0's
            # to the others every forward (DDP's default) would leave unchanged, at one more collective per step.
            broadcast_buffers=False,
        )
    state = HookState(method, beta)
    ddp.register_comm_hook(state, compression_hook)
    return ddp, state


def shard(
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]], rank: Rank
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Rank r's slice [r B/W, (r+1) B/W) of each global batch of B examples."""
    for x, y in batches:
        part = len(y) // rank.world_size
        lo = rank.rank * part
        yield x[lo : lo + part], y[lo : lo + part]


def sum_over_ranks(loss_sum: torch.Tensor, correct: torch.Tensor, seen: int) -> tuple[float, int, int]:
    """(loss sum, correct, examples) of the epoch over all ranks: what the epoch's record reports."""
    n = torch.tensor(float(seen), dtype=torch.float64, device=loss_sum.device)
    totals = torch.stack([loss_sum.double(), correct.double(), n])  # on the training device: gloo CPU, NCCL CUDA
    dist.all_reduce(totals)
    loss, right, n = totals.tolist()
    return loss, int(right), int(n)


def communication_record(counters: dict[str, float], steps: int) -> dict[str, float]:
    """An epoch's communication as metrics: bytes per step (sent, wire, float32's), the ratio, seconds."""
    steps = max(steps, 1)
    sent = counters["comm_bytes"] / steps
    return {
        "comm_bytes_per_step": sent,
        "comm_wire_bytes_per_step": counters["comm_wire_bytes"] / steps,
        "comm_float32_bytes_per_step": counters["comm_float32_bytes"] / steps,
        "compression_ratio": counters["comm_float32_bytes"] / steps / sent if sent else float("nan"),
        "comm_s": counters["comm_s"],
    }


def communication_summary(history: list[dict[str, Any]], rank: Rank, cfg: TrainConfig) -> dict[str, Any]:
    """The summary's distributed keys: the world, the method, and the last epoch's communication."""
    last = history[-1]
    summary: dict[str, Any] = {"world_size": rank.world_size, "compress": cfg.dist.compress.value}
    if cfg.dist.compress.value == "hadamard":
        summary["compress_beta"] = cfg.dist.beta
    for key in ("comm_bytes_per_step", "comm_wire_bytes_per_step", "comm_float32_bytes_per_step", "compression_ratio"):
        summary[key] = last.get(key)
    steady = [r["comm_s"] for r in history[1:]] or [history[0]["comm_s"]]
    summary["comm_s_per_epoch"] = sorted(steady)[len(steady) // 2]
    return summary


def seed_this_rank(seed: int, rank: Rank) -> None:
    """Rank r > 0 draws its own dropout masks and stochastic signs (called after the model is built)."""
    if rank.rank:
        torch.manual_seed(seed + RANK_SEED_STRIDE * rank.rank)


def rank_device(device: torch.device, rank: Rank) -> torch.device:
    """One GPU per local rank; CPU ranks share the CPU."""
    if device.type != "cuda":
        return device
    return torch.device("cuda", rank.local_rank % torch.cuda.device_count())


def threads_per_rank(cfg: TrainConfig, world_size: int) -> int:
    """The cores split between the ranks on this machine (``train.threads``, else torch's count)."""
    return max(1, (cfg.train.threads or torch.get_num_threads()) // world_size)
