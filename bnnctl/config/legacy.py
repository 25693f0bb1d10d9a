"""Configs written by older bnnctl versions, upgraded to today's schema.

Run folders are kept forever, so every schema change that renames or moves a
key adds a step here, and ``load_yaml`` reads any folder bnnctl ever wrote.

Version 1 (before binarizer objects) differs from today's in two places:
* ``binarize.weights`` / ``binarize.activations`` were names of functions:
  ``sign`` (gradient cancelled where |x| > 1), ``sign_passthrough`` (gradient
  passed unchanged), ``stochastic``, ``identity``;
* ``runs_dir`` (where runs go) was part of the config.
"""

from __future__ import annotations

import copy
from typing import Any

# A version-1 binarizer name -> today's {name, params}.
V1_BINARIZERS: dict[str, dict[str, Any]] = {
    "sign": {"name": "ste_sign", "params": {}},
    "sign_passthrough": {"name": "ste_sign", "params": {"clip": None}},
    "stochastic": {"name": "stochastic_sign", "params": {}},
    "identity": {"name": "identity", "params": {}},
}


def is_legacy(raw: dict[str, Any]) -> bool:
    """Whether ``raw`` was written by bnnctl before binarizer objects (version 1)."""
    binarize = raw.get("binarize")
    return "runs_dir" in raw or (isinstance(binarize, dict) and any(isinstance(v, str) for v in binarize.values()))


def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` in today's layout (unchanged if it already is)."""
    if not is_legacy(raw):
        return raw
    new = copy.deepcopy(raw)
    new.pop("runs_dir", None)
    # Version 1 wrote every key; where one is missing (a hand-edited file), version 1's default applies.
    if isinstance(new.get("model"), dict):
        new["model"].setdefault("binarize_bias", False)
    binarize = new.get("binarize")
    if not isinstance(binarize, dict):
        return new  # the schema names what is wrong
    for role, v1_default in (("weights", "sign_passthrough"), ("activations", "sign")):
        value = binarize.setdefault(role, v1_default)
        if isinstance(value, str):
            binarize[role] = copy.deepcopy(V1_BINARIZERS.get(value, {"name": value, "params": {}}))
    return new
