"""The run folder: its files, its status, and the operations that fill it, in the order they happen.

A run folder holds everything needed to reproduce and audit the run: the
resolved config, the command-line overrides, the environment, metrics as JSON
lines, a summary, a checkpoint that embeds its config, and a ``DONE`` marker
written last (``error.txt`` instead when it failed). Files are written
atomically, so a crash never leaves a half-written summary or checkpoint.

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
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bnnctl.config import TrainConfig, to_container, to_yaml
from bnnctl.config.load import load_yaml
from bnnctl.errors import RunError
from bnnctl.files import append_line, atomic_write_text, write_json
from bnnctl.provenance import environment
from bnnctl.runs.torch_files import load_tensors, save_torch

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
RUN_FILES = (CONFIG, OVERRIDES, ENV, METRICS, SUMMARY, CHECKPOINT, DONE, ERROR, RESUME)


class Status(enum.StrEnum):
    done = "done"
    failed = "failed"
    incomplete = "incomplete"
    missing = "missing"
    damaged = "damaged"


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
        save_torch(self.path / CHECKPOINT, {"format": CHECKPOINT_FORMAT, "config": to_container(cfg), **state})

    def load_checkpoint(self) -> dict[str, Any]:
        """The checkpoint, loaded with ``weights_only=True`` (no arbitrary code from pickles)."""
        path = self.path / CHECKPOINT
        if not path.is_file():
            raise RunError(f"{self.path} has no {CHECKPOINT}")
        state = load_tensors(path, "corrupt or not a bnnctl checkpoint")
        if not isinstance(state, dict) or "model" not in state:
            raise RunError(f"{path} is not a bnnctl checkpoint (no model state)")
        return state

    def save_resume_state(self, state: dict[str, Any]) -> None:
        """The training state after a finished epoch (``training.resume.capture``), replaced atomically."""
        save_torch(self.path / RESUME, state)

    def load_resume_state(self) -> dict[str, Any] | None:
        """The last saved training state, or None when the run has none (it never finished an epoch)."""
        path = self.path / RESUME
        if not path.is_file():
            return None
        state = load_tensors(path, "corrupt; delete it to train this run from the start")
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
