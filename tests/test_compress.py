"""1-bit gradient compression with error feedback, and the DDP hook that sends it (two gloo ranks)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hypothesis import given, settings
from hypothesis import strategies as st

from bnnctl.distributed import HookState, compress, compression_hook, compression_ratio, pack_signs, unpack_signs
from bnnctl.distributed.compress import Message


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), seed=st.integers(0, 2**16))
def test_signs_round_trip_through_the_packed_bytes(n, seed):
    c = torch.randn(n, generator=torch.Generator().manual_seed(seed))
    c[::7] = 0.0  # sign(0) = +1
    packed = pack_signs(c)
    assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(n / 8)
    assert torch.equal(unpack_signs(packed, n), torch.where(c >= 0, 1.0, -1.0))


def test_the_bit_order_is_element_i_at_bit_i_mod_8():
    c = torch.tensor([1.0, -1, -1, 1, -1, -1, -1, -1, 1])  # bits 0 and 3 of byte 0, bit 0 of byte 1
    assert pack_signs(c).tolist() == [0b00001001, 0b00000001]


@pytest.mark.parametrize("method, beta", [("sign", 64), ("hadamard", 4), ("hadamard", 5)])
def test_the_message_decodes_to_the_scaled_sign_and_the_residual_keeps_the_rest(method, beta):
    g, e = torch.randn(23), torch.randn(23) * 0.1
    message, residual = compress(g, e, method, beta)
    c = g + e
    sign = torch.where(c >= 0, 1.0, -1.0)
    if method == "sign":
        scale = c.abs().mean()
        assert message.nbytes == 3 + 4  # ceil(23 / 8) bytes of bits + one float scale
    else:
        blocks = [c[i : i + beta].abs().mean() for i in range(0, 23, beta)]  # the last block is shorter
        scale = torch.cat([b.repeat(min(beta, 23 - i * beta)) for i, b in enumerate(blocks)])
        assert message.nbytes == 3 + 4 * len(blocks)
    assert torch.allclose(message.decode(), sign * scale)
    assert torch.equal(residual, c - message.decode())  # exactly what was not sent
    assert torch.allclose(message.decode() + residual, c)


def test_error_feedback_keeps_the_sum_of_what_was_sent_close_to_the_sum_of_the_gradients():
    torch.manual_seed(0)
    residual, sent, true = None, torch.zeros(1000), torch.zeros(1000)
    for _ in range(200):
        g = torch.randn(1000) * 0.01 + 0.002  # a small common drift under noise
        message, residual = compress(g, residual, "sign")
        sent += message.decode()
        true += g
    assert torch.allclose(sent + residual, true, atol=1e-4)  # the identity: sent + kept = the gradients
    assert float((sent - true).abs().max()) < 0.1 * float(true.abs().max())


def test_bytes_and_ratios():
    assert compression_ratio("none", 4096) == 1 and compression_ratio("bf16", 4096) == 2
    assert compression_ratio("sign", 4096 * 4096) == pytest.approx(32, rel=1e-5)
    assert compression_ratio("hadamard", 4096, beta=64) == pytest.approx(4 * 4096 / (512 + 4 * 64))
    message, residual = compress(torch.randn(100), None, "none")
    assert residual is None and message.nbytes == 400
    assert Message("bf16", 3, torch.ones(3, dtype=torch.bfloat16)).nbytes == 6


def _rank(rank: int, world: int, store: str, method: str, out: str) -> None:
    """One DDP rank: a linear layer, a rank-specific batch, the hook; writes what it saw."""
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = torch.nn.Linear(37, 5, bias=False)
    local = torch.nn.Linear(37, 5, bias=False)
    local.load_state_dict(model.state_dict())
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    state = HookState(method, beta=8)
    ddp.register_comm_hook(state, compression_hook)
    x = torch.randn(11, 37, generator=torch.Generator().manual_seed(100 + rank))
    ddp(x).square().sum().backward()
    local(x).square().sum().backward()
    counters = state.take_counters()
    with open(f"{out}.{rank}", "w") as f:
        json.dump({"ddp": model.weight.grad.flatten().tolist(), "local": local.weight.grad.flatten().tolist(),
                   **counters}, f)  # fmt: skip
    dist.destroy_process_group()


@pytest.mark.parametrize("method", ["none", "bf16", "sign", "hadamard"])
def test_two_gloo_ranks_apply_the_mean_of_each_others_decoded_messages(tmp_path, method):
    out = str(tmp_path / "rank")
    mp.spawn(_rank, args=(2, str(tmp_path / "store"), method, out), nprocs=2, join=True)
    seen = [json.loads(open(f"{out}.{r}").read()) for r in range(2)]
    local = [torch.tensor(s["local"]) for s in seen]
    expected = sum(compress(g, None, method, 8)[0].decode() for g in local) / 2  # first step: no residual yet
    for s in seen:  # every rank got the same averaged update
        assert torch.allclose(torch.tensor(s["ddp"]), expected, atol=1e-6)
        n = 37 * 5
        assert s["comm_float32_bytes"] == 4 * n
        assert (
            s["comm_bytes"]
            == {
                "none": 4 * n,
                "bf16": 2 * n,
                "sign": math.ceil(n / 8) + 4,
                "hadamard": math.ceil(n / 8) + 4 * math.ceil(n / 8),
            }[method]
        )


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 700), beta=st.sampled_from([1, 3, 8, 16, 64, 1000]), seed=st.integers(0, 2**16))
def test_the_one_pass_loops_make_the_messages_the_torch_expressions_define(n, beta, seed):
    """kernels.py (numba, CPU) against Message.decode and the torch forms in compress.py."""
    from bnnctl.distributed.compress import block_scales

    gen = torch.Generator().manual_seed(seed)
    g, e = torch.randn(n, generator=gen), torch.randn(n, generator=gen) * 0.1
    g[:: max(1, n // 5)] = 0.0
    e[:: max(1, n // 5)] = 0.0  # c = 0 at some elements: sign +1
    c = g + e
    for method in ("sign", "hadamard", "bf16"):
        message, residual = compress(g, e, method, beta)
        if method == "bf16":
            assert torch.equal(message.payload, c.to(torch.bfloat16))  # round to nearest even, as torch
        else:
            assert torch.equal(message.payload, pack_signs(c))
            expected = c.abs().mean().reshape(1) if method == "sign" else block_scales(c, beta)
            assert torch.allclose(message.scales, expected, rtol=1e-6, atol=0)
        assert torch.equal(residual, c - message.decode())  # exactly what was not sent
        total = torch.full((n,), 0.25)
        message.add_to(total)
        assert torch.equal(total, 0.25 + message.decode())


def test_bf16_rounding_keeps_infinities_nans_and_ties_to_even():
    g = torch.tensor([float("inf"), -float("inf"), float("nan"), 1.0 + 2**-8, 1.0 + 3 * 2**-8, 65504.0, -0.0])
    message, residual = compress(g, torch.zeros_like(g), "bf16")
    expected = g.to(torch.bfloat16)
    same = (message.payload == expected) | (message.payload.isnan() & expected.isnan())
    assert bool(same.all())
    assert message.payload[3] == 1.0 and message.payload[4] == 1.0 + 2**-6  # ties go to the even mantissa
