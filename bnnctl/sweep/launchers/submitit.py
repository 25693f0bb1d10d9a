"""``launcher=submitit``: one SLURM job per task (or local subprocesses with submitit's local executor).

(``import submitit`` below is the submitit package: imports are absolute, so this module's own name never shadows it.)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bnnctl.config.schema import LauncherConfig
from bnnctl.errors import ConfigError
from bnnctl.sweep.launchers.base import Launcher, TaskResult, available_cpus, first_line


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
        self.executor.update_parameters(**_job_parameters(cfg, f"bnnctl-{(log_dir or folder).name}"))
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


def _job_parameters(cfg: LauncherConfig, name: str) -> dict[str, Any]:
    """What each job asks the scheduler for; partition and GPUs only when the config names them."""
    params: dict[str, Any] = dict(
        timeout_min=cfg.timeout_min,
        cpus_per_task=cfg.cpus_per_task or 1,
        mem_gb=cfg.mem_gb,
        name=name,
    )
    if cfg.gpus_per_task:
        params["gpus_per_node"] = cfg.gpus_per_task
    if cfg.partition:
        params["slurm_partition"] = cfg.partition
    return params
