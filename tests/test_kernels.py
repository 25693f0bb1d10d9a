"""Every kernel of ``bnnctl.kernels`` against plain numpy, on small random inputs (K across word boundaries).

Integer and bit results must be equal. Float kernels are compared with a
numpy loop doing the same float32 operations in the same order, so they must
be equal too; the fma reference rounds a*b+c in float64 and then to float32,
which could differ from one rounding only if the float64 result fell exactly on
a float32 midpoint (about 2^-29 per operation; the seeds below do not hit one).
"""

from __future__ import annotations

import ast
from pathlib import Path

import numba
import numpy as np
import pytest
import torch
from numba import njit

import bnnctl.kernels
from bnnctl.kernels import adam, bits, compress, epilogue, hadamard, im2col, intrinsics, naive, threads, xnor

KS = [1, 5, 63, 64, 65, 130, 200]  # row lengths in bits: within, at and across word boundaries


def signs(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


def reference_words(x: np.ndarray) -> np.ndarray:
    """The documented layout, bit by bit: element k -> word k // 64, bit k % 64; 1 where x >= 0."""
    *lead, k = x.shape
    words = np.zeros((*lead, -(-k // 64)), dtype=np.uint64)
    for index in np.ndindex(*lead):
        for i in range(k):
            if x[index][i] >= 0:
                words[index][i // 64] |= np.uint64(1) << np.uint64(i % 64)
    return words


# --- intrinsics -------------------------------------------------------------------------------


def test_popcount64_counts_the_set_bits():
    count = njit(lambda x: intrinsics.popcount64(x))
    rng = np.random.default_rng(0)
    values = [0, 1, 2**63, 2**64 - 1, *rng.integers(0, 2**63, 50, dtype=np.uint64).tolist()]
    for value in values:
        assert count(np.uint64(value)) == bin(value).count("1")


def test_fma32_rounds_once():
    fma = njit(lambda a, b, c: intrinsics.fma32(a, b, c))
    a = np.float32(1 + 2**-12)  # a * a = 1 + 2^-11 + 2^-24: the 2^-24 is lost when the product is rounded
    assert fma(a, a, np.float32(-(1 + 2**-11))) == np.float32(2**-24)
    assert a * a - np.float32(1 + 2**-11) == 0  # what two roundings give
    rng = np.random.default_rng(1)
    x, y, z = (rng.standard_normal(200).astype(np.float32) for _ in range(3))
    expected = (x.astype(np.float64) * y + z).astype(np.float32)
    assert np.array_equal([fma(*t) for t in zip(x, y, z, strict=True)], expected)


# --- bits -------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", KS)
def test_pack_signs_is_the_documented_layout_and_round_trips(k):
    rng = np.random.default_rng(k)
    x = rng.standard_normal((3, k)).astype(np.float32)
    x[0, :: max(1, k // 3)] = 0.0  # sign(0) = +1
    words = bits.pack_signs(x)
    assert words.dtype == np.uint64 and np.array_equal(words, reference_words(x))
    assert np.array_equal(bits.unpack_signs(words, k), np.where(x >= 0, 1.0, -1.0).astype(np.float32))
    assert np.array_equal(bits.unpack_bits(bits.pack_bits(x >= 0), k), x >= 0)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 64, 65, 200])
def test_sign_bytes_are_the_words_seen_as_bytes(n):
    c = torch.randn(n, generator=torch.Generator().manual_seed(n))
    c[::5] = 0.0
    packed = bits.pack_sign_bytes(c)
    words = bits.pack_signs(c.numpy()[None])[0]
    assert packed.dtype == torch.uint8 and packed.numel() == -(-n // 8)
    assert np.array_equal(packed.numpy(), words.view(np.uint8)[: -(-n // 8)])
    assert torch.equal(bits.unpack_sign_bytes(packed, n), torch.where(c >= 0, 1.0, -1.0))


@pytest.mark.gpu
def test_sign_bytes_on_another_device_are_the_same_bits():
    c = torch.randn(1001, generator=torch.Generator().manual_seed(0))
    c[::7] = 0.0
    packed = bits.pack_sign_bytes(c.cuda())
    assert packed.is_cuda and torch.equal(packed.cpu(), bits.pack_sign_bytes(c))
    assert torch.equal(
        bits.unpack_sign_bytes(packed, 1001).cpu(), bits.unpack_sign_bytes(bits.pack_sign_bytes(c), 1001)
    )


@pytest.mark.parametrize("channels, positions", [(1, 1), (70, 1), (130, 1), (5, 9), (64, 4), (70, 25)])
def test_channels_last_signs_are_pack_signs_of_the_transpose(channels, positions):
    rng = np.random.default_rng(channels * positions)
    x = rng.standard_normal((3, channels, positions)).astype(np.float32)
    x[0, 0] = 0.0
    expected = reference_words(x.transpose(0, 2, 1))
    assert np.array_equal(bits.pack_signs_channels_last(x), expected)


def test_panels_hold_row_p_lanes_plus_j_at_lane_j():
    rng = np.random.default_rng(2)
    words = rng.integers(0, 2**63, (70, 3), dtype=np.uint64)
    panels = bits.to_panels(words, 32)
    assert panels.shape == (3, 3, 32)
    for p, k, j in [(0, 0, 0), (1, 2, 5), (2, 1, 5)]:
        assert panels[p, k, j] == words[p * 32 + j, k]
    assert not panels[2, :, 6:].any()  # rows past N are zero words
    assert np.array_equal(bits.from_panels(panels, 70), words)


# --- XNOR-popcount GEMM -----------------------------------------------------------------------


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("m, n", [(1, 1), (3, 31), (4, 33), (9, 70)])
def test_xnor_gemm_is_the_integer_dot_product(m, k, n):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a, w = signs(rng, m, k), signs(rng, n, k)
    expected = a.astype(np.int64) @ w.astype(np.int64).T
    a_words, w_words = bits.pack_signs(a), bits.pack_signs(w)
    panels = xnor.aligned_copy(bits.to_panels(w_words, xnor.NR))
    assert np.array_equal(xnor.xnor_gemm(a_words, panels, k, n), expected)
    assert np.array_equal(xnor.xnor_gemm_rows(a_words, w_words, k), expected)


def test_aligned_copy_starts_on_a_cache_line():
    array = np.arange(100, dtype=np.uint64).reshape(10, 10)
    copy = xnor.aligned_copy(array)
    assert copy.ctypes.data % 64 == 0 and np.array_equal(copy, array) and copy.flags.c_contiguous


# --- Hadamard block product -------------------------------------------------------------------


@pytest.mark.parametrize("k, beta", [(50, 16), (64, 64), (200, 100), (130, 3), (129, 1), (65, 24)])
def test_hadamard_gemm_is_the_blockwise_sum_in_float32(k, beta):
    rng = np.random.default_rng(k + beta)
    m, n = 5, 37
    a, w = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((n, k)).astype(np.float32)
    layout = hadamard.BlockLayout(k, beta)
    a_scales = rng.random((m, layout.blocks)).astype(np.float32)
    w_scales = rng.random((n, layout.blocks)).astype(np.float32)
    a_words, w_words = layout.pack_signs(a), layout.pack_signs(w)
    # the layout: each element's sign at its slot
    slots = layout.slot_positions()
    assert np.array_equal(bits.unpack_bits(a_words, layout.words * 64)[:, slots], a >= 0)
    assert not bits.unpack_bits(a_words, layout.words * 64)[:, np.setdiff1d(np.arange(layout.words * 64), slots)].any()
    # the product, block by block in the kernel's order of float32 operations
    sa, sw = np.where(a >= 0, 1, -1), np.where(w >= 0, 1, -1)
    expected = np.zeros((m, n), dtype=np.float32)
    for j, length in enumerate(layout.lengths()):
        block = slice(j * beta, j * beta + length)
        mismatches = (sa[:, None, block] != sw[None, :, block]).sum(-1)
        scale = a_scales[:, j, None] * w_scales[None, :, j]
        expected += scale * (length - 2 * mismatches).astype(np.float32)
    panels, scale_panels = hadamard.hadamard_panels(w_words, w_scales)
    out = hadamard.hadamard_gemm(a_words, a_scales, panels, scale_panels, k, n, beta)
    assert out.dtype == np.float32 and np.array_equal(out, expected)


# --- im2col and the epilogues -----------------------------------------------------------------


@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 1)])
def test_im2col_gathers_each_window_with_zero_words_outside(stride, padding):
    rng = np.random.default_rng(stride * 10 + padding)
    n, h, w, cw, kh, kw = 2, 5, 4, 2, 3, 2
    words = rng.integers(1, 2**63, (n, h * w, cw), dtype=np.uint64)
    out_h, out_w = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    padded = np.zeros((n, h + 2 * padding, w + 2 * padding, cw), dtype=np.uint64)
    padded[:, padding : padding + h, padding : padding + w] = words.reshape(n, h, w, cw)
    expected = np.stack(
        [
            padded[:, y * stride : y * stride + kh, x * stride : x * stride + kw].reshape(n, -1)
            for y in range(out_h)
            for x in range(out_w)
        ],
        axis=1,
    ).reshape(n * out_h * out_w, kh * kw * cw)
    assert np.array_equal(im2col.im2col_words(words, h, w, kh, kw, stride, padding, out_h, out_w), expected)


@pytest.mark.parametrize("channels", [1, 63, 64, 65, 130])
def test_threshold_pack_is_the_sign_of_dot_minus_threshold_flipped(channels):
    rng = np.random.default_rng(channels)
    dots = rng.integers(-20, 20, (6, channels)).astype(np.int32)
    t = rng.integers(-20, 20, channels).astype(np.int32)
    flip = rng.random(channels) < 0.3
    expected = bits.pack_bits((dots >= t) != flip)
    assert np.array_equal(epilogue.threshold_pack(dots, t, flip), expected)


@pytest.mark.parametrize("pool", [1, 2, 3])
@pytest.mark.parametrize("channels", [3, 70])
def test_conv_epilogue_is_max_pool_then_thresholds(pool, channels):
    rng = np.random.default_rng(pool * 100 + channels)
    n, out_h, out_w = 2, 5, 7
    dots = rng.integers(-30, 30, (n, out_h * out_w, channels)).astype(np.int32)
    correction = rng.integers(-5, 5, (out_h * out_w, channels)).astype(np.int32)
    t = rng.integers(-20, 20, channels).astype(np.int32)
    flip = rng.random(channels) < 0.3
    ph, pw = out_h // pool, out_w // pool
    full = (dots + correction).reshape(n, out_h, out_w, channels)[:, : ph * pool, : pw * pool]
    pooled = full.reshape(n, ph, pool, pw, pool, channels).max(axis=(2, 4)).reshape(n, ph * pw, channels)
    expected = bits.pack_bits((pooled >= t) != flip)
    assert np.array_equal(epilogue.conv_epilogue_bits(dots, correction, out_h, out_w, pool, t, flip), expected)


# --- compression ------------------------------------------------------------------------------


def reference_sign_message(g: np.ndarray, e: np.ndarray, beta: int):
    """c = g + e; per block the mean |c| summed in order in float64; the bits; c minus the decoded sign."""
    c = g + e
    scales = np.array(
        [
            np.cumsum(np.abs(c[lo : lo + beta]), dtype=np.float64)[-1] / len(c[lo : lo + beta])
            for lo in range(0, len(c), beta)
        ]
    ).astype(np.float32)
    decoded = np.where(c >= 0, 1, -1) * np.repeat(scales, beta)[: len(c)]
    return np.packbits(c >= 0, bitorder="little"), scales, c - decoded.astype(np.float32)


@pytest.mark.parametrize("n", [1, 9, 130, 701])
@pytest.mark.parametrize("beta", [1, 3, 8, 16, 64, 10_000])
def test_sign_message_and_its_decoding(n, beta):
    rng = np.random.default_rng(n * 7 + beta)
    g, e = rng.standard_normal(n).astype(np.float32), (rng.standard_normal(n) * 0.1).astype(np.float32)
    g[:: max(1, n // 4)] = 0.0
    e[:: max(1, n // 4)] = 0.0
    packed, scales, residual = compress.sign_message(torch.from_numpy(g), torch.from_numpy(e), beta)
    block = min(beta, n)
    expected_bits, expected_scales, expected_residual = reference_sign_message(g, e, block)
    assert np.array_equal(packed.numpy(), expected_bits)
    assert np.array_equal(scales.numpy(), expected_scales)
    assert np.array_equal(residual.numpy(), expected_residual)
    total = np.full(n, 0.25, dtype=np.float32)
    compress.add_decoded_signs(torch.from_numpy(total), packed, scales, beta)
    decoded = (
        np.where(np.unpackbits(expected_bits, bitorder="little", count=n), 1, -1)
        * np.repeat(expected_scales, block)[:n]
    )
    assert np.array_equal(total, np.float32(0.25) + decoded.astype(np.float32))


def reference_bf16_bits(c: np.ndarray) -> np.ndarray:
    """The upper 16 bits of the nearer of the two bf16 values around c, ties to the even one (finite c)."""
    u = c.view(np.uint32)
    low = u & np.uint32(0xFFFF0000)
    high = low + np.uint32(0x10000)
    below = np.abs(c.astype(np.float64) - low.view(np.float32))
    above = np.abs(high.view(np.float32).astype(np.float64) - c)
    even_is_low = ((low >> np.uint32(16)) & np.uint32(1)) == 0
    take_low = (below < above) | ((below == above) & even_is_low)
    return (np.where(take_low, low, high) >> np.uint32(16)).astype(np.uint16)


def test_bf16_message_rounds_to_nearest_even_and_keeps_the_rest():
    rng = np.random.default_rng(3)
    g, e = rng.standard_normal(999).astype(np.float32), (rng.standard_normal(999) * 0.1).astype(np.float32)
    g[:4] = [1.0 + 2**-8, 1.0 + 3 * 2**-8, -0.0, 0.0]  # ties to even (down, up), signed zeros
    e[:4] = 0.0
    payload, residual = compress.bf16_message(torch.from_numpy(g), torch.from_numpy(e))
    c = g + e
    top = reference_bf16_bits(c)
    assert np.array_equal(payload.view(torch.int16).numpy().view(np.uint16), top)
    back = (top.astype(np.uint32) << np.uint32(16)).view(np.float32)
    assert np.array_equal(residual.numpy(), c - back)
    total = np.full(999, 0.5, dtype=np.float32)
    compress.add_decoded_bf16(torch.from_numpy(total), payload)
    assert np.array_equal(total, np.float32(0.5) + back)


# --- fused optimizer step ---------------------------------------------------------------------


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_clip_is_the_float32_fma_formula_then_the_clamp(weight_decay):
    rng = np.random.default_rng(4)
    n = 1000
    p = rng.uniform(-1.2, 1.2, n).astype(np.float32)
    g = (rng.standard_normal(n) * 0.05).astype(np.float32)
    m = (rng.standard_normal(n) * 0.01).astype(np.float32)
    v = (rng.random(n) * 1e-4).astype(np.float32)
    f = np.float32
    lr, b1, b2, eps, step, bound = 0.05, 0.9, 0.999, 1e-8, 3, 1.0
    scalars = [f(-(lr / (1 - b1**step))), f(1 - b1), f(b2), f(1 - b2), f(np.sqrt(1 - b2**step)), f(eps)]
    neg_step, coeff, beta2, sq_coeff, bc2_sqrt, eps32 = scalars

    def fma(x, y, z):
        return (x.astype(np.float64) * y + z).astype(np.float32)

    grad = fma(p, f(weight_decay), g) if weight_decay else g
    m2 = fma(coeff, grad - m, m)
    v2 = fma(sq_coeff * grad, grad, v * beta2)
    p2 = np.clip(p + (neg_step * m2) / (np.sqrt(v2) / bc2_sqrt + eps32), f(-bound), f(bound))
    adam.adam_clip_(p, g, m, v, *scalars, f(weight_decay), f(bound))
    assert np.array_equal(m, m2) and np.array_equal(v, v2) and np.array_equal(p, p2)
    assert np.abs(p).max() == bound  # the clamp did something


# --- the naive baseline -----------------------------------------------------------------------


def test_naive_matmul_sums_over_k_in_order_in_float32():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((7, 65)).astype(np.float32), rng.standard_normal((65, 9)).astype(np.float32)
    expected = np.zeros((7, 9), dtype=np.float32)
    for t in range(65):
        expected += a[:, t, None] * b[None, t, :]
    assert np.array_equal(naive.naive_matmul(a, b), expected)


# --- the thread policy and the layering -------------------------------------------------------


def test_every_parallel_kernel_follows_torchs_thread_count():
    """No module of the package exposes a bare parallel dispatcher: each is wrapped by ``parallel_kernel``."""
    modules = [adam, bits, compress, epilogue, hadamard, im2col, naive, xnor]
    wrapped = [obj for mod in modules for obj in vars(mod).values() if hasattr(obj, "kernel")]
    assert len(wrapped) >= 18  # the 18 kernels of today, all found
    for mod in modules:
        for name, obj in vars(mod).items():
            if isinstance(obj, numba.core.registry.CPUDispatcher):
                assert not obj.targetoptions.get("parallel"), f"{mod.__name__}.{name} bypasses the thread policy"
    torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    try:
        torch.set_num_threads(1)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        torch.set_num_threads(1)  # numba's layer may just have reset it
        epilogue.threshold_pack(np.zeros((2, 3), np.int32), np.zeros(3, np.int32), np.zeros(3, bool))
        assert (torch.get_num_threads(), numba.get_num_threads()) == (1, 1)
    finally:
        numba.set_num_threads(numba_threads)
        torch.set_num_threads(torch_threads)


def test_the_kernels_import_nothing_else_of_bnnctl():
    root = Path(bnnctl.kernels.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                names = [node.module or ""]
            for name in names:
                assert not name.startswith("bnnctl") or name.startswith("bnnctl.kernels"), f"{path.name} imports {name}"


def test_the_thread_policy_is_one_function():
    assert threads.use_threads.__module__ == "bnnctl.kernels.threads"
    from bnnctl.kernels.threads import numba_threads_like_torch

    assert numba_threads_like_torch is threads.numba_threads_like_torch
