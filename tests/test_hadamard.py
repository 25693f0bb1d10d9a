"""Hadamard BNNs: the post's network, the size report, weight distributions, the beta heatmap."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import torch.nn as nn
from typer.testing import CliRunner

from bnnctl.cli import app
from bnnctl.config.load import compose_train
from bnnctl.geometry.distributions import relative_l2, wasserstein_1, weight_distributions
from bnnctl.nn import Binarize, BinaryLinear, build_model, layer_sizes, model_size_bytes
from bnnctl.nn.binarize import Hadamard
from bnnctl.reporting.plots import plot_grid_heatmap

runner = CliRunner()


def test_a_pure_binary_layer_is_exactly_32_times_smaller():
    layer = nn.Sequential(BinaryLinear(64, 8, bias=False, weight_binarizer="ste_sign"))
    (row,) = layer_sizes(layer)
    assert row["bits_per_weight"] == 1 and row["compression"] == 32
    assert model_size_bytes(layer)["compression"] == 32


@pytest.mark.parametrize("beta", [1, 2, 4, 8, 16, 32, 64])
def test_a_hadamard_layer_is_beta_32_over_beta_plus_32_times_smaller(beta):
    layer = nn.Sequential(BinaryLinear(64, 8, bias=False, weight_binarizer=Hadamard(beta=beta)))
    (row,) = layer_sizes(layer)
    assert row["compression"] == pytest.approx(beta * 32 / (beta + 32), rel=1e-12)
    assert row["bits_per_weight"] == pytest.approx(1 + 32 / beta)


def test_a_short_last_block_stores_one_more_scale():
    assert Hadamard(beta=16).storage_bits(rows=3, row_length=40) == 3 * (40 + 32 * 3)  # blocks 16, 16, 8


def test_float_parts_count_32_bits_and_the_totals_add_up():
    cfg = compose_train(["debug=tiny", "experiment=hbnn_vs_bnn"])
    model = build_model(cfg.model, cfg.binarize, (1, 28, 28), 10)
    rows = layer_sizes(model)
    assert rows[0]["weights"] == "float32" and rows[0]["compression"] == 1  # the first layer is full precision
    total = model_size_bytes(model)
    assert total["bytes_deployed"] == pytest.approx(sum(r["bytes_deployed"] for r in rows))
    assert total["bytes_float32"] == 4 * sum(p.numel() for p in model.parameters())


def test_the_post_network_is_float_relu_then_binary_layers_on_binary_activations():
    cfg = compose_train(["debug=tiny", "experiment=hbnn_vs_bnn", "model.width=16"])
    model = build_model(cfg.model, cfg.binarize, (1, 28, 28), 10)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Flatten", "BinaryLinear", "ReLU", "Binarize", "BinaryLinear", "ReLU", "Binarize", "BinaryLinear"]
    first, second, last = [m for m in model if isinstance(m, BinaryLinear)]
    assert not first.weight_binarizer.quantizes and second.weight_binarizer.params["beta"] == 16
    assert [m.binarizer.params["beta"] for m in model if isinstance(m, Binarize)] == [2, 2]
    assert not any(layer.has_binary_weights for layer in (second, last))  # scaled signs: never packable


def test_after_a_relu_plain_sign_needs_sign_zero_0_to_carry_anything():
    relu_out = torch.tensor([[0.0, 0.3, 0.0, 1.2]])
    bnn = compose_train(["debug=tiny", "experiment=hbnn_vs_bnn", "binarize=wolfram_sign"])
    model = build_model(bnn.model, bnn.binarize, (1, 28, 28), 10)
    act = next(m for m in model if isinstance(m, Binarize))
    assert act(relu_out).tolist() == [[0.0, 1.0, 0.0, 1.0]]  # Sign[0] = 0 (Wolfram)
    assert Hadamard(beta=2, sign_zero=0)(relu_out, True)[0].tolist() == pytest.approx([0.0, 0.15, 0.0, 0.6])


def test_wasserstein_and_relative_l2_by_hand():
    latent, binarized = torch.tensor([-0.5, 0.25]), torch.tensor([-1.0, 1.0])
    assert wasserstein_1(latent, binarized) == pytest.approx((0.5 + 0.75) / 2)
    assert relative_l2(latent, binarized) == pytest.approx(((0.25 + 0.5625) / (0.25 + 0.0625)) ** 0.5)


def test_distributions_of_full_precision_hadamard_are_the_latent_ones_and_xnor_is_one_block():
    torch.manual_seed(0)
    full = nn.Sequential(BinaryLinear(8, 4, weight_binarizer=Hadamard(beta=1)))
    row = weight_distributions([("full", full)])[0].iloc[0]
    assert row["wasserstein_1"] == pytest.approx(0, abs=1e-7) and row["relative_l2"] == pytest.approx(0, abs=1e-7)
    xnor = nn.Sequential(BinaryLinear(8, 4, weight_binarizer=Hadamard(beta=8)))
    row = weight_distributions([("xnor", xnor)])[0].iloc[0]
    assert row["wasserstein_1"] == pytest.approx(row["xnor_wasserstein_1"])  # beta = the row: XNOR-Net
    sign = nn.Sequential(BinaryLinear(8, 4, weight_binarizer="ste_sign"))
    row = weight_distributions([("sign", sign)])[0].iloc[0]
    assert row["distinct_binarized"] == 2 and row["relative_l2"] > row["xnor_relative_l2"]


def test_heatmap_of_a_two_axis_grid(tmp_path):
    manifest = {
        "grid": {
            "name": "g",
            "axes": [{"key": "w.beta", "values": [1, 2, 4]}, {"key": "a.beta", "values": [1, 2, 4]}],
        }
    }
    table = pd.DataFrame(
        [
            {"w.beta": a, "a.beta": b, "peak_val_acc_mean": 0.5 + 0.01 * a - 0.02 * b}
            for a in (1, 2, 4)
            for b in (1, 2, 4)
        ]
    )
    path = plot_grid_heatmap(table, manifest, tmp_path / "heatmap.png")
    assert path is not None and path.stat().st_size > 0
    small = {"grid": {"name": "g", "axes": [{"key": "w.beta", "values": [1, 2]}, {"key": "a.beta", "values": [1, 2]}]}}
    assert plot_grid_heatmap(table, small, tmp_path / "none.png") is None


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("had")
    folders = []
    for binarize in ("hadamard", "wolfram_sign"):
        r = runner.invoke(
            app,
            [
                "train",
                "debug=tiny",
                "experiment=hbnn_vs_bnn",
                f"binarize={binarize}",
                "train.epochs=1",
                f"runs_dir={runs}",
                "--json",
            ],
        )
        assert r.exit_code == 0, r.output
        folders.append(next(p for p in (runs / "train").iterdir() if p.is_dir() and p not in folders))
    return runs, folders


def test_geometry_weights_compares_a_hadamard_run_with_a_sign_run(two_runs):
    runs, (hadamard, plain) = two_runs
    r = runner.invoke(app, ["geometry", "weights", str(hadamard), str(plain), f"runs_dir={runs}"])
    assert r.exit_code == 0, r.output
    (folder,) = (runs / "geometry" / "weights").iterdir()
    table = pd.read_csv(folder / "results.csv")
    assert len(table) == 4  # two binary layers per run
    by_kind = table.groupby(table["binarizer"].str.startswith("hadamard"))["wasserstein_1"].max()
    assert by_kind[True] < by_kind[False]  # Hadamard keeps the distribution, sign collapses it to +-1
    assert (folder / "weight_histograms.png").stat().st_size > 0
    assert runner.invoke(app, ["geometry", "weights"]).exit_code == 2


def test_eval_and_runs_ls_report_the_size(two_runs):
    runs, (hadamard, _) = two_runs
    r = runner.invoke(app, ["eval", str(hadamard), "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert [row["weights"].startswith("hadamard") for row in result["layers"]] == [False, True, True]
    assert result["model_compression"] > 1
    listing = runner.invoke(app, ["runs", "ls", "--runs-dir", str(runs), "--json"])
    assert listing.exit_code == 0, listing.output
    rows = json.loads(listing.stdout)
    rows = rows["runs"] if isinstance(rows, dict) else rows
    assert all(row["compression"] > 1 for row in rows)


def test_the_cnn_takes_hadamard_binarization_with_a_beta_per_conv_and_fc_layer():
    cfg = compose_train(
        [
            "debug=tiny",
            "model=bnn_cnn",
            "model.width_mult=0.0625",
            "binarize=hadamard",
            "binarize.weights.params.beta=[1,4,4,4,4,8,8,8,1]",
        ]
    )
    model = build_model(cfg.model, cfg.binarize, (1, 28, 28), 10)
    betas = [m.weight_binarizer.params["beta"] for m in model if hasattr(m, "weight_binarizer")]
    assert betas == [1, 4, 4, 4, 4, 8, 8, 8, 1]  # first and last at beta = 1: full precision, as HadaNets
    out = model(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
