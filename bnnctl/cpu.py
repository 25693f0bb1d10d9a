"""What this machine's CPU has: its model, and the int8 / bf16 units that decide the exact low-precision path.

``train.binary_matmul=auto`` (``nn.lowp``) takes int8 products only where
the CPU runs them, and their bf16 backward, in hardware: on a 2-core AVX2
EPYC (no AVX-512, no VNNI, no native bf16) oneDNN emulates both, and a
100 x 2048 by 2048 x 2048 product took 13.6 ms in float32, 760 ms in int8
and 230-3200 ms in bf16. Run folders record these (``provenance``).
"""

from __future__ import annotations

import functools

import torch


def _cpuinfo(key: str) -> str | None:
    """The first value of ``key`` in /proc/cpuinfo (Linux; None elsewhere or where it has no such line)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


@functools.cache  # the hardware does not change while the process runs
def cpu_model() -> str | None:
    """The CPU's name, where ``platform.processor()`` is often empty or just the architecture."""
    return _cpuinfo("model name")


def _linux_cpu_flags() -> set[str]:
    return set((_cpuinfo("flags") or "").split())


def _cpu_reports(torch_names: tuple[str, ...], flags: tuple[str, ...]) -> bool:
    """torch's own check (``torch.cpu._is_*_supported``, private: older releases named it ``_is_cpu_support_*``),
    else the Linux CPU flags."""
    for name in torch_names:
        check = getattr(getattr(torch, "cpu", None), name, None) or getattr(getattr(torch._C, "_cpu", None), name, None)
        if callable(check):
            return bool(check())
    return bool(_linux_cpu_flags() & set(flags))


@functools.cache  # the hardware does not change while the process runs
def cpu_has_vnni() -> bool:
    """AVX-512 VNNI int8 dot products (what torch checks): what makes ``torch._int_mm`` fast on x86."""
    return _cpu_reports(("_is_vnni_supported", "_is_cpu_support_avx512_vnni", "_is_cpu_support_vnni"), ("avx512_vnni",))


@functools.cache  # the hardware does not change while the process runs
def cpu_has_native_bf16() -> bool:
    """bf16 dot products in hardware (AVX-512 BF16 or AMX); elsewhere oneDNN emulates bf16."""
    bf16 = _cpu_reports(("_is_avx512_bf16_supported", "_is_cpu_support_avx512bf16"), ("avx512_bf16",))
    return bf16 or _cpu_reports(("_is_amx_tile_supported", "_is_cpu_support_amx_tile"), ("amx_tile",))
