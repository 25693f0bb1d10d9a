"""DDP communication hooks that send compressed gradients (``compress``) and count what they send.

``torch.nn.parallel.DistributedDataParallel`` hands a hook each bucket of
flat gradients once they are ready; the hook returns a future of the
averaged bucket. Uncompressed, that is one all-reduce. Compressed, each rank
compresses its bucket (with its own residual: error feedback), all ranks
all-gather the messages (a 1-bit message cannot be summed on the wire), and
each rank decodes every message and averages them, so every rank applies the
same update.

Bytes are what this rank's messages hold (payload plus scales), per step;
``wire_bytes`` what a ring algorithm makes each rank send for them: an
all-reduce of n floats sends 2 (W-1)/W x 4n bytes per rank, an all-gather of
m-byte messages (W-1) x m. Time is the wall time spent inside the hook
(compression, communication, decoding); the hook waits for its collective, so
communication does not overlap the rest of the backward pass.

Residuals are kept per bucket, keyed by the bucket's parameters: DDP rebuilds
its buckets once, after the first step, and a residual must never be added to
another tensor's gradient.
"""

import time  # no `from __future__ import annotations`: DDP checks the hook's annotation at run time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from bnnctl.distributed.compress import Message, compress


@dataclass
class HookState:
    """Per rank: the method, the residual of each bucket, and the counters since the last ``take_counters``."""

    method: str = "none"
    beta: int = 64
    residuals: dict[tuple, torch.Tensor] = field(default_factory=dict)
    bytes_sent: int = 0
    float32_bytes: int = 0
    wire_bytes: float = 0.0
    seconds: float = 0.0

    def take_counters(self) -> dict[str, float]:
        """The bytes and seconds since the last call (what a metrics record logs), then zero."""
        counters = {
            "comm_bytes": self.bytes_sent,
            "comm_float32_bytes": self.float32_bytes,
            "comm_wire_bytes": self.wire_bytes,
            "comm_s": self.seconds,
        }
        self.bytes_sent, self.float32_bytes, self.wire_bytes, self.seconds = 0, 0, 0.0, 0.0
        return counters


def _gather(tensor: torch.Tensor, world: int) -> list[torch.Tensor]:
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor.contiguous())
    return parts


def compressed_mean(state: HookState, key: tuple, flat: torch.Tensor) -> torch.Tensor:
    """The mean over ranks of every rank's decoded message for this bucket; updates the residual and counters.

    ``method=none`` reduces ``flat`` in place (as DDP's own all-reduce hook does).
    """
    t0 = time.perf_counter()
    world = dist.get_world_size()
    message, residual = compress(flat, state.residuals.get(key), state.method, state.beta)
    if residual is not None:
        state.residuals[key] = residual
    state.bytes_sent += message.nbytes
    state.float32_bytes += 4 * flat.numel()
    if state.method == "none":
        state.wire_bytes += 2 * (world - 1) / world * message.nbytes
        dist.all_reduce(flat)
        mean = flat.div_(world)
    else:  # gathered, then decoded and summed in float32 (bits cannot be summed; gloo does not reduce bf16)
        state.wire_bytes += (world - 1) * message.nbytes
        payloads = _gather(message.payload, world) if world > 1 else [message.payload]
        scales: Sequence[torch.Tensor | None]
        if message.scales is None:
            scales = [None] * world
        else:
            scales = _gather(message.scales, world) if world > 1 else [message.scales]
        mean = flat.zero_()  # the gradient is in the message and the residual now: its buffer takes the mean
        for payload, scale in zip(payloads, scales, strict=True):  # rank order: every rank sums alike
            Message(state.method, message.n, payload, scale, message.beta).add_to(mean)
        if world > 1:
            mean.div_(world)
    state.seconds += time.perf_counter() - t0
    return mean


def compression_hook(state: HookState, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """A DDP communication hook: ``ddp.register_comm_hook(HookState(method), compression_hook)``."""
    key = tuple(p.data_ptr() for p in bucket.parameters())  # which tensors this bucket holds
    mean = compressed_mean(state, key, bucket.buffer())
    future: torch.futures.Future = torch.futures.Future()
    future.set_result(mean)  # the bucket's own buffer: DDP copies nothing back
    return future
