"""Binarizers: one contract over the whole registry, then each binarizer's own numbers."""

import math

import pytest
import torch

from bnnctl.errors import ConfigError
from bnnctl.nn import Binarize, BinaryConv2d, BinaryLinear
from bnnctl.nn.binarize import (
    BINARIZERS,
    Binarizer,
    Hadamard,
    OutputSet,
    SteSign,
    StochasticSign,
    Ternary,
    block_mean_abs,
    default_params,
    hard_sigmoid,
    make_binarizer,
    sign,
)

# What each output set allows: a predicate over the output values (and the input, for scaled sets).
OUTPUT_SETS = {
    OutputSet.BINARY: lambda out, x: set(out.unique().tolist()) <= {-1.0, 1.0},
    OutputSet.REAL: lambda out, x: torch.equal(out, x),
    OutputSet.TERNARY: lambda out, x: set(out.unique().tolist()) <= {-1.0, 0.0, 1.0},
    # +-a: the sign of x (sign(0) = +1) times a non-negative scale
    OutputSet.SCALED_BINARY: lambda out, x: bool((sign(out) == sign(x)).all()),
    OutputSet.SCALED_TERNARY: lambda out, x: bool(((torch.sign(out) == torch.sign(x)) | (out == 0)).all()),
}


def test_a_hadamard_sign_that_maps_zero_to_zero_is_a_scaled_ternary():
    h = Hadamard(beta=2, sign_zero=0)
    out = h(X, True)
    assert h.output is OutputSet.SCALED_TERNARY and OUTPUT_SETS[h.output](out, X)
    assert out[X == 0].tolist() == [0.0, 0.0] and h.bits == 2 + 16


X = torch.tensor([-3.0, -1.5, -1.0, -0.4, -0.0, 0.0, 1e-30, 0.4, 1.0, 1.0001, 2.5])


def every_binarizer():
    return [pytest.param(cls(), id=name) for name, cls in sorted(BINARIZERS.items())]


# --- the contract every registered binarizer keeps -------------------------------------------


@pytest.mark.parametrize("binarizer", every_binarizer())
def test_registered_binarizers_declare_what_they_are(binarizer: Binarizer):
    assert isinstance(binarizer.output, OutputSet)
    assert binarizer.bits == (32 if binarizer.output is OutputSet.REAL else binarizer.bits) and 0 < binarizer.bits <= 32
    assert binarizer.exact_binary == (binarizer.output is OutputSet.BINARY)
    assert binarizer.exact_binary <= (binarizer.bits == 1)  # exactly +-1 stores in one bit
    for word in ("Forward", "Source") if binarizer.quantizes else ():
        assert word in type(binarizer).__doc__, f"{binarizer.name}'s docstring must give its {word.lower()}"
    assert make_binarizer(binarizer.spec()) == binarizer  # {name, params} round-trips


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("binarizer", every_binarizer())
def test_outputs_lie_in_the_declared_set_and_zero_maps_to_plus_one(binarizer, training):
    torch.manual_seed(0)
    out = binarizer(X, training)
    assert out.shape == X.shape and out.dtype == X.dtype
    assert OUTPUT_SETS[binarizer.output](out, X)
    if binarizer.output is OutputSet.BINARY and not training:
        assert out[(X == 0)].tolist() == [1.0, 1.0]  # sign(0) = +1 (and -0.0 too)


@pytest.mark.parametrize("binarizer", every_binarizer())
def test_gradient_is_the_declared_straight_through_mask(binarizer):
    x = X.clone().requires_grad_(True)
    upstream = torch.arange(1.0, len(X) + 1)
    out = binarizer(x, True)
    out.backward(upstream)
    clip = binarizer.params.get("clip")
    mask = torch.ones_like(X) if clip is None else (X.abs() <= clip).to(X.dtype)
    if binarizer.output is OutputSet.SCALED_BINARY:  # the STE through sign plus the scale's own term
        assert torch.allclose(x.grad, hadamard_gradient(X, upstream, binarizer.params["beta"], clip))
    else:
        assert torch.equal(x.grad, upstream * mask)


@pytest.mark.parametrize("binarizer", every_binarizer())
def test_evaluation_is_deterministic(binarizer):
    torch.manual_seed(0)
    first = binarizer(X.repeat(100), False)
    torch.manual_seed(1)
    assert torch.equal(first, binarizer(X.repeat(100), False))


