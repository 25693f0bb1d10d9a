"""One self-describing folder per run, safe against interruption.

A run folder holds everything needed to reproduce and audit the run: the
resolved config, the command-line overrides, the environment (package
versions, git commit, device), metrics as JSON lines, a summary, a checkpoint,
and a ``DONE`` marker written last. Files are written atomically (temp file +
rename), so a crash or Ctrl-C never leaves a half-written summary or
checkpoint, and a folder without ``DONE`` is known to be incomplete.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bnnctl.errors import RunError

DONE = "DONE"
CONFIG = "config.yaml"
OVERRIDES = "overrides.txt"
ENV = "env.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.pt"
PACKAGES = ("bnnctl", "torch", "torchvision", "numpy", "hydra-core", "omegaconf", "typer", "rich", "pandas", "matplotlib")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared like any file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def config_hash(identity: Any) -> str:
    """First 8 hex digits of the SHA-256 of a canonical JSON dump: same config, same id."""
    canonical = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:8]


def _git_commit() -> dict[str, Any]:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return {"commit": None}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}


def environment(device: str | None = None) -> dict[str, Any]:
    """What a reader needs to reproduce the run: versions, commit, machine, device."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "argv": sys.argv,
        "packages": versions,
        "git": _git_commit(),
        "device": device,
    }
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        env["cuda_available"] = torch.cuda.is_available()
        if device and device.startswith("cuda") and torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return env


@dataclass
class Run:
    """A run folder and the operations that fill it, in the order they happen."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def done(self) -> bool:
        return (self.path / DONE).is_file()

    def write_config(self, config_yaml: str, overrides: list[str]) -> None:
        atomic_write_text(self.path / CONFIG, config_yaml)
        atomic_write_text(self.path / OVERRIDES, "".join(f"{o}\n" for o in overrides))

    def write_environment(self, device: str) -> None:
        write_json(self.path / ENV, environment(device))

    def log_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON line and flush it, so an interrupted run keeps every finished epoch."""
        with open(self.path / METRICS, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()

    def metrics(self) -> list[dict[str, Any]]:
        path = self.path / METRICS
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.path / SUMMARY, summary)

    def summary(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / SUMMARY).read_text())
        except FileNotFoundError:
            raise RunError(f"{self.path} has no {SUMMARY}: the run did not finish") from None
        except json.JSONDecodeError as exc:
            raise RunError(f"{self.path / SUMMARY} is corrupt: {exc}") from None

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        import io

        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(self.path / CHECKPOINT, buffer.getvalue())

    def load_checkpoint(self) -> dict[str, Any]:
        """The checkpoint, loaded with ``weights_only=True`` (no arbitrary code from pickles)."""
        import pickle

        import torch

        path = self.path / CHECKPOINT
        if not path.is_file():
            raise RunError(f"{self.path} has no {CHECKPOINT}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RunError(f"cannot load {path}: corrupt or not a bnnctl checkpoint ({first})") from None
        if not isinstance(state, dict) or "model" not in state:
            raise RunError(f"{path} is not a bnnctl checkpoint (no model state)")
        return state

    def mark_done(self) -> None:
        """Written last: its presence means every other file of the run is complete."""
        atomic_write_text(self.path / DONE, dt.datetime.now().isoformat(timespec="seconds") + "\n")


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test.", delete=True)
        probe.close()
    except OSError as exc:
        raise RunError(f"runs folder {folder} is not writable: {exc.strerror or exc}") from None


def create_run(runs_dir: str | Path, kind: str, name: str, identity: Any) -> Run:
    """A new, empty folder ``<runs_dir>/<kind>/<YYYYmmdd-HHMMSS>_<name>_<hash8>``."""
    parent = Path(runs_dir).expanduser() / kind
    _check_writable(parent)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe_name = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    base = f"{stamp}_{safe_name}_{config_hash(identity)}"
    for attempt in range(1000):
        path = parent / (base if attempt == 0 else f"{base}-{attempt + 1}")
        try:
            path.mkdir()
            return Run(path)
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunError(f"cannot create run folder {path}: {exc.strerror or exc}") from None
    raise RunError(f"cannot create a run folder under {parent}: too many runs named {base}")


def discard_if_untrained(run: Run) -> bool:
    """Remove a run folder that never finished an epoch (setup failed): it holds nothing worth keeping."""
    import shutil

    if run.done or run.metrics():
        return False
    shutil.rmtree(run.path, ignore_errors=True)
    return True


def open_run(path: str | Path) -> Run:
    """An existing run folder; anything else is a one-line RunError."""
    path = Path(path).expanduser()
    if not path.exists():
        raise RunError(f"run folder {path} does not exist")
    if not path.is_dir():
        raise RunError(f"{path} is not a folder")
    if not (path / CONFIG).is_file():
        raise RunError(f"{path} is not a bnnctl run folder (no {CONFIG})")
    return Run(path)


def list_runs(runs_dir: str | Path, kind: str = "train") -> list[Run]:
    """Run folders under ``<runs_dir>/<kind>``, oldest first."""
    parent = Path(runs_dir).expanduser() / kind
    if not parent.is_dir():
        return []
    return [Run(p) for p in sorted(parent.iterdir()) if p.is_dir() and (p / CONFIG).is_file()]
