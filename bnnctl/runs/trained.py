"""A run's trained model, rebuilt from its checkpoint (which embeds the config since format v2)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bnnctl.config import TrainConfig
from bnnctl.config.load import from_container
from bnnctl.errors import ConfigError, RunError
from bnnctl.runs.folder import CHECKPOINT, Run
from bnnctl.runs.making import open_run

if TYPE_CHECKING:
    import torch.nn as nn


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
    cfg = _checkpoint_config(run, state)
    input_shape = tuple(state["input_shape"])
    model = build_model(cfg.model, cfg.binarize, input_shape, state["num_classes"])
    load_weights(model, state["model"], f"the checkpoint in {run.path} does not fit its config")
    return Trained(cfg, model.eval(), input_shape, state["num_classes"])


def _checkpoint_config(run: Run, state: dict[str, Any]) -> TrainConfig:
    """The config embedded in the checkpoint (format v2), else config.yaml beside it (v1 embedded none)."""
    embedded = state.get("config")
    if embedded is not None and not isinstance(embedded, dict):
        raise RunError(f"{run.path / CHECKPOINT} holds a corrupt config")
    try:
        return from_container(embedded, f"config in {run.path / CHECKPOINT}") if embedded else run.config()
    except ConfigError as exc:
        raise RunError(str(exc)) from None
