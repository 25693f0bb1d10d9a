"""The run contract: one self-describing folder per run, its identity, its status, its trained model.

A run folder holds everything needed to reproduce and audit the run: the
resolved config, the command-line overrides, the environment, metrics as JSON
lines, a summary, a checkpoint that embeds its config, and a ``DONE`` marker
written last (``error.txt`` instead when it failed). Files are written
atomically, so a crash never leaves a half-written summary or checkpoint.

**Identity.** A run's id is the hash of the values of its config that differ
from the schema's defaults (binarizer parameters at their binarizer's
defaults count as defaults too), without the keys that say where or how it
ran (``schema.NOT_IDENTITY``). A new key with a default therefore never moves
an existing id, and a grid rerun finds every finished cell.

**Resume.** Each finished epoch also writes ``resume.pt`` (model, optimizer,
RNG states, epoch), atomically; a cut-off run continues from it
(``training.resume``) and gives the numbers an uninterrupted run gives.

**Status.** One vocabulary for train runs, grid cells and tables: done,
failed, incomplete (started, no DONE: interrupted), missing, damaged (DONE
but the summary cannot be read).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import io
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bnnctl.config import TrainConfig, from_container, load_yaml, to_container, to_yaml
from bnnctl.config.schema import NOT_IDENTITY
from bnnctl.errors import ConfigError, RunError
from bnnctl.files import append_line, atomic_write_bytes, atomic_write_text, write_json
from bnnctl.provenance import environment

if TYPE_CHECKING:
    import torch.nn as nn

DONE = "DONE"
CONFIG = "config.yaml"
OVERRIDES = "overrides.txt"
ENV = "env.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.pt"
ERROR = "error.txt"
RESUME = "resume.pt"  # the state after the last finished epoch; removed once the run is DONE
CHECKPOINT_FORMAT = "bnnctl-checkpoint-v2"  # v2 embeds the resolved config; v1 (older runs) did not


class Status(enum.StrEnum):
    done = "done"
    failed = "failed"
    incomplete = "incomplete"
    missing = "missing"
    damaged = "damaged"


# --- identity -----------------------------------------------------------------------

_SAME = object()


def _diff(value: Any, default: Any) -> Any:
    """The parts of ``value`` that differ from ``default`` (dicts recursively), or _SAME."""
    if isinstance(value, dict) and isinstance(default, dict):
        out = {}
        for key, v in value.items():
            d = _diff(v, default[key]) if key in default else v
            if d is not _SAME:
                out[key] = d
        return out or _SAME
    return _SAME if value == default else value


def _canonical_binarizers(tree: dict[str, Any]) -> dict[str, Any]:
    """Binarizer params equal to their binarizer's defaults dropped: {clip: 1.0} and {} are one binarizer."""
    from bnnctl.nn.binarize import default_params, make_binarizer

    for spec in (tree.get("binarize") or {}).values():
        try:
            params = make_binarizer(spec).params  # through the object: clip 2 and 2.0 are one binarizer
        except ConfigError:
            continue
        defaults = default_params(spec["name"])
        spec["params"] = {k: v for k, v in params.items() if defaults.get(k, _SAME) != v}
    return tree


