import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bnnctl.nn import (
    Binarize,
    BinaryConv2d,
    BinaryLinear,
    binary_layers,
    build_model,
    clippable_parameters,
    model_size_bytes,
)
from bnnctl.nn.binarize import sign
from bnnctl.nn.losses import square_hinge_loss
from helpers import tiny


def test_binary_linear_computes_with_the_sign_of_its_latent_weights_exactly():
    torch.manual_seed(0)
    layer = BinaryLinear(7, 3, bias=False)
    x = torch.randn(5, 7)
    expected = x @ sign(layer.weight).T
    assert torch.equal(layer(x), expected)
    assert not torch.equal(layer.weight.abs(), torch.ones_like(layer.weight))  # latent weights stay real


def test_binary_linear_passes_the_gradient_of_the_binary_weights_to_the_latent_weights():
    torch.manual_seed(0)
    layer = BinaryLinear(4, 2, bias=False, weight_binarizer={"name": "ste_sign", "params": {"clip": None}})
    x = torch.randn(3, 4)
    g = torch.randn(3, 2)
    layer(x).backward(g)
    assert torch.allclose(layer.weight.grad, g.T @ x)


def test_binary_bias_and_input_binarizer():
    layer = BinaryLinear(3, 2, bias=True, input_binarizer="ste_sign", binarize_bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.2, -0.1, 0.0], [-0.3, 0.4, -0.5]]))
        layer.bias.copy_(torch.tensor([0.01, -0.02]))
    x = torch.tensor([[0.5, -2.0, 0.0]])
    # sign(x) = [1, -1, 1]; sign(W) = [[1, -1, 1], [-1, 1, -1]]; sign(b) = [1, -1]
    assert layer(x).tolist() == [[4.0, -4.0]]


def test_binary_conv_matches_float_conv_with_sign_weights():
    torch.manual_seed(0)
    conv = BinaryConv2d(3, 4, 3, padding=1, bias=False)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(conv(x), F.conv2d(x, sign(conv.weight), padding=1))


def _build(*overrides, shape=(1, 28, 28)):
    cfg = tiny(*overrides)
    return cfg, build_model(cfg.model, cfg.binarize, shape, 10)


def test_blu_mlp_is_sign_on_weights_biases_and_outputs_without_batch_norm():
    cfg, model = _build("model=blu_mlp", "model.width=32")
    linears = [m for m in model if isinstance(m, BinaryLinear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 32), (32, 32), (32, 32), (32, 10)]
    assert all(m.has_binary_weights and m.binarize_bias for m in linears)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in model)
    assert not linears[0].input_binarizer.quantizes  # the image enters unbinarized
    hidden = []
    for m in model:
        if isinstance(m, Binarize):
            m.register_forward_hook(lambda mod, inp, out: hidden.append(out))
    out = model(torch.rand(4, 1, 28, 28) * 2 - 1)
    assert len(hidden) == 3 and all(set(h.unique().tolist()) <= {-1.0, 1.0} for h in hidden)
    assert out.shape == (4, 10)
    assert cfg.model.loss == "cross_entropy"


def test_bnn_mlp_has_batch_norm_square_hinge_and_real_first_layer_input():
    cfg, model = _build("model=bnn_mlp", "model.width=32")
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model) == 4  # 3 hidden + output
    bn = next(m for m in model if isinstance(m, nn.BatchNorm1d))
    assert (bn.eps, bn.momentum) == (1e-4, 0.1)
    first, last = binary_layers(model)[0], binary_layers(model)[-1]
    assert not first.input_binarizer.quantizes and first.has_binary_weights and last.has_binary_weights
    assert cfg.model.loss == "square_hinge"
    assert all(p.abs().max() <= 1 for p in clippable_parameters(model))  # U(-1, 1) init
    assert isinstance(model[-1], nn.BatchNorm1d)  # no sign on the output


def test_mlp_float_is_full_precision_with_the_same_shape():
    cfg, model = _build("model=mlp_float", "model.width=32")
    assert binary_layers(model) == []
    assert not any(isinstance(m, Binarize) for m in model)
    assert sum(isinstance(m, nn.ReLU) for m in model) == 3
    assert cfg.model.binarized is False


def test_first_and_last_layer_precision_come_from_config():
    _, model = _build(
        "model=bnn_mlp",
        "model.width=16",
        "model.first_layer_weights=float",
        "model.last_layer_weights=float",
        "model.first_layer_input=binary",
    )
    linears = [m for m in model if isinstance(m, BinaryLinear)]
    assert [m.has_binary_weights for m in linears] == [False, True, True, False]
    assert linears[0].input_binarizer.name == "ste_sign" and linears[0].has_binary_input


def test_square_hinge_loss_by_hand():
    logits = torch.tensor([[2.0, 0.5, -1.0]])
    # targets +-1: [-1, +1, -1]; 1 - t*y = [3, 0.5, 0] -> squared [9, 0.25, 0] -> mean 3.0833
    assert square_hinge_loss(logits, torch.tensor([1])).item() == pytest.approx((9 + 0.25 + 0) / 3)


def test_binary_model_is_close_to_32_times_smaller_than_float():
    _, model = _build("model=bnn_mlp", "model.width=4096")
    size = model_size_bytes(model)
    assert size["binary_params"] == 784 * 4096 + 2 * 4096 * 4096 + 4096 * 10
    assert 30 < size["compression"] < 32  # batch-norm parameters and statistics stay 32-bit


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28)], ids=["cifar10", "fashion_mnist"])
def test_bnn_cnn_is_the_papers_network_at_any_width(shape):
    cfg, model = _build("experiment=bnn_cifar10", "model.width_mult=0.25", shape=shape)
    convs = [m for m in model if isinstance(m, BinaryConv2d)]
    fcs = [m for m in model if isinstance(m, BinaryLinear)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64, 128, 128]  # 128-128-256-256-512-512 x 0.25
    assert [f.out_features for f in fcs] == [256, 256, 10]  # 1024-1024-10
    side = shape[1] // 8  # three 2x2 max-pools
    assert fcs[0].in_features == 128 * side * side
    assert all(m.has_binary_weights for m in convs + fcs)  # the first conv's weights too
    assert not convs[0].input_binarizer.quantizes  # the image enters real
    assert sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model) == 9
    assert sum(isinstance(m, nn.MaxPool2d) for m in model) == 3
    assert model.eval()(torch.randn(2, *shape)).shape == (2, 10)
    assert cfg.model.loss == "square_hinge" and cfg.train.batch_size == 50 and cfg.train.grad_clip
