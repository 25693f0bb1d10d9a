"""The XNOR-popcount matrix product on packed bits (numba, the CPU's vector popcount).

The product is register-blocked. A micro-kernel owns MR rows of A and one
weight panel of NR = NV x 8 columns (``bits.to_panels``: 8 columns per 512-bit
vector, lane j = one output column). For each K word it broadcasts MR
activation words, loads NV weight vectors and does MR x NV XOR + popcount +
add into MR x NV vector accumulators that stay in registers across the whole
K loop (written as LLVM IR with explicit ``<8 x i64>`` values, so nothing
spills them to memory between words; popcount is ``intrinsics.vector_ctpop``).
Threads split the panels: a panel of K = 4096 bits is 64 words x 32 columns x
8 bytes = 16 KiB, which stays in L1 while every row of A streams past it.

Shapes: A words (M, KW) uint64 C-contiguous; panels (P, KW, NR) uint64;
out (M, P * NR) int32, out[m, n] = K - 2 * popcount(A[m] XOR W[n]) = the +-1
dot product of row m with column n (``bits`` explains the layout and padding).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from bnnctl.kernels.intrinsics import popcount64, splat, vector_ctpop
from bnnctl.kernels.threads import parallel_kernel

LANES = 8  # uint64 lanes in one 512-bit vector: output columns per vector
MR = 4  # rows of A per micro-kernel
NV = 4  # weight vectors per micro-kernel
NR = NV * LANES  # output columns per panel (what bits.to_panels is given)


def _make_microkernel(rows: int, vectors: int):
    """An intrinsic ``mk(a, panels, out, m0, p, kw, k)``: out[m0:m0+rows, p*NR:(p+1)*NR] = K - 2 * mismatches.

    The loop over the ``kw`` words carries rows x vectors ``<8 x i64>``
    accumulators as phi values: LLVM keeps them in zmm registers.
    """
    nr = vectors * LANES

    @intrinsic
    def microkernel(typingctx, a, panels, out, m0, p, kw, k):
        sig = types.void(a, panels, out, m0, p, kw, k)

        def codegen(context, builder, signature, args):
            i64, i32 = ir.IntType(64), ir.IntType(32)
            vec, vec32 = ir.VectorType(i64, LANES), ir.VectorType(i32, LANES)
            a_arr = context.make_array(signature.args[0])(context, builder, args[0])
            w_arr = context.make_array(signature.args[1])(context, builder, args[1])
            o_arr = context.make_array(signature.args[2])(context, builder, args[2])
            m0v, pv, kwv = (
                context.cast(builder, v, t, types.int64) for v, t in zip(args[3:6], signature.args[3:6], strict=True)
            )
            kv = context.cast(builder, args[6], signature.args[6], types.int64)

            def const(v):
                return ir.Constant(i64, v)

            a_row = builder.udiv(builder.extract_value(a_arr.strides, 0), const(8))  # words per A row
            o_row = builder.udiv(builder.extract_value(o_arr.strides, 0), const(4))  # int32 per out row
            panel0 = builder.mul(pv, builder.mul(kwv, const(nr)))  # first word of panel p
            ctpop = vector_ctpop(builder, vec)

            entry = builder.block
            loop = builder.function.append_basic_block("xnor.loop")
            done = builder.function.append_basic_block("xnor.done")
            builder.branch(loop)
            builder.position_at_end(loop)
            word = builder.phi(i64)
            word.add_incoming(const(0), entry)
            accs = [[builder.phi(vec) for _ in range(vectors)] for _ in range(rows)]
            for row in accs:
                for acc in row:
                    acc.add_incoming(ir.Constant(vec, [0] * LANES), entry)
            base = builder.add(panel0, builder.mul(word, const(nr)))
            weights = []
            for c in range(vectors):
                ptr = builder.gep(w_arr.data, [builder.add(base, const(c * LANES))])
                weights.append(builder.load(builder.bitcast(ptr, vec.as_pointer()), align=8))
            updated = []
            for r in range(rows):
                a_index = builder.add(builder.mul(builder.add(m0v, const(r)), a_row), word)
                activation = splat(builder, builder.load(builder.gep(a_arr.data, [a_index])), vec)
                updated.append(
                    [
                        builder.add(accs[r][c], builder.call(ctpop, [builder.xor(activation, weights[c])]))
                        for c in range(vectors)
                    ]
                )
            next_word = builder.add(word, const(1))
            word.add_incoming(next_word, loop)
            for r in range(rows):
                for c in range(vectors):
                    accs[r][c].add_incoming(updated[r][c], loop)
            builder.cbranch(builder.icmp_signed("<", next_word, kwv), loop, done)

            builder.position_at_end(done)
            k32 = splat(builder, builder.trunc(kv, i32), vec32)
            col0 = builder.mul(pv, const(nr))
            for r in range(rows):
                out_row = builder.mul(builder.add(m0v, const(r)), o_row)
                for c in range(vectors):
                    mismatches = builder.trunc(updated[r][c], vec32)
                    dot = builder.sub(k32, builder.shl(mismatches, ir.Constant(vec32, [1] * LANES)))
                    index = builder.add(out_row, builder.add(col0, const(c * LANES)))
                    ptr = builder.bitcast(builder.gep(o_arr.data, [index]), vec32.as_pointer())
                    builder.store(dot, ptr, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return microkernel


# One micro-kernel per row count: MR for the body of A, fewer for its last rows.
_mk4 = _make_microkernel(4, NV)
_mk3 = _make_microkernel(3, NV)
_mk2 = _make_microkernel(2, NV)
_mk1 = _make_microkernel(1, NV)
assert MR == 4, "the dispatch in _xnor_gemm_into names a kernel per row count up to MR"


@parallel_kernel(nogil=True)
def _xnor_gemm_into(a, panels, out, k):
    """out (M, P * NR) int32 <- +-1 dot products of A's rows with every panel column; threads split the panels."""
    m = a.shape[0]
    kw = a.shape[1]
    body = m - m % MR
    for p in prange(panels.shape[0]):
        for m0 in range(0, body, MR):
            _mk4(a, panels, out, m0, p, kw, k)
        tail = m - body
        if tail == 3:
            _mk3(a, panels, out, body, p, kw, k)
        elif tail == 2:
            _mk2(a, panels, out, body, p, kw, k)
        elif tail == 1:
            _mk1(a, panels, out, body, p, kw, k)


