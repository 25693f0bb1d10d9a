"""``bnnctl bench gemm``: the packed XNOR-popcount product against PyTorch's float and integer products.

Methods, each on the same +-1 operands A (M, K) and W (N, K), weights prepared
once as a deployed model would hold them:

* ``packed``: ``kernels.xnor.xnor_gemm`` on pre-packed activations;
* ``packed+pack``: the same, packing the float activations first (what a
  layer fed by a float op pays);
* ``packed_rows``: the unblocked form (``kernels.xnor.xnor_gemm_rows``), to show
  what register blocking buys;
* ``float32``: ``torch.mm``, PyTorch's default CPU path (MKL);
* ``float32_onednn``: oneDNN's inner product (``torch._C._nn.mkldnn_linear``,
  operands already in oneDNN layout);
* ``bfloat16``: ``torch.mm`` in bf16 (oneDNN; AMX where the CPU has it),
  left out where the CPU has no native bf16 (AVX2: emulated, hundreds of
  times slower than float32);
* ``int8``: ``torch._int_mm`` where this PyTorch has it on CPU and the CPU
  has VNNI (without it, 55x slower than float32 at 100 x 2048 x 2048).

The packed results are checked against the float product (they must be
equal) before anything is timed. Ops are counted as a float GEMM's: 2MNK.

``--sizes``: square M = K = N, time per product of ``packed``, the Hadamard
block product (``hadamard_block``, beta = 16), ``float32``,
``float32_onednn``, and apart from them the textbook triple loop (``naive``,
the post's "classical" CMMA, ``kernels.naive``, only up to ``naive_max``: it takes minutes beyond).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from bnnctl.bench.timing import interleaved_medians
from bnnctl.kernels.bits import pack_signs, to_panels
from bnnctl.kernels.hadamard import hadamard_gemm, hadamard_panels
from bnnctl.kernels.naive import naive_matmul
from bnnctl.kernels.xnor import NR, aligned_copy, xnor_gemm, xnor_gemm_rows
from bnnctl.nn import lowp
from bnnctl.packed.hadamard import hadamard_pack

REFERENCE = "float32_onednn"
DEFAULT = "float32"


def _operands(m: int, k: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 2, (m, k), generator=g).float() * 2 - 1
    w = torch.randint(0, 2, (n, k), generator=g).float() * 2 - 1
    return a, w


def _has_int_mm() -> bool:
    try:
        torch._int_mm(torch.ones(32, 32, dtype=torch.int8), torch.ones(32, 32, dtype=torch.int8))
        return True
    except (RuntimeError, AttributeError):
        return False


def skipped_methods() -> dict[str, str]:
    """Methods left out on this CPU -> why: emulated ones (hundreds of times slower than float32, not worth timing)."""
    skipped = {}
    if not lowp.cpu_has_native_bf16():
        skipped["bfloat16"] = lowp.bf16_emulated_reason()
    if not _has_int_mm():
        skipped["int8"] = f"torch._int_mm does not run on the CPU in torch {torch.__version__}"
    elif not lowp.cpu_has_vnni():
        capability = torch.backends.cpu.get_cpu_capability()
        skipped["int8"] = f"int8 products are emulated on this CPU ({capability}: no AVX-512 VNNI)"
    return skipped


def product_methods(a: torch.Tensor, w: torch.Tensor) -> dict[str, Callable[[], object]]:
    """Zero-argument calls computing A W^T each way; the packed ones checked equal to the float product first."""
    k, n = a.shape[1], w.shape[0]
    a_np = a.numpy()
    a_words, w_words = pack_signs(a_np), pack_signs(w.numpy())
    panels = aligned_copy(to_panels(w_words, NR))
    expected = (a @ w.T).numpy()
    if not np.array_equal(xnor_gemm(a_words, panels, k, n), expected):
        raise AssertionError("the packed product differs from the float product")
    w_t = w.T.contiguous()
    a_dnn, w_dnn = a.to_mkldnn(), w.to_mkldnn()
    a_bf, w_bf = a.bfloat16(), w_t.bfloat16()
    methods: dict[str, Callable[[], object]] = {
        "packed": lambda: xnor_gemm(a_words, panels, k, n),
        "packed+pack": lambda: xnor_gemm(pack_signs(a_np), panels, k, n),
        "packed_rows": lambda: xnor_gemm_rows(a_words, w_words, k),
        DEFAULT: lambda: torch.mm(a, w_t),
        REFERENCE: lambda: torch._C._nn.mkldnn_linear(a_dnn, w_dnn, None),
    }
    skipped = skipped_methods()
    if "bfloat16" not in skipped:
        methods["bfloat16"] = lambda: torch.mm(a_bf, w_bf)
    if "int8" not in skipped:
        a_i8, w_i8 = a.to(torch.int8), w_t.to(torch.int8)
        methods["int8"] = lambda: torch._int_mm(a_i8, w_i8)
    return methods


def bench_products(
    ms: list[int], kns: list[int], rounds: int, progress: Callable[[str], None] = lambda _: None
) -> list[dict[str, Any]]:
    """One row per (M, K = N, method): ms per product, GOP/s, and ratios to oneDNN float32 and the default."""
    rows = []
    for kn in kns:
        for m in ms:
            progress(f"M={m} K=N={kn}")
            a, w = _operands(m, kn, kn)
            seconds = interleaved_medians(product_methods(a, w), rounds)
            ops = 2.0 * m * kn * kn
            for method, s in seconds.items():
                rows.append(
                    {
                        "M": m, "K": kn, "N": kn, "method": method, "ms": s * 1e3, "GOP/s": ops / s / 1e9,
                        f"x_{REFERENCE}": seconds[REFERENCE] / s, f"x_{DEFAULT}": seconds[DEFAULT] / s,
                    }
                )  # fmt: skip
    return rows


def size_methods(n: int, beta: int = 16) -> dict[str, Callable[[], object]]:
    """Square products of size n: packed, Hadamard block (beta), float32 (MKL, oneDNN)."""
    a, w = _operands(n, n, n)
    x, y = torch.randn(n, n), torch.randn(n, n)  # real operands for the Hadamard product
    a_words, a_scales = hadamard_pack(x, beta)
    h_panels, h_scale_panels = hadamard_panels(*hadamard_pack(y, beta))
    base = product_methods(a, w)
    methods = {name: base[name] for name in ("packed", "float32", "float32_onednn")}
    methods["hadamard_block"] = lambda: hadamard_gemm(a_words, a_scales, h_panels, h_scale_panels, n, n, beta)
    return methods


def naive_method(n: int) -> Callable[[], object]:
    a, w = _operands(n, n, n)
    a_np, b_np = a.numpy(), w.T.contiguous().numpy()
    return lambda: naive_matmul(a_np, b_np)


def bench_sizes(
    sizes: list[int], rounds: int, naive_max: int, progress: Callable[[str], None] = lambda _: None
) -> list[dict[str, Any]]:
    """One row per (size, method): seconds per product and GOP/s.

    The naive loop is timed on its own after the others: interleaved, its
    seconds-long calls slowed the next methods' calls by up to 3x (measured at
    1024), and it is two orders of magnitude away from them anyway.
    """
    rows = []
    for n in sizes:
        progress(f"M=K=N={n}")
        seconds = interleaved_medians(size_methods(n), rounds, min_sample_s=0.01)
        if n <= naive_max:
            seconds |= interleaved_medians({"naive": naive_method(n)}, min(rounds, 3), min_sample_s=0.01)
        for method, s in seconds.items():
            rows.append({"size": n, "method": method, "seconds": s, "GOP/s": 2.0 * n**3 / s / 1e9})
    return rows
