"""Launchers: where the cells of a grid train, behind one interface.

- ``local``: worker processes on this machine, the cores split between them;
- ``ray``: tasks on a Ray cluster (``ray.init(address=...)``; no address starts
  a local cluster, which is what the tests use);
- ``submitit``: SLURM jobs (or local subprocesses with submitit's local executor).

The loop is shared: keep at most ``max_in_flight`` cells submitted, wait for
any to finish, report it, submit the next. A cell's own failure comes back as
an outcome (``run_cell`` never raises); a worker that dies (killed, out of
memory) is reported as that cell's failure. Either way the grid goes on.
On Ctrl-C the cells in flight are cancelled and their workers stopped.
"""

from __future__ import annotations

import os
import signal
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from bnnctl.config import LauncherConfig
from bnnctl.errors import ConfigError

if TYPE_CHECKING:
    from bnnctl.ablate import CellTask

OnStart = Callable[["CellTask"], None]
OnEnd = Callable[["CellTask", dict[str, Any]], None]


def available_cpus() -> int:
    """The cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def _uses_gpu(tasks: list["CellTask"]) -> bool:
    import torch

    return torch.cuda.is_available() and any(t.cfg.train.device == "auto" or t.cfg.train.device.startswith("cuda")
                                             for t in tasks)


def split_cores(cpus: int, workers: int, n_tasks: int, gpu: bool = False) -> tuple[int, int]:
    """(workers, torch threads per worker) for ``cpus`` cores; ``workers=0`` picks the count.

    One cell per GPU (more would only queue on it); on CPUs one worker per two
    cores, because two threads per cell used the cores best in our measurement
    (see README, "Launchers"). Never more workers than cells.
    """
    auto = 1 if gpu else max(1, cpus // 2)
    workers = min(workers or auto, max(n_tasks, 1))
    return workers, max(1, cpus // workers)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


class Launcher(ABC):
    """Submit cells, wait for any to finish, collect outcomes; subclasses say where cells run."""

    threads: int = 1          # torch threads each cell gets
    max_in_flight: int = 1    # cells submitted at once

    @abstractmethod
    def submit(self, task: "CellTask") -> Any: ...

    @abstractmethod
    def wait_any(self, handles: list[Any], timeout: float) -> None:
        """Block until at least one handle is finished or ``timeout`` seconds pass."""

    @abstractmethod
    def is_done(self, handle: Any) -> bool: ...

    @abstractmethod
    def outcome(self, handle: Any) -> dict[str, Any]:
        """The finished cell's outcome dict; a crashed worker becomes a 'failed' outcome."""

    def close(self, cancel: list[Any]) -> None:
        """Release resources; ``cancel`` holds the handles still in flight (after Ctrl-C or an error)."""

    def run_all(self, tasks: list["CellTask"], on_start: OnStart, on_end: OnEnd, poll_s: float = 1.0) -> None:
        queue = list(tasks)
        in_flight: list[tuple[Any, "CellTask"]] = []
        try:
            while queue or in_flight:
                while queue and len(in_flight) < self.max_in_flight:
                    task = queue.pop(0)
                    in_flight.append((self.submit(task), task))
                    on_start(task)
                self.wait_any([h for h, _ in in_flight], poll_s)
                still = []
                for handle, task in in_flight:
                    if self.is_done(handle):
                        on_end(task, self.outcome(handle))
                    else:
                        still.append((handle, task))
                in_flight = still
        except BaseException:
            self.close(cancel=[h for h, _ in in_flight])
            raise
        self.close(cancel=[])


# --- local worker processes ------------------------------------------------------

def _init_local_worker(threads: int) -> None:
    """Set up a worker before its first cell: die with the driver, leave Ctrl-C to it, tune the CPU."""
    try:  # Linux: a worker must not outlive a driver killed with -9, or a rerun would race it
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops the workers
    import torch

    from bnnctl.train import tune_cpu

    torch.set_num_threads(threads)
    tune_cpu()  # flush denormals at the start of the process, where it helps most


