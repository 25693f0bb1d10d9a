"""What a reader needs to reproduce a run: package versions, git commit, machine, device (``env.json``)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "bnnctl",
    "torch",
    "torchvision",
    "numpy",
    "hydra-core",
    "omegaconf",
    "typer",
    "rich",
    "pandas",
    "matplotlib",
    "numba",
)


def version_line() -> str:
    """``bnnctl --version``: bnnctl's version and what it computes with (torch, its CUDA, numba, Python).

    Read from the installed packages' metadata and torch's ``version.py`` without
    importing torch (seconds): the version must answer at once. Which GPUs a run
    saw is in its ``env.json``.
    """
    from bnnctl import __version__

    return (
        f"bnnctl {__version__} (torch {_torch_version('__version__') or 'not installed'}, "
        f"CUDA {_torch_version('cuda') or 'none'}, numba {_installed('numba')}, "
        f"Python {sys.version.split()[0]})"
    )


def _installed(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _torch_version(field: str) -> str | None:
    """A field of torch's ``version.py`` (``__version__``, ``cuda``) as torch.version has it, without importing torch."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        text = (Path(next(iter(spec.submodule_search_locations))) / "version.py").read_text()
    except OSError:
        return None
    found = re.search(rf"^{re.escape(field)}\b[^=\n]*=\s*'([^']*)'", text, flags=re.M)
    return found.group(1) if found else None


def _git_commit() -> dict[str, Any]:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return {"commit": None}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}


def environment(device: str | None = None) -> dict[str, Any]:
    """What a reader needs to reproduce the run: versions, commit, machine, device."""
    from bnnctl.cpu import cpu_has_native_bf16, cpu_has_vnni, cpu_model  # torch: not for --version

    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_model": cpu_model(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "argv": sys.argv,
        "packages": versions,
        "git": _git_commit(),
        "device": device,
    }
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        # The SIMD level torch dispatches to (AVX2, AVX512, ...): epoch times differ several-fold between them.
        env["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        # What train.binary_matmul=auto decides from (int8 only with both).
        env["cpu_int8_units"] = {"vnni": cpu_has_vnni(), "native_bf16": cpu_has_native_bf16()}
        env["cuda_available"] = torch.cuda.is_available()
        if device and device.startswith("cuda") and torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return env
