"""The LLVM intrinsics numba does not offer, defined once: popcount (scalar and vector) and float32 fma.

numba supports neither ``np.bitwise_count`` nor ``int.bit_count``, so popcount
comes from LLVM's ``ctpop`` through ``numba.extending.intrinsic``: on a CPU
with AVX-512 VPOPCNTDQ, LLVM emits ``vpopcntq`` for the vector form.

* ``popcount64``: an ``@intrinsic`` for njit code, popcount of one uint64.
* ``vector_ctpop`` and ``splat``: IR builders for kernels written as LLVM IR
  on ``<lanes x i64>`` values (``xnor``'s micro-kernel).
* ``fma32``: a * b + c in float32 with one rounding (LLVM ``fma``), where
  torch's vectorized Adam has one (``adam``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _njit_intrinsic(defn: Callable[..., Any]) -> Callable[..., Any]:
    """``@intrinsic``, typed as njit code calls it: numba's stubs keep ``typingctx`` in the call and return Never."""
    return intrinsic(defn)


@_njit_intrinsic
def popcount64(typingctx, x):
    """popcount of a uint64 through LLVM's ``ctpop`` (one ``popcnt``; LLVM vectorizes it in loops)."""
    if not isinstance(x, types.Integer):
        return None
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        value = context.cast(builder, args[0], signature.args[0], types.uint64)
        return builder.ctpop(value)

    return sig, codegen


def vector_ctpop(builder: ir.IRBuilder, vec: ir.VectorType) -> ir.Function:
    """LLVM's ``llvm.ctpop.v<n>i64`` for ``vec`` (``<n x i64>``), declared in the builder's module once."""
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec]), f"llvm.ctpop.v{vec.count}i64")


def splat(builder: ir.IRBuilder, value: ir.Value, vec: ir.VectorType) -> ir.Value:
    """``value`` broadcast to every lane of ``vec`` (insert into lane 0, shuffle with an all-zero mask)."""
    i32 = ir.IntType(32)
    one = builder.insert_element(ir.Constant(vec, ir.Undefined), value, ir.Constant(i32, 0))
    return builder.shuffle_vector(
        one, ir.Constant(vec, ir.Undefined), ir.Constant(ir.VectorType(i32, vec.count), [0] * vec.count)
    )


@_njit_intrinsic
def fma32(typingctx, a, b, c):
    """a * b + c with one rounding (LLVM ``fma``), where torch's vectorized Adam has one."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.FloatType(), [ir.FloatType()] * 3), "llvm.fma.f32"
        )
        return builder.call(fn, args)

    return sig, codegen