def xnor_gemm(a_words: np.ndarray, panels: np.ndarray, k: int, n: int) -> np.ndarray:
    """+-1 dot products (M, n) int32 of packed rows A (M, KW) with the packed weights in ``panels``.

    ``k`` is the true row length in bits (the padding bits past it are 0 in
    both operands), ``n`` the true number of columns (panels round it up to NR).
    """
    a_words = np.ascontiguousarray(a_words, dtype=np.uint64)
    if a_words.ndim != 2 or panels.ndim != 3 or a_words.shape[1] != panels.shape[1] or panels.shape[2] != NR:
        raise ValueError(f"xnor_gemm: A words {a_words.shape} do not fit panels {panels.shape} (NR = {NR})")
    if a_words.shape[1] == 0:
        return np.full((a_words.shape[0], n), k, dtype=np.int32)
    out = np.empty((a_words.shape[0], panels.shape[0] * NR), dtype=np.int32)
    _xnor_gemm_into(a_words, panels, out, k)
    return out[:, :n]


@parallel_kernel(nogil=True)
def xnor_gemm_rows(a, w, k):
    """The plain form (no panels, no register blocking): out[m, n] = k - 2 * sum popcount(a[m] ^ w[n]).

    A (M, KW), W (N, KW) uint64 rows; LLVM vectorizes the word loop. The
    reference the blocked kernel is tested against, and a benchmark row.
    """
    m, n, kw = a.shape[0], w.shape[0], a.shape[1]
    out = np.empty((m, n), dtype=np.int32)
    for i in prange(m):
        for j in range(n):
            mismatches = 0
            for t in range(kw):
                mismatches += popcount64(a[i, t] ^ w[j, t])
            out[i, j] = k - 2 * mismatches
    return out


def aligned_copy(array: np.ndarray, alignment: int = 64) -> np.ndarray:
    """A C-contiguous copy of ``array`` whose data starts on an ``alignment``-byte boundary (whole cache lines)."""
    raw = np.empty(array.nbytes + alignment, dtype=np.uint8)
    offset = (-raw.ctypes.data) % alignment
    aligned = raw[offset : offset + array.nbytes].view(array.dtype).reshape(array.shape)
    aligned[...] = array
    return aligned
