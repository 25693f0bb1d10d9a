"""A packed model: its ops in order (``XnorLinear`` / ``XnorConv2d`` on bits, float ops), and its file.

``export.pack_model`` builds one from a trained network; ``save_packed`` and
``load_packed`` write and read it.

File (``.npz``, uncompressed, read with ``allow_pickle=False``): a JSON
``manifest`` (format, the run, and per op its kind and attributes) and the
ops' arrays as ``op<i>.<name>``: weight words of binary layers (1 bit per
weight), thresholds (int32 per unit), and the few float parameters.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bnnctl.errors import PackError
from bnnctl.files import atomic_write_bytes
from bnnctl.packed import float_ops as fo
from bnnctl.packed.layers import Bits, Thresholds, XnorConv2d, XnorLinear

FORMAT = "bnnctl-packed-v1"


class PackedModel:
    """The ops in order; called on a float batch (N, *input_shape), it returns the float model's outputs."""

    def __init__(self, ops: list[Any], meta: dict[str, Any]):
        self.ops = ops
        self.meta = meta

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        state: Any = x.float()
        with torch.no_grad():
            for op in self.ops:
                state = op(state)
        return state.to_float() if isinstance(state, Bits) else state

    def summary(self) -> list[dict[str, Any]]:
        """One row per op: what it is and what it stores (for ``bnnctl export``)."""
        rows = []
        for i, op in enumerate(self.ops):
            kind, attrs, arrays = _record(op)
            rows.append({"op": i, "kind": kind, "bytes": sum(a.nbytes for a in arrays.values()), **_short(kind, attrs)})
        return rows


def _short(kind: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """A one-line description of an op for the export table."""
    if kind in ("xnor_linear", "xnor_conv2d"):
        out = attrs["out_channels"] if kind == "xnor_conv2d" else attrs["out_features"]
        epilogue = "thresholds" if attrs["thresholds"] else "float"
        return {"detail": f"{attrs['in_channels']}->{out}, {epilogue}"}
    if kind == "linear":
        return {"detail": f"{attrs['weight']['shape']}, {'1 bit' if attrs['weight']['binary'] else 'float32'} weights"}
    return {"detail": attrs.get("fn", "")}


# --- the file ------------------------------------------------------------------------


def _record(op: Any) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    """(kind, JSON attributes, arrays) of an op."""
    if isinstance(op, fo.FloatOp):
        return op.kind, op.attrs, {k: v for k, v in op.arrays.items() if v is not None}
    arrays = {"weight_words": op.weight_words}
    if op.bias is not None:
        arrays["bias"] = op.bias
    if op.thresholds is not None:
        arrays |= {"t": op.thresholds.t, "flip": op.thresholds.flip}
    common = {"in_channels": op.in_channels, "thresholds": op.thresholds is not None}
    if isinstance(op, XnorLinear):
        return "xnor_linear", {**common, "in_positions": op.in_positions, "out_features": op.out_features}, arrays
    attrs = {
        **common, "out_channels": op.out_channels, "kernel": list(op.kernel), "stride": op.stride,
        "padding": op.padding, "in_size": list(op.in_size), "pool": op.pool,
    }  # fmt: skip
    return "xnor_conv2d", attrs, arrays


def _op_from_record(kind: str, attrs: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    if kind in fo.FLOAT_OPS:
        return fo.FLOAT_OPS[kind](attrs, arrays)
    thresholds = Thresholds(arrays["t"].astype(np.int32), arrays["flip"].astype(bool)) if attrs["thresholds"] else None
    common: dict[str, Any] = {"bias": arrays.get("bias"), "thresholds": thresholds}
    words = arrays["weight_words"].astype(np.uint64)
    if kind == "xnor_linear":
        return XnorLinear(words, attrs["in_positions"], attrs["in_channels"], attrs["out_features"], **common)
    if kind == "xnor_conv2d":
        return XnorConv2d(
            words, attrs["in_channels"], attrs["out_channels"], tuple(attrs["kernel"]), attrs["stride"],
            attrs["padding"], tuple(attrs["in_size"]), attrs["pool"], **common,
        )  # fmt: skip
    raise ValueError(f"unknown op kind {kind!r}")


def save_packed(model: PackedModel, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write the packed model file atomically; returns its path."""
    path = Path(path)
    manifest: dict[str, Any] = {"format": FORMAT, **model.meta, **(meta or {}), "ops": []}
    arrays: dict[str, np.ndarray] = {}
    for i, op in enumerate(model.ops):
        kind, attrs, op_arrays = _record(op)
        manifest["ops"].append({"kind": kind, "attrs": attrs, "arrays": sorted(op_arrays)})
        arrays |= {f"op{i}.{name}": np.ascontiguousarray(a) for name, a in op_arrays.items()}
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=True, **arrays)  # numpy's default, named: no array's key can be taken for it
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_packed(path: str | Path) -> PackedModel:
    """Read a packed model file; PackError names the file and what is wrong with it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        manifest = json.loads(arrays.pop("manifest").tobytes().decode())
    except FileNotFoundError:
        raise PackError(f"{path}: no such packed model file (bnnctl export RUN_DIR writes one)") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise PackError(f"{path}: not a readable packed model file ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PackError(
            f"{path}: not a {FORMAT} file (format {manifest.get('format') if isinstance(manifest, dict) else None!r})"
        )
    ops = []
    for i, entry in enumerate(manifest.get("ops", [])):
        try:
            op_arrays = {name: arrays[f"op{i}.{name}"] for name in entry["arrays"]}
            ops.append(_op_from_record(entry["kind"], entry["attrs"], op_arrays))
        except (KeyError, TypeError, ValueError) as exc:
            raise PackError(
                f"{path}: op {i} ({entry.get('kind') if isinstance(entry, dict) else entry!r}) is damaged: {exc}"
            ) from None
    meta = {k: v for k, v in manifest.items() if k not in ("format", "ops")}
    return PackedModel(ops, meta)
