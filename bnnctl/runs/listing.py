"""Which run folders a runs folder holds, damaged ones included."""

from __future__ import annotations

from pathlib import Path

from bnnctl.runs.folder import RUN_FILES, Run


def list_runs(runs_dir: str | Path, kind: str = "train") -> list[Run]:
    """Run folders under ``<runs_dir>/<kind>``, oldest first: any folder holding a run's file.

    A run whose config.yaml was lost is still listed (and shown as damaged), not silently left out.
    """
    parent = Path(runs_dir).expanduser() / kind
    if not parent.is_dir():
        return []
    return [Run(p) for p in sorted(parent.iterdir()) if p.is_dir() and any((p / f).exists() for f in RUN_FILES)]
