"""Exact low-precision products of +-1 operands: the forward of a binary layer in int8 or bf16, not float32.

When both operands of a layer's product are exactly +-1 (or ternary
{-1, 0, +1}), every element product is -1, 0 or +1 and the dot product is an
integer of magnitude <= K. The same holds, times s, after a dropout whose
scale s = 1 / (1 - p) is a power of two (p = 0.5: survivors become +-2, the
dropped units 0). Such values are exact in int8 and in bf16, so the
product can run on the CPU's or GPU's low-precision units with no change to
its result, as long as the accumulation and the output are wide enough:

* ``int8``: ``torch._int_mm``, int8 x int8 with int32 accumulation and
  output (AMX / VNNI on x86, DP4A / tensor cores on CUDA): exact for any K.
  On a 2-core CPU with AVX-512 VNNI and BF16 its 256x4096 by 4096x4096
  product ran about 4.6x faster than float32's; on an AVX2-only CPU it is
  emulated and 55x slower (``cpu_has_fast_int8_and_bf16``).
* ``bf16``: bf16 x bf16 with float32 accumulation *and float32 output*
  (``torch.mm(..., out_dtype=torch.float32)``, CUDA only in this torch). A
  bf16 output would round integers above 256, so it is not offered where
  float32 output is unavailable.
* ``fp32``: the plain float32 product (the reference).

The backward of such a layer multiplies the real incoming gradient by a +-1
operand: that operand is exact in bf16, the gradient is rounded to bf16 (8
significant bits) and the result accumulates in float32 and is returned as
bf16. So the forward (and every prediction) is exact, the gradients are
rounded; ``bnnctl`` measures that learning curves stay within seed noise.

Which layers of a model have two such operands is ``nn.products``' walk over
the model; this module is the formats and the product itself, which the
layers call.
"""

from __future__ import annotations

import torch

from bnnctl.cpu import cpu_has_native_bf16, cpu_has_vnni
from bnnctl.errors import ConfigError

FORMATS = ("auto", "fp32", "bf16", "int8")


def bf16_with_fp32_output(device: torch.device) -> bool:
    """Whether ``torch.mm`` takes bf16 operands to a float32 output on ``device`` (CUDA in torch >= 2.8)."""
    if device.type != "cuda":
        return False
    try:
        one = torch.ones(16, 16, device=device, dtype=torch.bfloat16)
        return torch.mm(one, one, out_dtype=torch.float32).dtype == torch.float32
    except (TypeError, RuntimeError, NotImplementedError):
        return False


def int8_product_works(device: torch.device) -> bool:
    """Whether ``torch._int_mm`` runs on ``device`` (it needs M > 16 and sizes in multiples of 8 on CUDA)."""
    try:
        a = torch.ones(32, 32, device=device, dtype=torch.int8)
        return int(torch._int_mm(a, a)[0, 0]) == 32
    except (RuntimeError, NotImplementedError, AttributeError):
        return False


def cpu_has_fast_int8_and_bf16() -> bool:
    """Whether this CPU runs the int8 path in hardware: int8 dot products (VNNI) and bf16 ones (AVX-512 BF16 or AMX).

    The int8 path's forward is ``torch._int_mm`` and its backward bf16 products.
    Without VNNI and native bf16 oneDNN emulates both: on a 2-core AVX2 EPYC
    (no AVX-512) a 100 x 2048 by 2048 x 2048 product took 13.6 ms in float32,
    760 ms in int8 and 230-3200 ms in bf16, so the "fast" path was 25x slower
    per epoch there. ``auto`` then keeps float32.
    """
    return not missing_int8_units()


def missing_int8_units() -> list[str]:
    """The hardware units the int8 path needs that this CPU lacks: 'VNNI', 'native bf16'."""
    return [unit for unit, present in (("VNNI", cpu_has_vnni()), ("native bf16", cpu_has_native_bf16())) if not present]


def bf16_emulated_reason() -> str:
    """Why a bf16 variant is not worth timing on this CPU (the benches' ``skipped``)."""
    return f"bf16 is emulated on this CPU ({torch.backends.cpu.get_cpu_capability()}: no AVX-512 BF16 or AMX)"


