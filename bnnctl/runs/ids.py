"""Run and cell ids: the hash of what a config sets differently from the schema's defaults.

A run's id is the hash of the values of its config that differ from the
schema's defaults (binarizer parameters at their binarizer's defaults count as
defaults too), without the keys that say where or how it ran
(``schema.NOT_IDENTITY``). A new key with a default therefore never moves an
existing id, and a grid rerun finds every finished cell. Published grids are
keyed by these ids: a change here that moves one by a character orphans them.

(Not named ``identity.py``: the package re-exports the function ``identity``,
which would hide a submodule of the same name.)
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bnnctl.config import TrainConfig, to_container
from bnnctl.config.schema import NOT_IDENTITY
from bnnctl.errors import ConfigError

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
