"""Launchers: run any picklable function over tasks, somewhere, behind one interface.

``make_launcher(cfg, n_tasks).map(fn, tasks)`` yields ``(task, TaskResult)``
as tasks finish, whatever the engine:

- ``inline``: in this process, one after the other (tests, debugging, pdb);
- ``local``: worker processes on this machine, the cores split between them;
- ``ray``: tasks on a Ray cluster (no address starts a local one);
- ``submitit``: SLURM jobs (or local subprocesses with submitit's local executor).

The loop is shared: keep at most ``max_in_flight`` tasks submitted, wait for
any to finish, yield it, submit the next. A task that raises, or a worker that
dies (killed, out of memory), becomes a failed ``TaskResult``: the others go
on. On Ctrl-C, SIGTERM (or any error in the caller) the tasks in flight are
cancelled and their workers stopped. Launchers know nothing of grids or training.
"""

from __future__ import annotations

import os
import signal
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, TypeVar

from bnnctl.config.sweep import LauncherConfig
from bnnctl.errors import ConfigError

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
            from bnnctl.threads import use_threads

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


# --- in this process ---------------------------------------------------------------------


class InlineLauncher(Launcher):
    """Each task in the calling process, one at a time: a debugger and a profiler see it all."""

    def __init__(self, cfg: LauncherConfig, n_tasks: int, gpu: bool = False, log_dir: Path | None = None):
        self.threads = cfg.threads
        self.max_in_flight = 1
        self.poll_s = 0.0

    def submit(self, fn, task):
        try:
            return TaskResult(value=fn(task))
        except Exception as exc:  # noqa: BLE001 - as a worker would report it
            return TaskResult(error=first_line(exc))

    def wait_any(self, handles, timeout):
        return None

    def is_done(self, handle):
        return True

    def result(self, handle):
        return handle


# --- local worker processes ------------------------------------------------------


def _init_local_worker(threads: int) -> None:
    """Set up a worker before its first task: die with the driver, leave Ctrl-C and SIGTERM to it, tune the CPU.

    SLURM sends SIGTERM to every process of the job: the driver then stops the
    workers itself (SIGKILL), so no worker's death is reported as a failed cell.
    """
    try:  # Linux: a worker must not outlive a driver killed with -9, or a rerun would race it
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops the workers
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from bnnctl.threads import use_threads
    from bnnctl.training.runtime import tune_cpu

    use_threads(threads)
    tune_cpu()  # flush denormals at the start of the process, where it helps most


