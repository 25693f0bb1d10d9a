"""Launchers by name (``launcher.name`` in the config): one class per engine."""

from __future__ import annotations

from pathlib import Path

from bnnctl.config.schema import LauncherConfig
from bnnctl.errors import ConfigError
from bnnctl.sweep.launchers.base import Launcher
from bnnctl.sweep.launchers.inline import InlineLauncher
from bnnctl.sweep.launchers.local import LocalLauncher
from bnnctl.sweep.launchers.ray import RayLauncher
from bnnctl.sweep.launchers.submitit import SubmititLauncher

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