def _drop(tree: dict[str, Any], dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.get(key) or {}
    tree.pop(leaf, None)


def _inert_keys(tree: dict[str, Any]) -> list[str]:
    """Keys that build the same network as their default (``nn.models.inert_model_keys``): outside the id."""
    from bnnctl.nn.models import inert_model_keys

    model = tree.get("model")
    return [f"model.{key}" for key in inert_model_keys(model)] if isinstance(model, dict) else []


def identity(cfg: TrainConfig, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """What makes two runs the same experiment: the values that differ from the schema's defaults."""
    value = _canonical_binarizers(to_container(cfg))
    default = _canonical_binarizers(to_container(type(cfg)()))
    for key in (*NOT_IDENTITY, *without, *_inert_keys(value)):
        _drop(value, key)
        _drop(default, key)
    diff = _diff(value, default)
    return {} if diff is _SAME else diff


def config_hash(tree: Any) -> str:
    """First 8 hex digits of the SHA-256 of a canonical JSON dump: same tree, same id."""
    canonical = json.dumps(tree, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:8]


def run_id(cfg: TrainConfig) -> str:
    return config_hash(identity(cfg))


def cell_id(cfg: TrainConfig) -> str:
    """A grid cell's id: the run id without the seed, shared by all seeds of the cell."""
    return config_hash(identity(cfg, without=("train.seed",)))


# --- the folder ----------------------------------------------------------------------


@dataclass(frozen=True)
class RunState:
    """What a folder holds: its status, its summary when done, why when damaged."""

    status: Status
    summary: dict[str, Any] | None = None
    reason: str | None = None


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

    def status(self) -> Status:
        return self.state().status

    def state(self) -> RunState:
        """Status, summary (when done) and, for a damaged folder, why: never raises."""
        try:
            if not self.path.is_dir():
                return RunState(Status.missing)
            if self.done:
                return RunState(Status.done, self.summary())
            return RunState(Status.failed if (self.path / ERROR).is_file() else Status.incomplete)
        except (RunError, OSError) as exc:
            return RunState(Status.damaged, reason=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def write_config(self, cfg: TrainConfig, overrides: list[str]) -> None:
        atomic_write_text(self.path / CONFIG, to_yaml(cfg))
        atomic_write_text(self.path / OVERRIDES, "".join(f"{o}\n" for o in overrides))

    def config(self) -> TrainConfig:
        return load_yaml(self.path / CONFIG)

    def write_environment(self, device: str) -> None:
        write_json(self.path / ENV, environment(device))

    def log_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON line and flush it, so an interrupted run keeps every finished epoch."""
        append_line(self.path / METRICS, json.dumps(record, sort_keys=True))

    def metrics(self) -> list[dict[str, Any]]:
        """The logged records; a last line cut off by a crash is left out, not an error."""
        path = self.path / METRICS
        if not path.is_file():
            return []
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            raise RunError(f"cannot read {path}: {exc.strerror or exc}") from None
        lines = [line for line in text.splitlines() if line.strip()]
        records = []
        for i, line in enumerate(lines):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if i == len(lines) - 1:
                    break
                raise RunError(f"{path} line {i + 1} is not JSON") from None
            if isinstance(record, dict):
                records.append(record)
        return records

    def keep_metrics_through(self, epoch: int) -> None:
        """Drop the records after 1-based ``epoch`` (what a cut-off epoch logged), before resuming from it."""
        kept = [r for r in self.metrics() if int(r.get("epoch", 0)) <= epoch]
        atomic_write_text(self.path / METRICS, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.path / SUMMARY, summary)

    def summary(self) -> dict[str, Any]:
        path = self.path / SUMMARY
        try:
            summary = json.loads(path.read_text())
        except FileNotFoundError:
            raise RunError(f"{self.path} has no {SUMMARY}: the run did not finish") from None
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
            raise RunError(f"{path} is corrupt: {exc}") from None
        if not isinstance(summary, dict):
            raise RunError(f"{path} is corrupt: not a JSON object")
        return summary

    def save_checkpoint(self, state: dict[str, Any], cfg: TrainConfig) -> None:
        """The model's state with the resolved config inside: the file alone rebuilds the model."""
        import torch

        buffer = io.BytesIO()
        torch.save({"format": CHECKPOINT_FORMAT, "config": to_container(cfg), **state}, buffer)
        atomic_write_bytes(self.path / CHECKPOINT, buffer.getvalue())

    def load_checkpoint(self) -> dict[str, Any]:
        """The checkpoint, loaded with ``weights_only=True`` (no arbitrary code from pickles)."""
        path = self.path / CHECKPOINT
        if not path.is_file():
            raise RunError(f"{self.path} has no {CHECKPOINT}")
        state = _load_tensors(path, "corrupt or not a bnnctl checkpoint")
        if not isinstance(state, dict) or "model" not in state:
            raise RunError(f"{path} is not a bnnctl checkpoint (no model state)")
        return state

    def save_resume_state(self, state: dict[str, Any]) -> None:
        """The training state after a finished epoch (``training.resume.capture``), replaced atomically."""
        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(self.path / RESUME, buffer.getvalue())

    def load_resume_state(self) -> dict[str, Any] | None:
        """The last saved training state, or None when the run has none (it never finished an epoch)."""
        path = self.path / RESUME
        if not path.is_file():
            return None
        state = _load_tensors(path, "corrupt; delete it to train this run from the start")
        if not isinstance(state, dict) or not isinstance(state.get("epoch"), int):
            raise RunError(f"{path} is not a bnnctl resume state; delete it to train this run from the start")
        return state

    def clear_error(self) -> None:
        (self.path / ERROR).unlink(missing_ok=True)

    def write_error(self, text: str) -> None:
        try:
            atomic_write_text(self.path / ERROR, text)
        except OSError:
            pass

    def mark_done(self) -> None:
        """Written last: its presence means every other file of the run is complete."""
        (self.path / ERROR).unlink(missing_ok=True)
        atomic_write_text(self.path / DONE, dt.datetime.now().isoformat(timespec="seconds") + "\n")
        (self.path / RESUME).unlink(missing_ok=True)  # checkpoint.pt holds the model; the rest is not needed


def _load_tensors(path: Path, what: str) -> Any:
    """A ``torch.save`` file loaded with ``weights_only=True`` (tensors and plain containers, no code).

    Any failure is one RunError line that says ``what`` the file is; torch's own
    advice to retry with ``weights_only=False`` is not repeated to the user, since
    that would run code from a file bnnctl did not write.
    """
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError, AttributeError, TypeError) as exc:
        raise RunError(f"cannot load {path}: {what} ({_torch_load_problem(exc)})") from None


def _torch_load_problem(exc: BaseException) -> str:
    """The cause in torch.load's message, without its advice to load untrusted files with weights_only=False."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # torch puts ANSI bold into the message
    if "Weights only load failed" not in text:
        return text.splitlines()[0] if text else type(exc).__name__
    if "Unsupported global" in text or "allowlist" in text:
        return "it holds objects other than tensors and plain values, which bnnctl does not load"
    cause = text.partition("WeightsUnpickler error:")[2].strip().splitlines()
    return f"not a torch file: {cause[0]}" if cause and cause[0] else "not a torch file bnnctl can read"


@dataclass
class Trained:
    """A run's trained model with what rebuilt it: its config and the data's input shape and class count."""

    cfg: TrainConfig
    model: nn.Module
    input_shape: tuple[int, ...]
    num_classes: int


def weights_mismatch(model: nn.Module, weights: Any) -> str | None:
    """How a saved state dict differs from the model's (missing, unexpected, other shapes), or None when it fits."""
    if not isinstance(weights, dict):
        return "it holds no weights"
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    shapes = [
        f"{k} is {tuple(weights[k].shape)} there, {tuple(own[k].shape)} here"
        for k in own
        if k in weights and hasattr(weights[k], "shape") and tuple(weights[k].shape) != tuple(own[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if shapes:
        parts.append(f"{len(shapes)} of another shape (e.g. {shapes[0]})")
    return "; ".join(parts) or None


def load_weights(model: nn.Module, weights: Any, problem: str) -> None:
    """``model.load_state_dict(weights)``, or one RunError line: ``problem``, then what differs."""
    mismatch = weights_mismatch(model, weights)
    if mismatch is None:
        try:
            model.load_state_dict(weights)
            return
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            mismatch = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    raise RunError(f"{problem}: {mismatch}")


def load_trained(run: Run | str | Path) -> tuple[TrainConfig, nn.Module]:
    """The run's config and its trained model (CPU, evaluation mode), from the checkpoint alone when it can.

    Checkpoints since v2 carry their config; older ones are paired with config.yaml.
    """
    trained = load_trained_model(run)
    return trained.cfg, trained.model


def load_trained_model(run: Run | str | Path) -> Trained:
    """``load_trained`` with the input shape and class count the model was built for."""
    from bnnctl.nn import build_model

    run = run if isinstance(run, Run) else open_run(run)
    state = run.load_checkpoint()
    if not isinstance(state.get("input_shape"), (list, tuple)) or not isinstance(state.get("num_classes"), int):
        raise RunError(f"{run.path / CHECKPOINT} is not a bnnctl checkpoint (no input_shape / num_classes)")
    embedded = state.get("config")
    if embedded is not None and not isinstance(embedded, dict):
        raise RunError(f"{run.path / CHECKPOINT} holds a corrupt config")
    try:
        cfg = from_container(embedded, f"config in {run.path / CHECKPOINT}") if embedded else run.config()
    except ConfigError as exc:
        raise RunError(str(exc)) from None
    input_shape = tuple(state["input_shape"])
    model = build_model(cfg.model, cfg.binarize, input_shape, state["num_classes"])
    load_weights(model, state["model"], f"the checkpoint in {run.path} does not fit its config")
    return Trained(cfg, model.eval(), input_shape, state["num_classes"])


# --- where runs live -----------------------------------------------------------------


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test.", delete=True)
        probe.close()
    except OSError as exc:
        raise RunError(f"runs folder {folder} is not writable: {exc.strerror or exc}") from None


def safe_name(name: str) -> str:
    """A run or grid name as one folder name: no separators, no '..'."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip(".") or "run"


def create_run(runs_dir: str | Path, kind: str, name: str, cfg: TrainConfig) -> Run:
    """A new, empty folder ``<runs_dir>/<kind>/<YYYYmmdd-HHMMSS>_<name>_<run id>``."""
    parent = Path(runs_dir).expanduser() / kind
    _check_writable(parent)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}_{safe_name(name)}_{run_id(cfg)}"
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


def set_aside(run: Run) -> Path:
    """Rename a damaged folder to ``<name>.damaged`` (``-2``, ...) beside it, so its place can be trained again.

    Nothing is deleted: the damaged files stay for whoever wants to look.
    """
    for attempt in range(1, 1000):
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


RUN_FILES = (CONFIG, OVERRIDES, ENV, METRICS, SUMMARY, CHECKPOINT, DONE, ERROR, RESUME)


def list_runs(runs_dir: str | Path, kind: str = "train") -> list[Run]:
    """Run folders under ``<runs_dir>/<kind>``, oldest first: any folder holding a run's file.

    A run whose config.yaml was lost is still listed (and shown as damaged), not silently left out.
    """
    parent = Path(runs_dir).expanduser() / kind
    if not parent.is_dir():
        return []
    return [Run(p) for p in sorted(parent.iterdir()) if p.is_dir() and any((p / f).exists() for f in RUN_FILES)]


# --- grid folders ----------------------------------------------------------------------

GRID_MANIFEST = "grid.yaml"
MANIFEST_SCHEMA = 2  # 2: cell ids hash what differs from the schema defaults; absent (1): the whole config


def grid_dir(runs_dir: str | Path, grid_name: str) -> Path:
    return Path(runs_dir).expanduser() / "ablate" / safe_name(grid_name)


def cell_run_dir(grid: Path, cell: str, seed: int) -> Path:
    """``<grid>/cells/<cell id>/seed-<n>``: one ordinary run folder per cell x seed."""
    return grid / "cells" / cell / f"seed-{seed}"


def write_manifest(grid: Path, manifest: dict[str, Any]) -> Path:
    from omegaconf import OmegaConf

    path = grid / GRID_MANIFEST
    grid.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, OmegaConf.to_yaml(OmegaConf.create({"schema": MANIFEST_SCHEMA, **manifest})))
    return path


def read_manifest(grid: str | Path) -> dict[str, Any]:
    """``grid.yaml`` of a grid folder (any schema version): the grid, the overrides, each cell's id."""
    from omegaconf import OmegaConf

    grid = Path(grid).expanduser()
    path = grid / GRID_MANIFEST
    if not grid.exists():
        raise RunError(f"grid folder {grid} does not exist")
    if not grid.is_dir():
        raise RunError(f"{grid} is a file, not a grid folder (give the folder that holds {GRID_MANIFEST})")
    if not path.is_file():
        raise RunError(f"{grid} is not an ablation grid folder (no {GRID_MANIFEST})")
    try:
        manifest = OmegaConf.to_container(OmegaConf.load(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt file
        raise RunError(f"cannot read {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("cells"), list) or "grid" not in manifest:
        raise RunError(f"cannot read {path}: not a bnnctl grid manifest")
    manifest.setdefault("schema", 1)
    for cell in manifest["cells"]:
        if isinstance(cell, dict) and "id" in cell:
            cell["id"] = str(cell["id"])  # a hand-edited all-digit id reads as a number
    return manifest
