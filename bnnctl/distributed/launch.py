"""Process groups for data-parallel training: joined under torchrun, or spawned here for a local world.

Two ways a run gets its ranks:

* **torchrun** (or any launcher that sets ``RANK``, ``WORLD_SIZE``,
  ``MASTER_ADDR`` and ``MASTER_PORT``): this process is one rank of a world
  torchrun made; ``torchrun_rank()`` reads which, ``join_from_environment``
  joins it.
* **local**: ``bnnctl train dist.world_size=N`` is rank 0 itself and spawns
  ranks 1..N-1 (``LocalWorld``). Rank 0 serves the rendezvous store on a port
  the kernel picks (no fixed port to collide on) and passes the port to the
  children, so no environment variables are involved.

A child that fails puts its error on a queue before it exits, so that rank 0,
whose next collective then fails too, can say what went wrong first (``cause``).
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import queue
import sys
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist

from bnnctl.errors import BnnctlError

TIMEOUT = datetime.timedelta(minutes=30)  # a rank that waits longer than this for the others gives up


@dataclass(frozen=True)
class Rank:
    """This process's place in the world: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

    rank: int
    world_size: int
    local_rank: int
    torchrun: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the rank that evaluates and writes the run folder."""
        return self.rank == 0


def torchrun_rank() -> Rank | None:
    """The rank torchrun (or SLURM via torchrun) gave this process, or None when not launched so."""
    env = os.environ
    if not all(k in env for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")):
        return None
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        local = int(env.get("LOCAL_RANK", rank))
    except ValueError:
        raise BnnctlError(f"RANK={env['RANK']!r} and WORLD_SIZE={env['WORLD_SIZE']!r} must be integers") from None
    return Rank(rank, world, local, torchrun=True)


def backend_for(requested: str, device: torch.device) -> str:
    """``auto``: NCCL for CUDA tensors, gloo for CPU ones."""
    if requested == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    return requested


_excepthooks: list[Any] = []  # sys.excepthook before each join: init_process_group wraps it and never unwraps


def _init(backend: str, **kwargs: Any) -> None:
    _excepthooks.append(sys.excepthook)
    dist.init_process_group(backend, timeout=TIMEOUT, **kwargs)


def join_from_environment(backend: str) -> None:
    """Join torchrun's world (``env://`` rendezvous)."""
    _init(backend, init_method="env://")


def join_local(rank: int, world_size: int, port: int, backend: str, store: Any = None) -> None:
    """Join a world whose rank 0 serves the store on 127.0.0.1:``port`` (rank 0 passes its own ``store``)."""
    if store is None:
        store = dist.TCPStore("127.0.0.1", port, world_size, is_master=False, timeout=TIMEOUT)
    _init(backend, store=store, rank=rank, world_size=world_size)


def join_alone(backend: str) -> None:
    """A world of one (compression at world size 1: DDP and its hook still run, nothing is sent)."""
    _init(backend, store=dist.HashStore(), rank=0, world_size=1)


def leave() -> None:
    """Leave the world and give sys.excepthook back (torch prefixes every traceback with the rank meanwhile)."""
    if dist.is_initialized():
        dist.destroy_process_group()
    if _excepthooks:
        sys.excepthook = _excepthooks.pop()


def _child_main(target: Callable[..., None], rank: int, world_size: int, port: int, backend: str, args: tuple,
                errors: Any) -> None:  # fmt: skip
    """A spawned rank: join, run ``target(rank, world_size, *args)``, leave; an error goes on the queue first."""
    try:
        join_local(rank, world_size, port, backend)
        target(Rank(rank, world_size, rank), *args)
    except BaseException as exc:  # noqa: BLE001 - whatever stopped this rank, rank 0 should hear it
        errors.put((rank, type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else ""))
        raise SystemExit(1) from None
    finally:
        leave()


class LocalWorld:
    """Rank 0 in this process and ranks 1..N-1 spawned beside it, for ``with``.

    ``__enter__`` serves the store, starts the children and joins the world;
    ``__exit__`` leaves it, waits a little for children that finished, and
    stops the rest (a rank 0 that failed leaves them blocked in a collective).
    ``target(rank, *args)`` is what each child runs; it must be picklable.
    """

    def __init__(self, world_size: int, backend: str, target: Callable[..., None], args: tuple = ()):
        self.world_size, self.backend, self.target, self.args = world_size, backend, target, args
        self.context = multiprocessing.get_context("spawn")  # no fork of a threaded torch
        self.errors = self.context.Queue()
        self.children: list[Any] = []

    def __enter__(self) -> Rank:
        store = dist.TCPStore("127.0.0.1", 0, self.world_size, is_master=True, timeout=TIMEOUT,
                              wait_for_workers=False)  # fmt: skip
        for rank in range(1, self.world_size):
            child = self.context.Process(
                target=_child_main,
                args=(self.target, rank, self.world_size, store.port, self.backend, self.args, self.errors),
                name=f"bnnctl-rank-{rank}",
                daemon=False,  # a rank may compile, which starts worker processes of its own
            )
            child.start()
            self.children.append(child)
        join_local(0, self.world_size, store.port, self.backend, store=store)
        return Rank(0, self.world_size, 0)

    def cause(self, wait_s: float = 5.0) -> str | None:
        """The first error a child reported (waiting up to ``wait_s`` for it), or how a child died."""
        try:
            rank, kind, message = self.errors.get(timeout=wait_s)
            return f"rank {rank} failed: {kind}: {message}".rstrip(": ")
        except queue.Empty:
            dead = [c for c in self.children if c.exitcode not in (None, 0)]
            return f"rank {self.children.index(dead[0]) + 1} died (exit code {dead[0].exitcode})" if dead else None

    def __exit__(self, kind, exc, tb) -> None:
        leave()
        for child in self.children:
            child.join(timeout=30 if kind is None else 1)
        for child in self.children:
            if child.is_alive():
                child.kill()
                child.join()
