"""Binarizers: one contract over the whole registry, then each binarizer's own numbers."""

import math

import pytest
import torch

from bnnctl.errors import ConfigError
from bnnctl.nn.binarize import (
    BINARIZERS,
    Binarizer,
    OutputSet,
    SteSign,
    StochasticSign,
    default_params,
    hard_sigmoid,
    make_binarizer,
    sign,
)

# What each output set allows: a predicate over the output values (and the input, for scaled sets).
OUTPUT_SETS = {
    OutputSet.BINARY: lambda out, x: set(out.unique().tolist()) <= {-1.0, 1.0},
    OutputSet.REAL: lambda out, x: torch.equal(out, x),
}
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
    binarizer(x, True).backward(upstream)
    clip = binarizer.params.get("clip")
    expected = upstream if clip is None else upstream * (X.abs() <= clip)
    assert torch.equal(x.grad, expected)


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
    assert default_params("ste_sign") == {"clip": 1.0}
    with pytest.raises(ConfigError, match=r"binarize.weights.name: unknown binarizer 'sgn' \(known: .*ste_sign"):
        make_binarizer({"name": "sgn"}, "binarize.weights")
    with pytest.raises(ConfigError, match=r"binarize.weights.params.beta: not a parameter of ste_sign \(known: clip;"):
        make_binarizer({"name": "ste_sign", "params": {"beta": 4}}, "binarize.weights")
    with pytest.raises(ConfigError, match=r"binarize.activations.params: clip must be > 0"):
        make_binarizer({"name": "ste_sign", "params": {"clip": -1}}, "binarize.activations")
