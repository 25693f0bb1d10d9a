"""The ablation report's recipe (model=blu_report, experiment=blu_report): each switch, hand-computed on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bnnctl.config.load import compose_train
from bnnctl.data import load_dataset
from bnnctl.data.tensors import MNIST_MEAN, MNIST_STD, scale_pixels
from bnnctl.nn import BinaryLinear, EvalDropout, build_model, make_binarizer
from bnnctl.nn.binarize import OutputSet
from bnnctl.runs import cell_id, run_id
from bnnctl.training.trainer import Trainer
from helpers import tiny

REPORT = ("experiment=blu_report", "debug=tiny")


def report(*overrides: str):
    return compose_train([*REPORT, *overrides])


def test_the_report_network_is_its_codes_network_layer_for_layer():
    cfg = report("model.dropout=0.2", "model.width=16")
    model = build_model(cfg.model, cfg.binarize, (1, 4, 4), 10)
    kinds = [type(m).__name__ for m in model]
    assert kinds == [
        "Flatten",
        "BatchNorm1d",  # the input batch norm
        "BinaryLinear",
        "BatchNorm1d",
        "Dropout",  # between batch norm and the next sign
        "BinaryLinear",
        "BatchNorm1d",
        "Dropout",
        "BinaryLinear",
        "BatchNorm1d",  # the last unit has batch norm too
        "Linear",  # the float Linear(10, 10)
        "Softmax",
    ]
    blus = [m for m in model if isinstance(m, BinaryLinear)]
    assert [(b.in_features, b.out_features) for b in blus] == [(16, 16), (16, 16), (16, 10)]
    assert all(b.input_binarizer.quantizes and b.binarize_bias and b.real_backward for b in blus)  # first too


def test_sign_of_zero_is_zero_with_torch_sign_and_plus_one_otherwise():
    x = torch.tensor([-2.0, 0.0, 3.0])
    zero, plus = make_binarizer({"name": "ste_sign", "params": {"sign_zero": 0}}), make_binarizer("ste_sign")
    assert zero(x, True).tolist() == [-1.0, 0.0, 1.0]
    assert plus(x, True).tolist() == [-1.0, 1.0, 1.0]
    assert zero.output is OutputSet.TERNARY and not zero.exact_binary and zero.bits == 2  # not packable
    assert plus.exact_binary and plus.bits == 1
    with pytest.raises(Exception, match="sign_zero"):
        make_binarizer({"name": "ste_sign", "params": {"sign_zero": 2}})


def test_a_unit_dropped_before_the_sign_enters_the_next_layer_as_zero_or_as_plus_one():
    # One hidden unit of value 0.7 after batch norm, dropped; the next layer sums its sign.
    x = torch.tensor([[0.7, -0.4]])
    dropped = x * torch.tensor([[0.0, 1.0]])  # what nn.Dropout left (the kept unit's 1/(1-p) scale keeps its sign)
    for sign_zero, expected in ((0, -1.0), (1, 0.0)):  # sign(0) + sign(-0.4): 0 - 1, or +1 - 1
        layer = BinaryLinear(
            2,
            1,
            bias=False,
            weight_binarizer="ste_sign",
            input_binarizer={"name": "ste_sign", "params": {"clip": None, "sign_zero": sign_zero}},
        )
        with torch.no_grad():
            layer.weight.fill_(0.3)
        assert layer(dropped).item() == expected


def test_the_real_operand_backward_uses_the_latent_weights_and_the_real_input():
    torch.manual_seed(0)
    spec = {"name": "ste_sign", "params": {"clip": None, "sign_zero": 0}}
    layer = BinaryLinear(3, 2, weight_binarizer=spec, input_binarizer=spec, binarize_bias=True, real_backward=True)
    x = torch.randn(4, 3, requires_grad=True)
    g = torch.randn(4, 2)
    out = layer(x)
    expected = torch.sign(x.detach()) @ torch.sign(layer.weight.detach()).T + torch.sign(layer.bias.detach())
    assert torch.equal(out.detach(), expected)  # the forward is all signs
    out.backward(g)
    assert torch.allclose(x.grad, g @ layer.weight.detach())  # real W, not sign(W)
    assert torch.allclose(layer.weight.grad, g.T @ x.detach())  # real x, not sign(x)
    assert torch.allclose(layer.bias.grad, g.sum(0))


def test_the_binarized_backward_uses_the_signs():
    torch.manual_seed(0)
    spec = {"name": "ste_sign", "params": {"clip": None}}
    layer = BinaryLinear(3, 2, weight_binarizer=spec, input_binarizer=spec)
    x = torch.randn(4, 3, requires_grad=True)
    g = torch.randn(4, 2)
    layer(x).backward(g)
    assert torch.allclose(x.grad, g @ torch.sign(layer.weight.detach()))
    assert torch.allclose(layer.weight.grad, g.T @ torch.sign(x.detach()))


def test_double_softmax_loss_is_cross_entropy_of_the_probabilities():
    z = torch.tensor([[2.0, 0.0, -1.0]])
    p = torch.softmax(z, 1)
    by_hand = -(p[0, 0] - torch.log(torch.exp(p[0]).sum()))  # -log softmax(p)[0]
    assert F.cross_entropy(p, torch.tensor([0])).item() == pytest.approx(by_hand.item(), abs=1e-6)
    # and it is far flatter than the loss on the logits: the gradient that reaches the net is small
    assert by_hand.item() > math.log(3) - 0.5 > F.cross_entropy(z, torch.tensor([0])).item()
    cfg = report("model.width=8")
    model = build_model(cfg.model, cfg.binarize, (1, 2, 2), 3).eval()
    out = model(torch.randn(5, 1, 2, 2))
    assert torch.allclose(out.sum(1), torch.ones(5))  # the model outputs probabilities
    logits = report("model.width=8", "model.output=logits")
    assert not isinstance(list(build_model(logits.model, logits.binarize, (1, 2, 2), 3))[-1], nn.Softmax)


def _one_step(cfg, grad: float, weight: float):
    """A one-weight BLU net, its latent weight set to ``weight`` and its gradient forced to ``grad``."""
    model = nn.Sequential(BinaryLinear(1, 1, bias=False))
    trainer = Trainer(cfg, model, torch.device("cpu"))
    with torch.no_grad():
        model[0].weight.fill_(weight)
    trainer.loss_fn = lambda out, y: (out * 0).sum() + grad * model[0].weight.sum()  # d loss / d w = grad
    trainer.step(torch.ones(1, 1), torch.zeros(1, dtype=torch.long))
    return model[0].weight.item(), model[0].weight.grad


def test_zero_positive_gradient_clip_zeroes_positive_and_keeps_negative_gradients():
    cfg = tiny("train.grad_clip=true", "train.grad_clip_mode=zero_positive", "optimizer.lr=0.1")
    w, grad = _one_step(cfg, grad=0.5, weight=0.2)
    assert grad.item() == 0.0 and w == pytest.approx(0.2)  # Adam with a zero gradient does not move
    w, grad = _one_step(cfg, grad=-0.5, weight=0.2)
    assert grad.item() == -0.5 and w == pytest.approx(0.3)  # Adam's first step is lr * sign(-grad)
    w, grad = _one_step(tiny("train.grad_clip=true", "optimizer.lr=0.1"), grad=-5.0, weight=0.2)
    assert grad.item() == -1.0  # elementwise: clamped to [-1, 1]


def test_weight_clip_before_the_step_lets_the_step_leave_the_interval():
    before = tiny("train.weight_clip=true", "train.weight_clip_at=before_step", "optimizer.lr=0.1")
    after = tiny("train.weight_clip=true", "optimizer.lr=0.1")
    # latent weight 1.5, gradient -1: Adam's step is +0.1
    assert _one_step(before, grad=-1.0, weight=1.5)[0] == pytest.approx(1.1)  # clamp to 1, then step to 1.1
    assert _one_step(after, grad=-1.0, weight=1.5)[0] == pytest.approx(1.0)  # step to 1.6, then clamp to 1


def test_eval_dropout_stays_on_in_evaluation_mode():
    torch.manual_seed(0)
    x = torch.ones(1000)
    assert torch.equal(nn.Dropout(0.5).eval()(x), x)
    kept = EvalDropout(0.5).eval()(x)
    assert set(kept.unique().tolist()) == {0.0, 2.0} and 400 < int((kept == 0).sum()) < 600


def test_normalized_pixels_are_torchvisions_normalize_with_mnists_mean_and_std():
    images = torch.tensor([[[0, 255], [51, 128]]], dtype=torch.uint8).numpy()
    x = scale_pixels(images, "normalized")
    expected = (torch.tensor([[0, 255], [51, 128]]) / 255.0 - MNIST_MEAN) / MNIST_STD
    assert torch.allclose(x[0, 0], expected)


def test_validation_on_the_test_split_trains_on_every_training_example():
    cfg = tiny("data.validate_on=test")
    data = load_dataset(cfg.data)
    assert len(data.train) == cfg.data.synthetic_train and data.val is data.test


def test_where_dropout_sits_is_not_part_of_a_run_without_dropout():
    assert run_id(tiny("model.dropout_at=before_sign")) == run_id(tiny())
    assert run_id(tiny("model.dropout_in_eval=true")) == run_id(tiny())
    assert cell_id(tiny("model.dropout=0.2", "model.dropout_in_eval=true")) != cell_id(tiny("model.dropout=0.2"))


def test_without_dropout_the_real_backward_sees_the_pre_sign_input_wherever_dropout_would_sit():
    before, after = report("model.width=8"), report("model.width=8", "model.dropout_at=after_sign")
    shape = lambda cfg: [type(m).__name__ for m in build_model(cfg.model, cfg.binarize, (1, 2, 2), 3)]  # noqa: E731
    assert shape(before) == shape(after) and "Binarize" not in shape(after)
    with_dropout = report("model.width=8", "model.dropout_at=after_sign", "model.dropout=0.2")
    assert "Binarize" in shape(with_dropout)  # then the sign comes before the dropout, as a module


def test_the_big_variant_and_the_earlier_commit_compose():
    big = compose_train(["experiment=blu_report_big"])
    assert (big.model.width, big.train.batch_size, big.optimizer.lr, big.train.weight_clip) == (4096, 512, 5e-4, True)
    early = report("model.dropout=0.5", "model.dropout_in_eval=true", "train.grad_clip_mode=elementwise")
    model = build_model(early.model, early.binarize, (1, 4, 4), 10)
    assert any(isinstance(m, EvalDropout) for m in model)


def test_real_backward_is_refused_outside_the_mlp():
    with pytest.raises(Exception, match="linear_backward"):
        compose_train(["debug=tiny", "model=bnn_cnn", "model.linear_backward=real"])
    with pytest.raises(Exception, match="model.dropout: only the mlp"):
        compose_train(["debug=tiny", "model=bnn_cnn", "model.dropout=0.2"])


def test_the_report_recipe_learns_the_synthetic_task(tmp_path):
    from bnnctl.training import fit

    summary = fit(report("train.epochs=2"))
    assert summary["best_val_acc"] > 0.5  # 10 classes: chance is 0.1
    assert summary["best_val_acc"] == summary["test_acc_at_best_val"]  # "validation" is the test split
