"""One-pass compression and decoding loops (numba) for the gradient messages of ``distributed.compress``.

Written as torch ops, a 1-bit message of a 3M-element bucket took about
170 ms per step here: a dozen full-size temporaries (the sum, its signs as
bytes, padding, the byte-weighted sum over groups of 8, the decoded signs, the
scales repeated per element, the residual). These loops read the gradient and
the residual once, write the bits, the scales and the new residual in the same
pass, and decode every rank's message straight into the running sum.

Layouts (as ``distributed.compress`` states them):

* bits: ``bits``' layout seen as bytes (``bits.pack_sign_bytes``): element i
  is bit i % 8 of byte i // 8, least significant first; 1 where c = g + e >= 0
  (sign(0) = +1); the pad bits of the last byte are 0.
* scales: one float32 per block of ``beta`` consecutive elements, mean |c| over
  the block (the last block may be shorter); ``sign`` is one block of n.
* bf16 payload: the upper 16 bits of c's float32 pattern after rounding to
  nearest even (NaN stays NaN), as int16; decoding shifts them back.

Arithmetic: c = g + e and e' = c - d are single float32 operations, as torch's
would be; block means are summed in float64 and rounded to float32 once.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import prange

from bnnctl.kernels.threads import parallel_kernel


@parallel_kernel(nogil=True)
def _sum_and_block_scales(g, e, c, beta, scales):
    """c = g + e; scales[b] = mean |c| over block b (float64 sums)."""
    n = g.shape[0]
    blocks = scales.shape[0]
    for b in prange(blocks):
        lo = b * beta
        hi = min(lo + beta, n)
        total = 0.0
        for i in range(lo, hi):
            ci = g[i] + e[i]
            c[i] = ci
            total += abs(ci)
        scales[b] = np.float32(total / (hi - lo))


@parallel_kernel(nogil=True)
def _sum_abs_chunks(g, e, c, chunk, partial):
    """c = g + e; partial[k] = sum |c| over chunk k (float64): the pieces of one tensor-wide mean."""
    n = g.shape[0]
    for k in prange(partial.shape[0]):
        total = 0.0
        for i in range(k * chunk, min((k + 1) * chunk, n)):
            ci = g[i] + e[i]
            c[i] = ci
            total += abs(ci)
        partial[k] = total


@parallel_kernel(nogil=True)
def _pack_and_residual(c, scales, beta, packed, residual):
    """packed bits of c >= 0; residual = c - (+-scale of the element's block)."""
    n = c.shape[0]
    for byte in prange(packed.shape[0]):
        bits = 0
        lo = byte * 8
        b = lo // beta  # one division per byte; the block advances by comparison
        end = (b + 1) * beta
        for j in range(min(8, n - lo)):
            i = lo + j
            if i >= end:
                b += 1
                end += beta
            s = scales[b]
            if c[i] >= 0:
                bits |= 1 << j
                residual[i] = c[i] - s
            else:
                residual[i] = c[i] + s
        packed[byte] = bits


@parallel_kernel(nogil=True)
def _add_decoded_signs(packed, scales, beta, total):
    """total += the message's +-scale per element."""
    n = total.shape[0]
    for byte in prange(packed.shape[0]):
        bits = packed[byte]
        lo = byte * 8
        b = lo // beta
        end = (b + 1) * beta
        for j in range(min(8, n - lo)):
            i = lo + j
            if i >= end:
                b += 1
                end += beta
            s = scales[b]
            total[i] += s if (bits >> j) & 1 else -s


@parallel_kernel(nogil=True)
def _pack_and_residual_bytewise(c, scales, block_bytes, packed, residual):
    """``_pack_and_residual`` when every byte lies in one block (beta a multiple of 8, or one block):
    a fixed 8-element body per byte that the compiler can unroll, then the partial last byte."""
    n = c.shape[0]
    full = n // 8
    for byte in prange(full):
        s = scales[byte // block_bytes]
        bits: int | np.int64 = 0  # a local annotation: not evaluated, numba types the kernel as before
        for j in range(8):
            i = byte * 8 + j
            positive = c[i] >= 0
            bits |= np.int64(positive) << j
            residual[i] = c[i] - (s if positive else -s)
        packed[byte] = bits
    if full < packed.shape[0]:
        s = scales[full // block_bytes]
        bits = 0
        for i in range(full * 8, n):
            positive = c[i] >= 0
            bits |= np.int64(positive) << (i - full * 8)
            residual[i] = c[i] - (s if positive else -s)
        packed[full] = bits


@parallel_kernel(nogil=True)
def _add_decoded_signs_bytewise(packed, scales, block_bytes, total):
    n = total.shape[0]
    full = n // 8
    for byte in prange(full):
        s = scales[byte // block_bytes]
        bits = packed[byte]
        for j in range(8):
            total[byte * 8 + j] += s if (bits >> j) & 1 else -s
    if full < packed.shape[0]:
        s = scales[full // block_bytes]
        bits = packed[full]
        for i in range(full * 8, n):
            total[i] += s if (bits >> (i - full * 8)) & 1 else -s


@parallel_kernel(nogil=True)
def _bf16_round_and_residual(g, e, payload, residual):
    """payload = bf16(g + e) (round to nearest even) as int16 bits; residual = (g + e) - payload."""
    n = g.shape[0]
    for i in prange(n):
        c = np.float32(g[i] + e[i])
        u = np.uint32(c.view(np.uint32))
        if (u & np.uint32(0x7F800000)) == np.uint32(0x7F800000) and (u & np.uint32(0x007FFFFF)) != 0:
            top = (u >> np.uint32(16)) | np.uint32(0x40)  # a NaN stays a (quiet) NaN
        else:
            top = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
        payload[i] = np.int16(np.uint16(top))
        back = np.uint32(top << np.uint32(16)).view(np.float32)
        residual[i] = c - back


@parallel_kernel(nogil=True)
def _add_decoded_bf16(payload, total):
    for i in prange(total.shape[0]):
        total[i] += np.uint32(np.uint32(np.uint16(payload[i])) << np.uint32(16)).view(np.float32)


SUM_CHUNK = 1 << 16  # elements per partial sum of a tensor-wide mean


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def sign_message(g: torch.Tensor, e: torch.Tensor | None, beta: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(packed bits (ceil(n/8),) uint8, scales (ceil(n/beta),) float32, new residual (n,)) of c = g + e."""
    n = g.numel()
    e = torch.zeros_like(g) if e is None else e
    c = torch.empty_like(g)
    if beta >= n:  # one scale for the tensor: summed in parallel chunks, then divided once
        partial = np.empty(-(-n // SUM_CHUNK), dtype=np.float64)
        _sum_abs_chunks(_np(g), _np(e), _np(c), SUM_CHUNK, partial)
        scales = torch.tensor([partial.sum() / n], dtype=torch.float32)
        beta = n
    else:
        scales = torch.empty(-(-n // beta), dtype=torch.float32)
        _sum_and_block_scales(_np(g), _np(e), _np(c), beta, _np(scales))
    packed = torch.empty(-(-n // 8), dtype=torch.uint8)
    residual = torch.empty_like(g)
    if beta % 8 == 0 or beta >= n:
        _pack_and_residual_bytewise(_np(c), _np(scales), _block_bytes(beta, n), _np(packed), _np(residual))
    else:
        _pack_and_residual(_np(c), _np(scales), beta, _np(packed), _np(residual))
    return packed, scales, residual


def _block_bytes(beta: int, n: int) -> int:
    """Bytes per block when blocks are whole bytes (a single block: more than the message has)."""
    return beta // 8 if beta < n else -(-n // 8) + 1


def add_decoded_signs(total: torch.Tensor, packed: torch.Tensor, scales: torch.Tensor, beta: int) -> None:
    """total (n,) float32 += the decoded message (in place)."""
    n = total.numel()
    if beta % 8 == 0 or beta >= n:
        _add_decoded_signs_bytewise(_np(packed), _np(scales), _block_bytes(beta, n), _np(total))
    else:
        _add_decoded_signs(_np(packed), _np(scales), beta, _np(total))


def bf16_message(g: torch.Tensor, e: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(bf16 payload (n,), new residual (n,)) of c = g + e."""
    e = torch.zeros_like(g) if e is None else e
    payload = torch.empty(g.numel(), dtype=torch.int16)
    residual = torch.empty_like(g)
    _bf16_round_and_residual(_np(g), _np(e), _np(payload), _np(residual))
    return payload.view(torch.bfloat16), residual


def add_decoded_bf16(total: torch.Tensor, payload: torch.Tensor) -> None:
    _add_decoded_bf16(_np(payload.view(torch.int16)), _np(total))
