"""Launchers: run any picklable function over tasks, somewhere, behind one interface.

``make_launcher(cfg, n_tasks).map(fn, tasks)`` yields ``(task, TaskResult)``
as tasks finish, whatever the engine:

- ``inline``: in this process, one after the other (tests, debugging, pdb);
- ``local``: worker processes on this machine, the cores split between them;
- ``ray``: tasks on a Ray cluster (no address starts a local one);
- ``submitit``: SLURM jobs (or local subprocesses with submitit's local executor).

The shared loop is in ``base``, each engine in its own module, the names in
``registry``. Launchers know nothing of grids or training.
"""

from bnnctl.sweep.launchers.base import Launcher, TaskResult, ThreadedCall, available_cpus, first_line, split_cores
from bnnctl.sweep.launchers.inline import InlineLauncher
from bnnctl.sweep.launchers.local import LocalLauncher
from bnnctl.sweep.launchers.ray import RayLauncher
from bnnctl.sweep.launchers.registry import LAUNCHERS, launcher_class, make_launcher
from bnnctl.sweep.launchers.submitit import SubmititLauncher

__all__ = [
    "LAUNCHERS",
    "InlineLauncher",
    "Launcher",
    "LocalLauncher",
    "RayLauncher",
    "SubmititLauncher",
    "TaskResult",
    "ThreadedCall",
    "available_cpus",
    "first_line",
    "launcher_class",
    "make_launcher",
    "split_cores",
]