# --- each binarizer's numbers ------------------------------------------------------------------


def test_sign_maps_zero_to_plus_one_and_outputs_exactly_pm1():
    x = torch.tensor([-2.0, -1e-30, -0.0, 0.0, 1e-30, 3.0])
    assert sign(x).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    assert torch.sign(torch.tensor(0.0)) == 0  # why sign exists


def test_ste_sign_cancels_the_gradient_where_abs_x_exceeds_its_clip():
    x = torch.tensor([-1.5, -1.0, -0.3, 0.0, 0.7, 1.0, 1.0001, 2.0], requires_grad=True)
    SteSign()(x, True).backward(torch.arange(1.0, 9.0))
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 0.0]  # hand-computed: g * 1{|x| <= 1}
    x.grad = None
    SteSign(clip=0.5)(x, True).backward(torch.arange(1.0, 9.0))
    assert x.grad.tolist() == [0.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]
    x.grad = None
    SteSign(clip=None)(x, True).backward(torch.arange(1.0, 9.0))
    assert x.grad.tolist() == list(range(1, 9))  # the identity straight-through


def test_hard_sigmoid_values():
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    assert hard_sigmoid(x).tolist() == [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


@pytest.mark.parametrize("value", [-1.5, -1.0, -0.6, 0.0, 0.4, 0.9, 1.0, 1.2])
def test_stochastic_rate_of_plus_one_is_the_hard_sigmoid(value):
    torch.manual_seed(1234)
    n = 200_000
    out = StochasticSign()(torch.full((n,), value), True)
    p = min(max((value + 1) / 2, 0.0), 1.0)
    rate = (out == 1).float().mean().item()
    if p in (0.0, 1.0):
        assert rate == p
    else:  # five standard errors of a binomial proportion
        assert abs(rate - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_stochastic_is_deterministic_sign_at_evaluation_and_random_in_training():
    x = torch.linspace(-0.9, 0.9, 1001)
    assert torch.equal(StochasticSign()(x, False), sign(x))
    torch.manual_seed(0)
    assert not torch.equal(StochasticSign()(x, True), sign(x))


# --- the registry as config sees it ------------------------------------------------------------


def test_config_specs_select_binarizers_and_bad_specs_name_the_key():
    assert make_binarizer({"name": "ste_sign", "params": {"clip": None}}) == SteSign(clip=None)
    assert make_binarizer("ste_sign") == SteSign()
    assert default_params("ste_sign") == {"clip": 1.0, "sign_zero": 1}
    with pytest.raises(ConfigError, match=r"binarize.weights.name: unknown binarizer 'sgn' \(known: .*ste_sign"):
        make_binarizer({"name": "sgn"}, "binarize.weights")
    with pytest.raises(
        ConfigError, match=r"binarize.weights.params.beta: not a parameter of ste_sign \(known: clip, sign_zero;"
    ):
        make_binarizer({"name": "ste_sign", "params": {"beta": 4}}, "binarize.weights")
    with pytest.raises(ConfigError, match=r"binarize.activations.params: clip must be > 0"):
        make_binarizer({"name": "ste_sign", "params": {"clip": -1}}, "binarize.activations")


# --- ternary and Hadamard --------------------------------------------------------------------


def test_ternary_zeroes_what_lies_within_the_threshold_in_units_of_sigma():
    x = torch.tensor([-2.0, -0.3, -0.1, 0.0, 0.05, 0.2, 1.0, 3.0])
    sigma = x.std().item()
    out = Ternary(threshold_sigma=0.25 / sigma)(x, True)
    assert out.tolist() == [-1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]  # |x| > 0.25 keeps the sign
    assert Ternary(threshold_sigma=0.0)(x, True).tolist() == [-1.0, -1.0, -1.0, 0.0, 1.0, 1.0, 1.0, 1.0]


def test_hadamard_forward_by_hand_with_a_short_last_block():
    x = torch.tensor([[1.0, -2.0, 3.0, -4.0, 5.0]])
    # blocks of 2: mean|x| = 1.5, 3.5, and the short last block [5] -> 5
    assert Hadamard(beta=2)(x, True).tolist() == [[1.5, -1.5, 3.5, -3.5, 5.0]]
    assert block_mean_abs(x, 3).tolist() == [[2.0, 2.0, 2.0, 4.5, 4.5]]


def test_hadamard_limits_full_precision_and_xnor_net():
    torch.manual_seed(0)
    conv = BinaryConv2d(3, 4, 3, weight_binarizer=Hadamard(beta=27))
    w = conv.weight.detach()
    assert torch.allclose(BinaryConv2d(3, 4, 3, weight_binarizer=Hadamard(beta=1)).binarize_weight(w), w)  # |x|
    row = w.reshape(4, -1)  # a layer hands its filters over as rows of k x k x C_in = 27
    xnor = row.abs().mean(1, keepdim=True) * sign(row)  # XNOR-Net: one scale per filter
    assert torch.allclose(conv.binarize_weight(w).reshape(4, -1), xnor)
    assert Hadamard(beta=16).bits == 1 + 32 / 16 and not Hadamard().exact_binary


def test_hadamard_blocks_conv_activations_along_the_width():
    x = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4) * torch.tensor([1.0, -1.0, 1.0, -1.0])  # (N, C, H, W)
    out = Hadamard(beta=2)(x, True)
    first_row = x[0, 0, 0].abs()
    assert out[0, 0, 0].tolist() == [
        first_row[:2].mean(),
        -first_row[:2].mean(),
        first_row[2:].mean(),
        -first_row[2:].mean(),
    ]
    assert torch.equal(out[0, 0, 1, :2].abs(), x[0, 0, 1, :2].abs().mean().expand(2))  # each row its own blocks


def test_hadamard_per_layer_beta_gives_each_layer_its_entry():
    from bnnctl.config.load import compose_train
    from bnnctl.nn import build_model

    cfg = compose_train(
        [
            "debug=tiny",
            "model=hbnn",
            "binarize=hadamard",
            "binarize.weights.params.beta=[4,8]",
            "binarize.activations.params.beta=[2,1]",
        ]
    )
    model = build_model(cfg.model, cfg.binarize, (1, 28, 28), 10)
    layers = [m for m in model if isinstance(m, BinaryLinear)]
    assert [layer.weight_binarizer.params["beta"] for layer in layers if layer.weight_binarizer.quantizes] == [4, 8]
    acts = [m.binarizer.params["beta"] for m in model if isinstance(m, Binarize)]
    assert acts == [2, 1]
    with pytest.raises(ConfigError, match=r"binarize.weights.params: beta lists 3 values, but 2 layers"):
        bad = compose_train(["debug=tiny", "model=hbnn", "binarize=hadamard", "binarize.weights.params.beta=[4,8,2]"])
        build_model(bad.model, bad.binarize, (1, 28, 28), 10)


def hadamard_gradient(x, g, beta, clip=1.0):
    """(1/n) sign(x_i) sum_j g_j sign(x_j) over i's block (n its length) + delta_i g_i 1{|x_i| <= clip} (HadaNets eq. 6)."""
    s, d = sign(x), x.shape[-1]
    expected = torch.zeros_like(x)
    for start in range(0, d, beta):
        block = slice(start, min(start + beta, d))
        n = block.stop - block.start
        # d|x_i|/dx_i is torch.sign (0 at x_i = 0, a subgradient); the output's sign factor is sign(0) = +1
        expected[..., block] = torch.sign(x[..., block]) / n * (g[..., block] * s[..., block]).sum(-1, keepdim=True)
    mask = torch.ones_like(x) if clip is None else (x.abs() <= clip).to(x.dtype)
    return expected + block_mean_abs(x, beta) * g * mask


@pytest.mark.parametrize("beta", [1, 4, 10])
def test_hadamard_gradient_is_the_papers_formula(beta):
    torch.manual_seed(0)
    x = (torch.randn(3, 10, dtype=torch.float64) * 0.8).requires_grad_(True)
    g = torch.randn(3, 10, dtype=torch.float64)
    Hadamard(beta=beta)(x, True).backward(g)
    assert torch.allclose(x.grad, hadamard_gradient(x.detach(), g, beta))
    # and autograd's own check of the composition, where the sign is locally constant
    smooth = lambda t: block_mean_abs(t, beta) * sign(t).detach()  # noqa: E731
    assert torch.autograd.gradcheck(smooth, (x.detach().clone().requires_grad_(True),))