class LocalLauncher(Launcher):
    """A pool of worker processes (spawned: no fork of a threaded torch) on this machine."""

    def __init__(self, cfg: LauncherConfig, n_tasks: int, gpu: bool):
        self.workers, threads = split_cores(available_cpus(), cfg.workers, n_tasks, gpu)
        self.threads = cfg.threads or threads
        self.max_in_flight = self.workers
        self.pool = self._new_pool()

    def _new_pool(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_local_worker, initargs=(self.threads,))

    def submit(self, task):
        from bnnctl.ablate import run_cell

        future = self.pool.submit(run_cell, task)
        future.bnnctl_pool = self.pool  # which pool ran it: one dead worker breaks every future of its pool
        return future

    def wait_any(self, handles, timeout):
        from concurrent.futures import FIRST_COMPLETED, wait

        wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)

    def is_done(self, handle):
        return handle.done()

    def outcome(self, handle):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return handle.result()
        except BrokenProcessPool:
            if getattr(handle, "bnnctl_pool", None) is self.pool:
                self._replace_broken_pool()
            return {"status": "failed", "error": "a worker process died (killed, or out of memory); rerun the grid to retry"}
        except Exception as exc:  # noqa: BLE001 - e.g. the task could not be pickled
            return {"status": "failed", "error": _first_line(exc)}

    def _replace_broken_pool(self) -> None:
        """A dead worker breaks the whole pool: start a new one for the cells still to come."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new_pool()

    def close(self, cancel):
        if cancel:
            processes = list(getattr(self.pool, "_processes", {}).values())  # the executor exposes no kill
            self.pool.shutdown(wait=False, cancel_futures=True)
            for p in processes:
                p.terminate()
            for p in processes:
                p.join(timeout=10)
        else:
            self.pool.shutdown(wait=True)


# --- Ray -----------------------------------------------------------------------------

class RayLauncher(Launcher):
    """Cells as Ray tasks, each reserving ``cpus_per_task`` CPUs (default: its threads)."""

    def __init__(self, cfg: LauncherConfig, n_tasks: int):
        from bnnctl.ablate import run_cell

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
                raise ConfigError(f"cannot start or reach the Ray cluster ({cfg.address or 'local'}): {_first_line(exc)}") from None
            self.started_here = True
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        self.threads = cfg.threads or cfg.cpus_per_task or split_cores(cluster_cpus, cfg.workers, n_tasks)[1]
        cpus = cfg.cpus_per_task or self.threads
        self.max_in_flight = cfg.workers or max(1, cluster_cpus // cpus)
        self.remote = ray.remote(num_cpus=cpus, num_gpus=cfg.gpus_per_task, max_retries=0)(run_cell)

    def submit(self, task):
        return self.remote.remote(task)

    def wait_any(self, handles, timeout):
        self.ray.wait(handles, num_returns=1, timeout=timeout)

    def is_done(self, handle):
        ready, _ = self.ray.wait([handle], num_returns=1, timeout=0)
        return bool(ready)

    def outcome(self, handle):
        try:
            return self.ray.get(handle)
        except Exception as exc:  # noqa: BLE001 - RayTaskError, WorkerCrashedError, ...
            return {"status": "failed", "error": f"Ray: {_first_line(exc)}"}

    def close(self, cancel):
        for handle in cancel:
            try:
                self.ray.cancel(handle, force=True)
            except Exception:  # noqa: BLE001 - already finished
                pass
        if self.started_here:
            self.ray.shutdown()


# --- submitit (SLURM) ----------------------------------------------------------------

class SubmititLauncher(Launcher):
    """One SLURM job per cell x seed via submitit; ``cluster=local`` runs them as local subprocesses."""

    def __init__(self, cfg: LauncherConfig, n_tasks: int, grid_dir: Path):
        try:
            import submitit
        except ImportError:
            raise ConfigError("launcher=submitit needs submitit: pip install 'bnnctl[cluster]' (or pip install submitit)") from None
        folder = Path(cfg.folder).expanduser() if cfg.folder else grid_dir / "submitit"
        self.executor = submitit.AutoExecutor(folder=folder / "%j", cluster=cfg.cluster)
        params: dict[str, Any] = dict(timeout_min=cfg.timeout_min, cpus_per_task=cfg.cpus_per_task or 1,
                                      mem_gb=cfg.mem_gb, name=f"bnnctl-{grid_dir.name}")
        if cfg.gpus_per_task:
            params["gpus_per_node"] = cfg.gpus_per_task
        if cfg.partition:
            params["slurm_partition"] = cfg.partition
        self.executor.update_parameters(**params)
        self.threads = cfg.threads or cfg.cpus_per_task or 1
        on_slurm = self.executor.cluster == "slurm"
        self.max_in_flight = cfg.workers or (n_tasks if on_slurm else max(1, available_cpus() // self.threads))

    def submit(self, task):
        from bnnctl.ablate import run_cell

        return self.executor.submit(run_cell, task)

    def wait_any(self, handles, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not any(h.done() for h in handles):
            time.sleep(min(0.2, timeout))

    def is_done(self, handle):
        return handle.done()

    def outcome(self, handle):
        try:
            return handle.result()
        except Exception as exc:  # noqa: BLE001 - a failed or cancelled job
            return {"status": "failed", "error": f"job {handle.job_id}: {_first_line(exc)}"}

    def close(self, cancel):
        for handle in cancel:
            try:
                handle.cancel(check=False)
            except Exception:  # noqa: BLE001 - already finished
                pass


def make_launcher(cfg: LauncherConfig, grid_dir: Path, tasks: list["CellTask"]) -> Launcher:
    if cfg.name == "local":
        return LocalLauncher(cfg, len(tasks), _uses_gpu(tasks))
    if cfg.name == "ray":
        return RayLauncher(cfg, len(tasks))
    if cfg.name == "submitit":
        return SubmititLauncher(cfg, len(tasks), grid_dir)
    raise ConfigError(f"unknown launcher {cfg.name!r} (choose from: local, ray, submitit)")
