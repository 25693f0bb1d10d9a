"""Adam + weight clip in one pass: torch's fused Adam followed by the clamp, to the last bit but a few elements.

torch's kernel runs a vector loop over each thread's chunk and a scalar loop
over the chunk's remainder, which rounds the second moment's update once more;
the one-pass kernel uses the vector loop's arithmetic everywhere. So all but a
handful of elements per tensor agree to the bit, and those differ by an ulp.
"""

from __future__ import annotations

import pytest
import torch

from bnnctl.nn import build_model
from bnnctl.training import Trainer
from bnnctl.training.adam_clip import adam_clip_step_, can_fuse
from helpers import tiny


def _params(sizes, seed=0):
    torch.manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(n) * 0.8) for n in sizes]
    return params


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_one_pass_equals_torch_fused_adam_then_clamp(weight_decay):
    sizes = [100003, 4096, 17, 1]  # vector bodies and scalar tails
    a, b = _params(sizes), _params(sizes)
    groups = lambda ps: [{"params": ps[:2], "lr": 3e-3}, {"params": ps[2:], "lr": 1e-2}]  # noqa: E731
    opt_a = torch.optim.Adam(groups(a), fused=True, weight_decay=weight_decay, betas=(0.9, 0.999), eps=1e-8)
    opt_b = torch.optim.Adam(groups(b), fused=True, weight_decay=weight_decay, betas=(0.9, 0.999), eps=1e-8)
    assert can_fuse(b, opt_b)
    for step in range(5):
        torch.manual_seed(100 + step)
        grads = [torch.randn(n) * 0.05 for n in sizes]
        for p, q, g in zip(a, b, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        opt_a.step()
        with torch.no_grad():
            for p in a:
                p.clamp_(-1, 1)
        adam_clip_step_(b, opt_b)
        for p, q in zip(a, b, strict=True):
            for x, y in [(p, q), *((opt_a.state[p][k], opt_b.state[q][k]) for k in ("exp_avg", "exp_avg_sq"))]:
                assert int((x != y).sum()) <= 8  # the remainder loops' elements at most
                assert torch.allclose(x, y, rtol=1e-5, atol=0)
            assert torch.equal(opt_a.state[p]["step"], opt_b.state[q]["step"])
    assert max(float(p.detach().abs().max()) for p in b) == 1.0  # the clamp did something


def test_a_trainer_with_the_fused_clip_takes_the_same_steps():
    cfg = tiny("model=bnn_mlp", "train.weight_clip=true", "optimizer.lr=0.05")
    weights = []
    for fused in (True, False):
        torch.manual_seed(0)
        trainer = Trainer(cfg, build_model(cfg.model, cfg.binarize, (1, 28, 28), 10), torch.device("cpu"))
        assert trainer.fused_clip
        trainer.fused_clip = fused
        torch.manual_seed(1)
        for _ in range(4):
            trainer.step(torch.rand(50, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (50,)))
        weights.append([p.detach().clone() for p in trainer.model.parameters()])
    assert all(torch.allclose(x, y, rtol=1e-5, atol=1e-7) for x, y in zip(*weights, strict=True))
    assert sum(int((x != y).sum()) for x, y in zip(*weights, strict=True)) <= 64
    assert max(float(p.detach().abs().max()) for p in trainer.clip_params) <= 1.0


def test_other_optimizer_settings_keep_the_two_passes():
    params = _params([10])
    assert not can_fuse(params, torch.optim.Adam(params, amsgrad=True))
    assert not can_fuse(params, torch.optim.SGD(params, lr=0.1))
    assert not can_fuse(params, torch.optim.Adam(params, betas=(0.3, 0.999)))