class LocalLauncher(Launcher):
    """A pool of worker processes (spawned: no fork of a threaded torch) on this machine."""

    def __init__(self, cfg: LauncherConfig, n_tasks: int, gpu: bool = False, log_dir: Path | None = None):
        self.workers, threads = split_cores(available_cpus(), cfg.workers, n_tasks, gpu)
        self.threads = cfg.threads or threads
        self.max_in_flight = self.workers
        self.poll_s = cfg.poll_s
        self.pool = self._new_pool()

    def _new_pool(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_local_worker,
            initargs=(self.threads,),
        )

    def submit(self, fn, task):
        future = self.pool.submit(fn, task)
        future.bnnctl_pool = self.pool  # which pool ran it: one dead worker breaks every future of its pool
        return future

    def wait_any(self, handles, timeout):
        from concurrent.futures import FIRST_COMPLETED, wait

        wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)

    def is_done(self, handle):
        return handle.done()

    def result(self, handle):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return TaskResult(value=handle.result())
        except BrokenProcessPool:
            if getattr(handle, "bnnctl_pool", None) is self.pool:
                self._replace_broken_pool()
            return TaskResult(error="a worker process died (killed, or out of memory); rerun to retry")
        except Exception as exc:  # noqa: BLE001 - the task raised, or could not be pickled
            return TaskResult(error=first_line(exc))

    def _replace_broken_pool(self) -> None:
        """A dead worker breaks the whole pool: start a new one for the tasks still to come."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new_pool()

    def close(self, cancel):
        if cancel:
            processes = list(getattr(self.pool, "_processes", {}).values())  # the executor exposes no kill
            # shutdown() forgets the manager thread, so hold it: it must finish (and close its wake-up
            # pipe) before Python's exit hook wakes it, or that hook writes to the closed pipe and prints
            # "OSError: Bad file descriptor" after the one-line interrupt message (CPython 3.11 races there).
            manager = getattr(self.pool, "_executor_manager_thread", None)
            self.pool.shutdown(wait=False, cancel_futures=True)
            for p in processes:
                p.kill()  # they ignore SIGTERM; the epoch they were in is lost, the ones before are saved
            for p in processes:
                p.join(timeout=10)
            if manager is not None:
                manager.join(timeout=10)
        else:
            self.pool.shutdown(wait=True)


# --- Ray -----------------------------------------------------------------------------


class RayLauncher(Launcher):
    """Tasks as Ray tasks, each reserving ``cpus_per_task`` CPUs (default: its threads)."""

    def __init__(self, cfg: LauncherConfig, n_tasks: int, gpu: bool = False, log_dir: Path | None = None):
        try:
            import ray
        except ImportError:
            raise ConfigError("launcher=ray needs Ray: pip install 'bnnctl[cluster]' (or pip install ray)") from None
        self.ray = ray
        self.started_here = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            if cfg.address:
                kwargs["address"] = cfg.address
            else:
                kwargs["num_cpus"] = available_cpus()
            try:
                ray.init(**kwargs)
            except Exception as exc:  # noqa: BLE001 - connection errors come in many types
                raise ConfigError(
                    f"cannot start or reach the Ray cluster ({cfg.address or 'local'}): {first_line(exc)}"
                ) from None
            self.started_here = True
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        self.threads = cfg.threads or cfg.cpus_per_task or split_cores(cluster_cpus, cfg.workers, n_tasks)[1]
        cpus = cfg.cpus_per_task or self.threads
        self.max_in_flight = cfg.workers or max(1, cluster_cpus // cpus)
        self.poll_s = cfg.poll_s
        self.remote = ray.remote(num_cpus=cpus, num_gpus=cfg.gpus_per_task, max_retries=0)(_ray_call)

    def submit(self, fn, task):
        return self.remote.remote(fn, task)

    def wait_any(self, handles, timeout):
        self.ray.wait(handles, num_returns=1, timeout=timeout)

    def is_done(self, handle):
        ready, _ = self.ray.wait([handle], num_returns=1, timeout=0)
        return bool(ready)

    def result(self, handle):
        try:
            return TaskResult(value=self.ray.get(handle))
        except Exception as exc:  # noqa: BLE001 - RayTaskError, WorkerCrashedError, ...
            cause = getattr(exc, "cause", None) or exc
            return TaskResult(error=first_line(cause) if cause is not exc else f"Ray: {first_line(exc)}")

    def close(self, cancel):
        for handle in cancel:
            try:
                self.ray.cancel(handle, force=True)
            except Exception:  # noqa: BLE001 - already finished
                pass
        if self.started_here:
            self.ray.shutdown()


def _ray_call(fn: Callable[[Any], Any], task: Any) -> Any:
    return fn(task)


# --- submitit (SLURM) ----------------------------------------------------------------


class SubmititLauncher(Launcher):
    """One SLURM job per task via submitit; ``cluster=local`` runs them as local subprocesses."""

    def __init__(self, cfg: LauncherConfig, n_tasks: int, gpu: bool = False, log_dir: Path | None = None):
        try:
            import submitit
        except ImportError:
            raise ConfigError(
                "launcher=submitit needs submitit: pip install 'bnnctl[cluster]' (or pip install submitit)"
            ) from None
        folder = Path(cfg.folder).expanduser() if cfg.folder else (log_dir or Path(".")) / "submitit"
        cluster = cfg.cluster.value if cfg.cluster is not None else None
        self.executor = submitit.AutoExecutor(folder=folder / "%j", cluster=cluster)
        params: dict[str, Any] = dict(
            timeout_min=cfg.timeout_min,
            cpus_per_task=cfg.cpus_per_task or 1,
            mem_gb=cfg.mem_gb,
            name=f"bnnctl-{(log_dir or folder).name}",
        )
        if cfg.gpus_per_task:
            params["gpus_per_node"] = cfg.gpus_per_task
        if cfg.partition:
            params["slurm_partition"] = cfg.partition
        self.executor.update_parameters(**params)
        self.threads = cfg.threads or cfg.cpus_per_task or 1
        on_slurm = self.executor.cluster == "slurm"
        self.max_in_flight = cfg.workers or (n_tasks if on_slurm else max(1, available_cpus() // self.threads))
        self.poll_s = cfg.poll_s

    def submit(self, fn, task):
        return self.executor.submit(fn, task)

    def wait_any(self, handles, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not any(h.done() for h in handles):
            time.sleep(min(0.2, timeout))

    def is_done(self, handle):
        return handle.done()

    def result(self, handle):
        try:
            return TaskResult(value=handle.result())
        except Exception as exc:  # noqa: BLE001 - a failed or cancelled job
            return TaskResult(error=f"job {handle.job_id}: {first_line(exc)}")

    def close(self, cancel):
        for handle in cancel:
            try:
                handle.cancel(check=False)
            except Exception:  # noqa: BLE001 - already finished
                pass


LAUNCHERS: dict[str, type[Launcher]] = {
    "inline": InlineLauncher,
    "local": LocalLauncher,
    "ray": RayLauncher,
    "submitit": SubmititLauncher,
}


def launcher_class(name: str) -> type[Launcher]:
    """The registered launcher ``name``; an unknown name lists the known ones."""
    try:
        return LAUNCHERS[name]
    except KeyError:
        raise ConfigError(f"unknown launcher.name {name!r} (known: {', '.join(LAUNCHERS)})") from None


def make_launcher(cfg: LauncherConfig, n_tasks: int, gpu: bool = False, log_dir: Path | None = None) -> Launcher:
    """The launcher ``cfg.name`` names, sized for ``n_tasks`` (``gpu``: the tasks train on a GPU)."""
    return launcher_class(cfg.name)(cfg, n_tasks, gpu, log_dir)
