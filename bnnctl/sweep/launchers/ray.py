"""``launcher=ray``: tasks on a Ray cluster (no address starts a local one).

(``import ray`` below is the Ray package: imports are absolute, so this module's own name never shadows it.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from bnnctl.config.schema import LauncherConfig
from bnnctl.errors import ConfigError
from bnnctl.sweep.launchers.base import Launcher, TaskResult, available_cpus, first_line, split_cores


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
            _start_ray(ray, cfg)
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


def _start_ray(ray: Any, cfg: LauncherConfig) -> None:
    """Connect to ``cfg.address``, or start a local Ray on this process's cores; a failure is one ConfigError line."""
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


def _ray_call(fn: Callable[[Any], Any], task: Any) -> Any:
    return fn(task)
