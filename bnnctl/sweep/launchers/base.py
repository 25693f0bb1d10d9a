"""The launcher interface and the loop every engine shares.

Keep at most ``max_in_flight`` tasks submitted, wait for any to finish, yield
it, submit the next. A task that raises, or a worker that dies (killed, out of
memory), becomes a failed ``TaskResult``: the others go on. On Ctrl-C, SIGTERM
(or any error in the caller) the tasks in flight are cancelled and their
workers stopped. Subclasses say only where a task runs.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterator, TypeVar

if TYPE_CHECKING:
    from pathlib import Path

    from bnnctl.config.schema import LauncherConfig

T = TypeVar("T")


@dataclass(frozen=True)
class TaskResult(Generic[T]):
    """What came back from one task: its return value, or why there is none."""

    value: T | None = None
    error: str | None = None  # one line: the exception, or how the worker died

    @property
    def ok(self) -> bool:
        return self.error is None


def available_cpus() -> int:
    """The cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def split_cores(cpus: int, workers: int, n_tasks: int, gpu: bool = False) -> tuple[int, int]:
    """(workers, torch threads per worker) for ``cpus`` cores; ``workers=0`` picks the count.

    One task per GPU (more would only queue on it); on CPUs one worker per two
    cores, because two threads per training run used the cores best in our
    measurement (see README, "Launchers"). Never more workers than tasks.
    """
    auto = 1 if gpu else max(1, cpus // 2)
    workers = min(workers or auto, max(n_tasks, 1))
    return workers, max(1, cpus // workers)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


@dataclass(frozen=True)
class ThreadedCall:
    """``fn(task)`` with ``threads`` torch threads, in whichever process the engine chose (picklable).

    ``checkpoint`` is submitit's hook: on preemption or a time-out, submitit
    calls it and requeues what it returns, here the same call again. That is
    right for tasks that resume themselves (a grid cell continues from its
    last finished epoch), which is what launchers are given.
    """

    fn: Callable[[Any], Any]
    threads: int

    def __call__(self, task: Any) -> Any:
        if self.threads:
            from bnnctl.kernels.threads import use_threads

            use_threads(self.threads)
        return self.fn(task)

    def checkpoint(self, task: Any) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, task)


class Launcher(ABC):
    """Submit tasks, wait for any to finish, collect results; subclasses say where tasks run."""

    threads: int = 1  # torch threads each task gets
    max_in_flight: int = 1  # tasks submitted at once
    poll_s: float = 1.0

    def __init__(self, cfg: LauncherConfig, n_tasks: int, gpu: bool = False, log_dir: Path | None = None) -> None:
        """Every engine is built alike (``registry.make_launcher``): sized for ``n_tasks`` from ``cfg``."""

    @abstractmethod
    def submit(self, fn: Callable[[Any], Any], task: Any) -> Any: ...

    @abstractmethod
    def wait_any(self, handles: list[Any], timeout: float) -> None:
        """Block until at least one handle is finished or ``timeout`` seconds pass."""

    @abstractmethod
    def is_done(self, handle: Any) -> bool: ...

    @abstractmethod
    def result(self, handle: Any) -> TaskResult:
        """The finished task's result; a raised exception or a crashed worker becomes an error."""

    def close(self, cancel: list[Any]) -> None:
        """Release resources; ``cancel`` holds the handles still in flight (after Ctrl-C or an error)."""

    def map(
        self,
        fn: Callable[[T], Any],
        tasks: list[T],
        on_start: Callable[[T], None] = lambda task: None,
        on_poll: Callable[[list[T]], None] = lambda running: None,
    ) -> Iterator[tuple[T, TaskResult]]:
        """Run ``fn`` over ``tasks``; yield (task, result) in the order they finish.

        ``on_poll(running)`` is called after every wait (each ``poll_s``) with the tasks in flight.
        """
        job = ThreadedCall(fn, self.threads)
        queue = list(tasks)
        in_flight: list[tuple[Any, T]] = []
        try:
            while queue or in_flight:
                while queue and len(in_flight) < self.max_in_flight:
                    task = queue.pop(0)
                    on_start(task)
                    in_flight.append((self.submit(job, task), task))
                self.wait_any([h for h, _ in in_flight], self.poll_s)
                on_poll([t for _, t in in_flight])
                still = []
                for handle, task in in_flight:
                    if self.is_done(handle):
                        yield task, self.result(handle)
                    else:
                        still.append((handle, task))
                in_flight = still
        except BaseException:
            self.close(cancel=[h for h, _ in in_flight])
            raise
        self.close(cancel=[])
