"""Packed inference: the bit layout, the XNOR-popcount kernels exact against float, the Hadamard block
product within float rounding, thresholds, and whole packed models whose outputs equal the float model's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bnnctl.errors import PackError
from bnnctl.kernels.bits import from_panels, pack_bits, pack_signs, to_panels, unpack_bits, unpack_signs
from bnnctl.kernels.intrinsics import popcount64
from bnnctl.kernels.xnor import NR, xnor_gemm, xnor_gemm_rows
from bnnctl.nn import build_model
from bnnctl.nn.binarize import Hadamard
from bnnctl.packed.export import load_packed, pack_model, save_packed
from bnnctl.packed.hadamard import BlockLayout, hadamard_gemm, hadamard_pack, hadamard_panels
from bnnctl.packed.thresholds import NotAStep, fold
from helpers import tiny


def signs(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


# --- bits ------------------------------------------------------------------------------


def test_bit_layout_is_element_k_in_word_k_div_64_bit_k_mod_64_with_plus_one_as_1():
    x = -np.ones((1, 130), dtype=np.float32)
    x[0, [0, 70, 129]] = 1.0
    words = pack_signs(x)
    assert words.dtype == np.uint64 and words.shape == (1, 3)
    assert words[0].tolist() == [1, 1 << 6, 1 << 1]  # 70 = 64 + 6, 129 = 128 + 1; pad bits 0


def test_sign_of_zero_packs_as_plus_one():
    assert pack_signs(np.array([[0.0, -0.0, -1e-30]])).tolist() == [[0b011]]


@given(st.integers(1, 200), st.integers(1, 3))
@settings(max_examples=30, deadline=None)
def test_pack_unpack_round_trip(k, rows):
    rng = np.random.default_rng(k)
    x = signs(rng, rows, k)
    assert np.array_equal(unpack_signs(pack_signs(x), k), x)
    assert np.array_equal(unpack_bits(pack_bits(x > 0), k), x > 0)


def test_panels_put_eight_columns_in_a_vector_and_round_trip():
    rng = np.random.default_rng(0)
    words = pack_signs(signs(rng, 70, 130))  # 70 rows: 3 panels of 32, 26 rows of padding
    panels = to_panels(words, NR)
    assert panels.shape == (3, 3, NR)
    assert panels[1, 2, 5] == words[NR + 5, 2]
    assert np.array_equal(from_panels(panels, 70), words)


def test_popcount_intrinsic():
    from numba import njit

    @njit
    def count(x):
        return popcount64(x)

    for value in (0, 1, 0xFF, 2**63, 2**64 - 1, 0x5555555555555555):
        assert count(np.uint64(value)) == bin(value).count("1")


# --- the XNOR-popcount product -----------------------------------------------------------


@given(st.integers(1, 11), st.integers(1, 300), st.integers(1, 80))
@settings(max_examples=40, deadline=None)
def test_xnor_gemm_equals_the_float_product_exactly(m, k, n):
    """Every row count (the micro-kernel's tails), K across word boundaries, N across panel boundaries."""
    rng = np.random.default_rng(m * 10007 + k * 101 + n)
    a, w = signs(rng, m, k), signs(rng, n, k)
    expected = (a.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int32)
    out = xnor_gemm(pack_signs(a), to_panels(pack_signs(w), NR), k, n)
    assert out.shape == (m, n) and np.array_equal(out, expected)
    assert np.array_equal(xnor_gemm_rows(pack_signs(a), pack_signs(w), k), expected)


def test_xnor_gemm_at_full_size_matches_torch():
    rng = np.random.default_rng(1)
    a, w = signs(rng, 64, 4096), signs(rng, 256, 4096)
    expected = (torch.from_numpy(a) @ torch.from_numpy(w).T).numpy()
    assert np.array_equal(xnor_gemm(pack_signs(a), to_panels(pack_signs(w), NR), 4096, 256), expected)


def test_xnor_gemm_rejects_mismatched_words():
    with pytest.raises(ValueError, match="do not fit"):
        xnor_gemm(np.zeros((2, 3), np.uint64), np.zeros((1, 2, NR), np.uint64), 128, 4)


# --- the Hadamard block product ----------------------------------------------------------


@pytest.mark.parametrize(
    "m,k,n,beta", [(3, 50, 7, 16), (5, 64, 33, 64), (4, 200, 40, 100), (7, 130, 9, 3), (2, 129, 5, 1), (6, 256, 70, 16)]
)
def test_hadamard_block_gemm_equals_the_float_simulation_within_rounding(m, k, n, beta):
    torch.manual_seed(k + beta)
    x, w = torch.randn(m, k), torch.randn(n, k)
    h = Hadamard(beta=beta)
    xh, wh = h(x, False).double(), h(w, False).double()
    a_words, a_scales = hadamard_pack(x, beta)
    panels, scale_panels = hadamard_panels(*hadamard_pack(w, beta))
    out = hadamard_gemm(a_words, a_scales, panels, scale_panels, k, n, beta)
    exact = (xh @ wh.T).numpy()
    bound = 4 * np.finfo(np.float32).eps * BlockLayout(k, beta).blocks * (xh.abs() @ wh.abs().T).numpy()
    assert out.shape == (m, n)
    assert (np.abs(out - exact) <= bound + 1e-6).all()


def test_hadamard_blocks_never_straddle_words():
    layout = BlockLayout(k=100, beta=24)  # 2 blocks per word, the last block 4 long
    positions = layout.slot_positions()
    assert layout.blocks == 5 and layout.words == 3 and layout.lengths().tolist() == [24, 24, 24, 24, 4]
    assert positions[24] == 24 and positions[48] == 64 and positions[96] == 128


# --- thresholds --------------------------------------------------------------------------


def test_fold_gives_the_sign_of_batch_norm_for_every_integer_dot_product():
    bn = torch.nn.BatchNorm1d(5).eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.3, -7.0, 100.0, 2.0, 0.0]))
        bn.running_var.copy_(torch.tensor([1.0, 4.0, 1.0, 9.0, 1.0]))
        bn.weight.copy_(torch.tensor([1.0, -2.0, 1.0, 0.0, 1.0]))  # gamma < 0 flips; gamma = 0 is constant
        bn.bias.copy_(torch.tensor([0.0, 0.5, 0.0, -1.0, 0.0]))
    k = 9
    t = fold(lambda x: torch.where(bn(x) >= 0, 1.0, -1.0), k, None, 5)
    dots = np.arange(-k, k + 1)
    expected = bn(torch.from_numpy(dots).float()[:, None].expand(-1, 5).contiguous()).detach().numpy() >= 0
    got = (dots[:, None] >= t.t[None, :]) != t.flip[None, :]
    assert np.array_equal(got, expected)
    assert t.flip.tolist() == [False, True, False, False, False]