def slow_format_warning(fmt: str, device: torch.device) -> str | None:
    """Why an explicitly chosen ``fmt`` will be slow here (emulated low-precision units), or None.

    Only int8 reaches this on a CPU: bf16 is refused there (no float32 output).
    """
    if fmt in ("int8", "bf16") and device.type == "cpu" and (missing := missing_int8_units()):
        return (
            f"train.binary_matmul={fmt}: this CPU ({torch.backends.cpu.get_cpu_capability()}) has no "
            f"{' or '.join(missing)}, so the int8 forward and bf16 backward are emulated, many times slower than "
            "float32; the forward stays exact, but 'auto' (float32 here) trains faster"
        )
    return None


def resolve_format(name: str, device: torch.device) -> str:
    """``auto`` -> the fastest exact format the device has; others are checked.

    CPU: int8 where it runs in hardware (``cpu_has_fast_int8_and_bf16``), else
    float32; CUDA: bf16 with float32 output, where torch has it.
    """
    if name not in FORMATS:
        raise ConfigError(f"train.binary_matmul must be one of {', '.join(FORMATS)}, got {name!r}")
    if name == "auto":  # int8 on CUDA needs sizes in multiples of 8 (and M > 16): never picked there by itself
        if device.type == "cpu":
            return "int8" if cpu_has_fast_int8_and_bf16() and int8_product_works(device) else "fp32"
        return "bf16" if bf16_with_fp32_output(device) else "fp32"
    if name == "bf16" and not bf16_with_fp32_output(device):
        raise ConfigError(
            f"train.binary_matmul=bf16 needs a bf16 product with float32 output, which {device.type} lacks in "
            f"torch {torch.__version__} (a bf16 output rounds sums above 256); use int8 (exact) or fp32"
        )
    if name == "int8" and not int8_product_works(device):
        raise ConfigError(f"train.binary_matmul=int8: torch._int_mm does not run on {device} here; use fp32")
    return name


def _product(x: torch.Tensor, w: torch.Tensor, fmt: str) -> torch.Tensor:
    """x (N, K) @ w (O, K)^T in ``fmt``, as float32; exact for small-integer operands ({-1, 0, +1}, {-2, 0, +2})."""
    if fmt == "int8":
        return torch._int_mm(x.to(torch.int8), w.to(torch.int8).t()).to(torch.float32)
    return torch.mm(x.to(torch.bfloat16), w.to(torch.bfloat16).t(), out_dtype=torch.float32)


class ExactLowPrecisionLinear(torch.autograd.Function):
    """y = x_b @ w_b^T in an exact low-precision format; backward in bf16 against the +-1 operands.

    Shapes: x_b (N, K) and w_b (O, K), values in {-1, 0, +1} (x_b: or {-s, 0, +s} after dropout); y (N, O) float32.
    Saved for backward: both operands in bf16 (half the bytes of float32, exact).
    grad_x = (g16 @ w16) and grad_w = (g16^T @ x16), with g16 = bf16(grad_y).
    """

    @staticmethod
    def forward(ctx, x_b: torch.Tensor, w_b: torch.Tensor, fmt: str) -> torch.Tensor:
        ctx.save_for_backward(x_b.to(torch.bfloat16), w_b.to(torch.bfloat16))
        return _product(x_b, w_b, fmt)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x16, w16 = ctx.saved_tensors
        g16 = grad.to(torch.bfloat16)
        grad_x = (g16 @ w16).to(grad.dtype) if ctx.needs_input_grad[0] else None
        grad_w = (g16.t() @ x16).to(grad.dtype) if ctx.needs_input_grad[1] else None
        return grad_x, grad_w, None


def exact_linear(x_b: torch.Tensor, w_b: torch.Tensor, fmt: str) -> torch.Tensor:
    """F.linear(x_b, w_b) without bias, computed in ``fmt`` (fp32: the plain product); x_b may be (..., K)."""
    if fmt == "fp32":
        return torch.nn.functional.linear(x_b, w_b)
    lead = x_b.shape[:-1]
    flat = x_b.reshape(-1, x_b.shape[-1])
    if not torch.is_grad_enabled() or not (flat.requires_grad or w_b.requires_grad):
        out = _product(flat, w_b, fmt)
    else:
        out = ExactLowPrecisionLinear.apply(flat, w_b, fmt)
    return out.reshape(*lead, w_b.shape[0])
