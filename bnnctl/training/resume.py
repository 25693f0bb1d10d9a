"""Mid-run resume: the whole training state after an epoch, saved and put back.

What a continued run needs to take the steps an uninterrupted one takes, bit
for bit (eager CPU): the model's parameters and buffers (batch-norm
statistics), the optimizer's state (Adam's moments and step counts), the
iteration count (periodic validation), and every random stream the next
epoch draws from: Python's, NumPy's and torch's global generators (dropout,
stochastic sign), CUDA's when there is a GPU, the generator that shuffles the
batches and the one that augments them. The learning-rate schedule is a
function of the epoch, so the epoch number restores it. The history of
finished epochs comes along for the summary (best epoch, median epoch time).

Everything is a tensor or a plain value, so ``torch.load(weights_only=True)``
reads it back: NumPy's state travels as a uint32 tensor and four plain values.
"""

from __future__ import annotations

import random
from typing import Any, cast

import numpy as np
import torch

from bnnctl.config import TrainConfig, to_container
from bnnctl.errors import RunError

STATE_FORMAT = "bnnctl-resume-v1"


def _numpy_state() -> dict[str, Any]:
    # The global RandomState's legacy tuple (numpy's stubs match a bare get_state() to legacy=False's dict).
    kind, keys, pos, has_gauss, cached = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state())
    return {
        "kind": kind,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "gauss": [has_gauss, cached],
    }


def _set_numpy_state(state: dict[str, Any]) -> None:
    has_gauss, cached = state["gauss"]
    np.random.set_state((state["kind"], state["keys"].numpy().astype(np.uint32), state["pos"], has_gauss, cached))


def random_streams(batch_gen: torch.Generator, augment_gen: torch.Generator) -> dict[str, Any]:
    """The state of every random stream training draws from."""
    streams = {
        "python": random.getstate(),
        "numpy": _numpy_state(),
        "torch": torch.get_rng_state(),
        "batches": batch_gen.get_state(),
        "augment": augment_gen.get_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        streams["cuda"] = torch.cuda.get_rng_state_all()
    return streams


def set_random_streams(streams: dict[str, Any], batch_gen: torch.Generator, augment_gen: torch.Generator) -> None:
    version, internal, gauss = streams["python"]
    random.setstate((version, tuple(internal), gauss))
    _set_numpy_state(streams["numpy"])
    torch.set_rng_state(streams["torch"])
    batch_gen.set_state(streams["batches"])
    augment_gen.set_state(streams["augment"])
    if "cuda" in streams and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(streams["cuda"])


def capture(
    cfg: TrainConfig,
    trainer: Any,
    batch_gen: torch.Generator,
    augment_gen: torch.Generator,
    history: list[dict[str, Any]],
    elapsed_s: float,
) -> dict[str, Any]:
    """The training state after the epoch ``len(history)`` (1-based), as ``Run.save_resume_state`` stores it."""
    return {
        "format": STATE_FORMAT,
        "config": to_container(cfg),
        "epoch": len(history),
        "iteration": trainer.iteration,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.opt.state_dict(),
        "random": random_streams(batch_gen, augment_gen),
        "history": history,
        "elapsed_s": elapsed_s,
    }


def restore(
    state: dict[str, Any], cfg: TrainConfig, trainer: Any, batch_gen: torch.Generator, augment_gen: torch.Generator
) -> tuple[list[dict[str, Any]], float]:
    """Put a captured state back into a freshly set-up trainer; returns (history, elapsed seconds).

    A state saved by a different config (edited config.yaml, a changed grid
    cell) is refused: continuing it would mix two experiments.
    """
    from bnnctl.runs import load_weights

    if state.get("format") != STATE_FORMAT:
        raise RunError(f"resume state format {state.get('format')!r} is not {STATE_FORMAT!r}")
    if not saved_by(state, cfg):
        raise RunError("the resume state was saved by a different config; delete resume.pt to train from the start")
    if not 0 < state["epoch"] <= cfg.train.epochs:
        raise RunError(f"the resume state is at epoch {state['epoch']}, outside 1..train.epochs={cfg.train.epochs}")
    load_weights(trainer.model, state.get("model"), "the resume state does not fit the model")
    try:
        trainer.opt.load_state_dict(state["optimizer"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(f"the resume state's optimizer does not fit the model: {first}") from None
    trainer.iteration = int(state["iteration"])
    set_random_streams(state["random"], batch_gen, augment_gen)
    return list(state["history"]), float(state.get("elapsed_s", 0.0))


def saved_by(state: dict[str, Any], cfg: TrainConfig) -> bool:
    """Whether ``state`` was saved by the experiment ``cfg`` describes (same identity); never raises."""
    from bnnctl.config.load import from_container
    from bnnctl.runs import identity

    saved = state.get("config")
    try:
        return isinstance(saved, dict) and identity(from_container(saved, "resume state")) == identity(cfg)
    except Exception:  # noqa: BLE001 - a config this version cannot read is a different config
        return False


def can_resume(run: Any, cfg: TrainConfig) -> bool:
    """Whether ``run`` holds a readable state saved by this same experiment (a grid cell's automatic resume)."""
    try:
        state = run.load_resume_state()
    except RunError:  # unreadable: train from the start instead
        return False
    return state is not None and state.get("format") == STATE_FORMAT and saved_by(state, cfg)


RESUME_OVERRIDES = ("data.root", "data.download", "train.threads")  # where and how, never what


def config_to_resume(run: Any, overrides: list[str]) -> TrainConfig:
    """The config ``bnnctl train --resume`` continues with: the run's own, plus where-and-how overrides only.

    A finished run has nothing to resume; any other override would make the
    continued run a different experiment from the epochs it keeps.
    """
    from bnnctl.config.io import override_key
    from bnnctl.config.load import from_container

    if run.done:
        raise RunError(f"{run.path} is finished (DONE): there is nothing to resume")
    cfg = run.config()
    if not overrides:
        return cfg
    tree = to_container(cfg)
    for override in overrides:
        _, sep, value = override.partition("=")
        key = override_key(override)
        if not sep or key not in RESUME_OVERRIDES:
            raise RunError(
                f"--resume continues {run.path} with its own config; {override!r} cannot change it "
                f"(only {', '.join(RESUME_OVERRIDES)} may be given)"
            )
        section, leaf = key.split(".")
        tree[section][leaf] = None if value in ("null", "") else value
    return from_container(tree, f"config of {run.path} with {' '.join(overrides)}")