def test_fold_refuses_ops_that_are_not_one_step():
    with pytest.raises(NotAStep, match="changes 2 times"):
        fold(lambda x: torch.where(torch.cos(x) >= 0, 1.0, -1.0), 4, None, 1)


# --- packed models -------------------------------------------------------------------------


def random_statistics(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Batch-norm statistics and affine parameters far from the defaults: negative gammas, shifts that matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 50 + 0.5)
                m.weight.copy_(torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
            elif getattr(m, "bias", None) is not None and isinstance(m.bias, torch.nn.Parameter):
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 3)
    return model.eval()


MODELS = {
    "bnn_mlp": (["model=bnn_mlp", "model.width=100"], (1, 28, 28)),
    "bnn_mlp_odd_bias": (["model=bnn_mlp", "model.width=65", "model.bias=true"], (1, 5, 7)),
    "blu_mlp": (["model=blu_mlp", "model.width=70", "model.depth=2"], (1, 28, 28)),
    "blu_report": (["model=blu_report", "model.width=90"], (1, 28, 28)),
    "float_last_layer": (["model=bnn_mlp", "model.width=33", "model.last_layer_weights=float"], (1, 6, 6)),
    "bnn_cnn": (["model=bnn_cnn", "model.width_mult=0.25"], (1, 28, 28)),
    "bnn_cnn_bias_rgb": (["model=bnn_cnn", "model.width_mult=0.3", "model.bias=true"], (3, 16, 16)),
}


def built(name: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    overrides, shape = MODELS[name]
    cfg = tiny(*overrides)
    torch.manual_seed(1)
    return random_statistics(build_model(cfg.model, cfg.binarize, shape, 10)), shape


@pytest.mark.parametrize("name", sorted(MODELS))
def test_packed_model_outputs_equal_the_float_model_bit_for_bit(name, tmp_path):
    model, shape = built(name)
    packed = load_packed(save_packed(pack_model(model, shape), tmp_path / "m.npz"))
    for batch in (1, 7, 130):
        x = torch.randn(batch, *shape) * 2
        with torch.no_grad():
            expected = model(x)
        out = packed(x)
        assert torch.equal(out, expected), f"{name}, batch {batch}"
        assert torch.equal(out.argmax(1), expected.argmax(1))


def test_hidden_layers_run_on_bits_with_thresholds():
    model, shape = built("bnn_mlp")
    packed = pack_model(model, shape)
    kinds = [type(op).__name__ for op in packed.ops]
    assert kinds.count("XnorLinear") == 3 and packed.meta["thresholded_layers"] == 2  # the last layer ends in floats
    assert "Sign" in kinds and kinds.index("Sign") < kinds.index("XnorLinear")


@pytest.mark.parametrize(
    "overrides,match",
    [
        (
            ["model=hbnn", "binarize=hadamard", "model.width=64"],
            r"layer \d+ \((Binarize|BinaryLinear \d+->\d+)\): its (weights|activations) hadamard\(beta=",
        ),
        (
            ["binarize=report", "model=bnn_mlp"],
            r"layer \d+ \(.*\): its (weights|activations) ste_sign\(.*sign_zero=0\) are not exactly",
        ),
        (["model=blu_report", "model.dropout=0.2", "model.dropout_in_eval=true"], "dropout stays on at evaluation"),
    ],
)
def test_models_that_cannot_be_packed_exactly_are_refused_naming_the_layer(overrides, match):
    cfg = tiny(*overrides)
    model = build_model(cfg.model, cfg.binarize, (1, 28, 28), 10)
    with pytest.raises(PackError, match=match):
        pack_model(model, (1, 28, 28))


def test_a_damaged_packed_file_is_named(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(PackError, match="model.npz: not a readable packed model file"):
        load_packed(bad)
    with pytest.raises(PackError, match="no such packed model file"):
        load_packed(tmp_path / "missing.npz")


def test_a_float_model_has_nothing_to_pack():
    cfg = tiny("model=mlp_float")
    with pytest.raises(PackError, match="nothing to pack"):
        pack_model(build_model(cfg.model, cfg.binarize, (1, 28, 28), 10), (1, 28, 28))
