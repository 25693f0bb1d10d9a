"""``launcher=inline``: each task in the calling process, one at a time (tests, debugging, pdb)."""

from __future__ import annotations

from pathlib import Path

from bnnctl.config.schema import LauncherConfig
from bnnctl.sweep.launchers.base import Launcher, TaskResult, first_line


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
