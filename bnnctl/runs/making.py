"""Where run folders come from and go: made (the one timestamped-folder maker), emptied, set aside, discarded, opened.

Every command that writes a new folder per invocation (train runs, geometry
studies, benchmarks) names it ``<YYYYmmdd-HHMMSS>[suffix]`` through
``new_timestamped_folder``, so they all sort by time and never collide.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

from bnnctl.config import TrainConfig
from bnnctl.errors import RunError
from bnnctl.runs.folder import CONFIG, Run
from bnnctl.runs.ids import run_id

STAMP = "%Y%m%d-%H%M%S"
_MAX_ATTEMPTS = 1000  # folders made in one second with one name before giving up


def _check_writable(folder: Path) -> None:
    """Make ``folder`` and prove a file can be written there: a read-only disk fails here, before any work."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test.", delete=True)
        probe.close()
    except OSError as exc:
        raise RunError(f"runs folder {folder} is not writable: {exc.strerror or exc}") from None


def safe_name(name: str) -> str:
    """A run or grid name as one folder name: no separators, no '..'."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip(".") or "run"


def new_timestamped_folder(parent: str | Path, suffix: str = "") -> Path:
    """A new, empty folder ``<parent>/<YYYYmmdd-HHMMSS><suffix>`` (``-2``, ``-3``... when two start in one second)."""
    parent = Path(parent).expanduser()
    _check_writable(parent)
    base = dt.datetime.now().strftime(STAMP) + suffix
    for attempt in range(_MAX_ATTEMPTS):
        path = parent / (base if attempt == 0 else f"{base}-{attempt + 1}")
        try:
            path.mkdir()  # not exist_ok: the folder that is made here belongs to this caller alone
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunError(f"cannot create folder {path}: {exc.strerror or exc}") from None
    raise RunError(f"cannot create a folder under {parent}: too many named {base}")


def create_run(runs_dir: str | Path, kind: str, name: str, cfg: TrainConfig) -> Run:
    """A new, empty folder ``<runs_dir>/<kind>/<YYYYmmdd-HHMMSS>_<name>_<run id>``."""
    parent = Path(runs_dir).expanduser() / kind
    return Run(new_timestamped_folder(parent, f"_{safe_name(name)}_{run_id(cfg)}"))


def set_aside(run: Run) -> Path:
    """Rename a damaged folder to ``<name>.damaged`` (``-2``, ...) beside it, so its place can be trained again.

    Nothing is deleted: the damaged files stay for whoever wants to look.
    """
    for attempt in range(1, _MAX_ATTEMPTS):
        target = run.path.with_name(f"{run.name}.damaged" + (f"-{attempt}" if attempt > 1 else ""))
        if not target.exists():
            run.path.rename(target)
            return target
    raise RunError(f"cannot set {run.path} aside: too many damaged copies beside it")


def fresh_run(path: str | Path) -> Run:
    """The folder at ``path`` emptied for a new attempt (a grid cell's fixed place); DONE folders are refused."""
    run = Run(Path(path))
    if run.done:
        raise RunError(f"{run.path} is finished (DONE); it is never overwritten")
    if run.path.exists():
        shutil.rmtree(run.path)
    run.path.mkdir(parents=True)
    return run


def discard_if_untrained(run: Run) -> bool:
    """Remove a run folder that never finished an epoch (setup failed): it holds nothing worth keeping."""
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
