"""``launcher=local``: a pool of worker processes on this machine, the cores split between them."""

from __future__ import annotations

import signal
from pathlib import Path

from bnnctl.config.schema import LauncherConfig
from bnnctl.sweep.launchers.base import Launcher, TaskResult, available_cpus, first_line, split_cores


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
    from bnnctl.process import own_process_settings

    own_process_settings(threads)  # a worker owns its process: set once, at its start, where it helps most


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
            self._kill_workers()
        else:
            self.pool.shutdown(wait=True)

    def _kill_workers(self) -> None:
        """Stop every worker now (they ignore SIGTERM); the epoch each was in is lost, the ones before are saved."""
        processes = list(getattr(self.pool, "_processes", {}).values())  # the executor exposes no kill
        # shutdown() forgets the manager thread, so hold it: it must finish (and close its wake-up
        # pipe) before Python's exit hook wakes it, or that hook writes to the closed pipe and prints
        # "OSError: Bad file descriptor" after the one-line interrupt message (CPython 3.11 races there).
        manager = getattr(self.pool, "_executor_manager_thread", None)
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            p.kill()
        for p in processes:
            p.join(timeout=10)
        if manager is not None:
            manager.join(timeout=10)
