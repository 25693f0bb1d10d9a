"""Binarizers by name: the registry a config's ``{name, params}`` is looked up in, and its defaults.

The registry fills as ``binarizers`` is imported, which the package's
``__init__`` does: any import of ``bnnctl.nn.binarize.registry`` goes through
it first, so the registry is never seen empty.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

from bnnctl.errors import ConfigError
from bnnctl.nn.binarize.base import Binarizer

BINARIZERS: dict[str, type[Binarizer]] = {}


def register(cls: type[Binarizer]) -> type[Binarizer]:
    """Class decorator: make ``cls`` selectable as ``{name: cls.name, params: {...}}``."""
    if cls.name in BINARIZERS:
        raise ValueError(f"binarizer {cls.name!r} is registered twice")
    BINARIZERS[cls.name] = cls
    return cls


def make_binarizer(spec: Any, key: str = "binarizer") -> Binarizer:
    """The binarizer a config names: ``{name, params}`` (or a bare name); errors name ``key``."""
    if isinstance(spec, Binarizer):
        return spec
    name, params = _name_and_params(spec, key)
    try:
        cls = BINARIZERS[name]
    except KeyError:
        raise ConfigError(f"{key}.name: unknown binarizer {name!r} (known: {', '.join(sorted(BINARIZERS))})") from None
    known = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(
            f"{key}.params.{unknown[0]}: not a parameter of {name} (known: {', '.join(known) or 'none'}; "
            f"params carry over when only the name is overridden: drop it with ~{key}.params.{unknown[0]})"
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}.params: {exc}") from None


def _name_and_params(spec: Any, key: str) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping):
        return str(spec.get("name")), dict(spec.get("params") or {})
    if hasattr(spec, "name") and hasattr(spec, "params"):  # config.schema.BinarizerSpec
        return spec.name, dict(spec.params or {})
    raise ConfigError(f"{key}: expected {{name, params}}, got {spec!r}")


def default_params(name: str) -> dict[str, Any]:
    """The parameters a binarizer takes when the config gives none (for canonical run ids)."""
    cls = BINARIZERS[name]
    return {
        p.name: p.default
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.default is not inspect.Parameter.empty
    }
