"""One driver per grid folder: an exclusive lock, so two drivers never train the same cells twice."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from bnnctl.errors import RunError


class GridLock:
    """An exclusive lock on a grid folder: two drivers on one grid would train the same cells twice.

    ``flock`` is released by the kernel when the holder dies (even ``kill -9``),
    so a stale lock never blocks a rerun; the file records the holder's pid for
    the message a second driver shows.
    """

    def __init__(self, folder: Path):
        self.path = folder / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> GridLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise RunError(
                f"grid {self.path.parent} is already running (pid {holder}); wait for it or stop it"
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
