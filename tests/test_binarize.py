import math

import pytest
import torch

from bnnctl.binarize import BINARIZERS, get_binarizer, hard_sigmoid, identity, sign, sign_passthrough, stochastic
from bnnctl.errors import ConfigError


def test_sign_maps_zero_to_plus_one_and_outputs_exactly_pm1():
    x = torch.tensor([-2.0, -1e-30, -0.0, 0.0, 1e-30, 3.0])
    assert sign(x).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    assert sign(x).dtype == x.dtype
    assert torch.sign(torch.tensor(0.0)) == 0  # why sign_plus exists


def test_straight_through_gradient_is_cancelled_where_abs_x_exceeds_one():
    x = torch.tensor([-1.5, -1.0, -0.3, 0.0, 0.7, 1.0, 1.0001, 2.0], requires_grad=True)
    upstream = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    sign(x).backward(upstream)
    # hand-computed: g * 1{|x| <= 1}
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 0.0]


def test_passthrough_sign_passes_the_gradient_unchanged():
    x = torch.tensor([-3.0, -0.5, 0.0, 0.5, 3.0], requires_grad=True)
    out = sign_passthrough(x)
    assert out.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    out.backward(torch.arange(1.0, 6.0))
    assert x.grad.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_hard_sigmoid_values():
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    assert hard_sigmoid(x).tolist() == [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


@pytest.mark.parametrize("value", [-1.5, -1.0, -0.6, 0.0, 0.4, 0.9, 1.0, 1.2])
def test_stochastic_rate_of_plus_one_is_the_hard_sigmoid(value):
    torch.manual_seed(1234)
    n = 200_000
    out = stochastic(torch.full((n,), value), training=True)
    assert set(out.unique().tolist()) <= {-1.0, 1.0}
    p = min(max((value + 1) / 2, 0.0), 1.0)
    rate = (out == 1).float().mean().item()
    if p in (0.0, 1.0):
        assert rate == p
    else:  # five standard errors of a binomial proportion
        assert abs(rate - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_stochastic_is_deterministic_sign_at_evaluation():
    x = torch.linspace(-2, 2, 101)
    assert torch.equal(stochastic(x, training=False), sign(x))


def test_stochastic_gradient_uses_the_saturating_mask():
    x = torch.tensor([-2.0, -0.5, 0.5, 1.5], requires_grad=True)
    stochastic(x, training=True).backward(torch.ones(4))
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_identity_is_full_precision():
    x = torch.randn(10, requires_grad=True)
    assert torch.equal(identity(x), x)


def test_registry_by_name_and_unknown_names_list_the_known_ones():
    assert get_binarizer("sign") is sign
    assert set(BINARIZERS) == {"sign", "sign_passthrough", "stochastic", "identity"}
    with pytest.raises(ConfigError, match=r"unknown binarizer 'sgn'.*identity, sign, sign_passthrough, stochastic"):
        get_binarizer("sgn")
