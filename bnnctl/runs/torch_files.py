"""The run folder's torch files (checkpoint, resume state): written atomically, loaded without running code."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from bnnctl.errors import RunError
from bnnctl.files import atomic_write_bytes


def save_torch(path: Path, obj: Any) -> None:
    """``torch.save(obj)`` into memory, then one atomic write: a crash never leaves half a file."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_tensors(path: Path, what: str) -> Any:
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
