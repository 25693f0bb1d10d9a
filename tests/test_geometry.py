"""The geometry of binarization: the paper's numbers, measured (Anderson & Berg 2018, arXiv:1705.07199)."""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from typer.testing import CliRunner

from bnnctl.cli import app
from bnnctl.config.load import load_geometry
from bnnctl.errors import ConfigError, RunError
from bnnctl.geometry.random_angles import SIGN_THEORY_DEG, run_angles, ternary_theory_deg
from bnnctl.geometry.weight_angles import weight_angles
from bnnctl.nn import BinaryLinear

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """The summary of one tiny trained run (the BLU MLP, one epoch), shared by the CLI tests on trained runs."""
    runs = tmp_path_factory.mktemp("trained")
    result = runner.invoke(app, ["train", "debug=tiny", "train.epochs=1", f"runs_dir={runs}", "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def study(*overrides: str):
    return run_angles(load_geometry("angles", ["geometry.samples=2000", *overrides]))


def test_the_limit_angle_is_arccos_sqrt_2_over_pi():
    assert SIGN_THEORY_DEG == pytest.approx(37.0714, abs=1e-4)  # 0.6470 rad
    assert ternary_theory_deg(0.0) == pytest.approx(SIGN_THEORY_DEG)


def test_x_and_sign_x_meet_at_37_degrees_and_random_pairs_at_90_in_high_dimension():
    row = study("geometry.dims=[10000]").table.iloc[0]
    assert abs(row["mean_deg"] - SIGN_THEORY_DEG) < 0.1
    assert row["ci_low_deg"] < row["mean_deg"] < row["ci_high_deg"]
    assert abs(row["random_mean_deg"] - 90) < 1


def test_the_spread_shrinks_like_one_over_root_d():
    result = study("geometry.dims=[10,30,100,300,1000,3000]")
    assert result.notes["std_slope"] == pytest.approx(-0.5, abs=0.05)
    assert result.table["mean_deg"].is_monotonic_increasing  # small d: smaller angles, rising to the limit


def test_ternary_monte_carlo_matches_the_closed_form_and_finds_its_minimum():
    result = study("binarize=ternary", "geometry.threshold_sigma=[0.01,0.111,0.3,0.6,1.0,1.5]")
    t = result.table
    assert ((t["mean_deg"] - t["theory_deg"]).abs() < 0.3).all()
    assert result.notes["best_threshold_sigma"] == 0.6
    assert result.notes["best_theory_threshold_sigma"] == pytest.approx(0.612, abs=0.01)


def test_hadamard_angle_rises_with_the_block_length_towards_sign():
    t = study("binarize=hadamard", "geometry.hadamard_dim=1024", "geometry.beta=[1,2,4,16,64,1024]").table
    assert t["mean_deg"].iloc[0] == pytest.approx(0, abs=1e-4)  # beta = 1: x itself
    assert t["mean_deg"].is_monotonic_increasing
    assert abs(t["mean_deg"].iloc[-1] - SIGN_THEORY_DEG) < 0.5  # beta = d: XNOR scale, sign's angle


def test_a_random_rotation_restores_37_degrees_on_decaying_spectra():
    t = study("geometry.rotation=true", "geometry.rotation_dims=[100,500]").table.set_index(["basis", "d"])
    for d in (100, 500):
        assert abs(t.loc[("rotated", d), "mean_deg"] - SIGN_THEORY_DEG) < 0.5
        assert t.loc[("standard", d), "mean_deg"] > 60  # one coordinate dominates x


def test_a_study_repeats_with_its_seed():
    a, b = study("geometry.dims=[50]"), study("geometry.dims=[50]")
    assert a.table.equals(b.table) and not a.table.equals(study("geometry.dims=[50]", "geometry.seed=1").table)


def test_trained_weight_angles_per_layer():
    torch.manual_seed(0)
    model = nn.Sequential(BinaryLinear(1000, 40), BinaryLinear(40, 10))
    with torch.no_grad():
        model[0].weight.normal_()  # Gaussian rows: the random-vector case
        model[1].weight.copy_(torch.randint(0, 2, (10, 40)).float() * 2 - 1)  # already +-1: nothing to lose
    table, layers = weight_angles(model, load_geometry("angles", ["geometry.samples=500"]))
    assert list(table["d"]) == [1000, 40] and list(table["vectors"]) == [40, 10]
    assert abs(table["mean_deg"].iloc[0] - SIGN_THEORY_DEG) < 1.0
    assert table["mean_deg"].iloc[1] == pytest.approx(0, abs=1e-5)
    with pytest.raises(RunError, match="no binary layers"):
        weight_angles(nn.Sequential(nn.Linear(3, 2)), load_geometry("angles", []))


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["geometry.dims=[]"], "geometry.dims must be a non-empty list"),
        (["geometry.dims=[0,10]"], "geometry.dims must be a non-empty list of dimensions >= 1"),
        (["geometry.dimz=[10]"], "geometry.dimz"),
        (["binarize=xnor"], "binarize"),
        (["train.epochs=3"], "expected binarize=<sign|ternary|hadamard> or geometry.<key>=<value>"),
    ],
)
def test_bad_study_input_is_one_line_naming_the_key(overrides, match):
    with pytest.raises(ConfigError, match=match) as info:
        load_geometry("angles", overrides)
    assert "\n" not in str(info.value)


def test_cli_writes_the_study_folder_and_prints_json(tmp_path):
    result = runner.invoke(
        app, ["geometry", "angles", "geometry.dims=[3,27]", "geometry.samples=500", f"runs_dir={tmp_path}", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    folder = Path(summary["folder"])
    assert folder.parent == tmp_path / "geometry" / "angles"
    for name in (
        "results.csv",
        "table.md",
        "config.yaml",
        "summary.json",
        "angle_distributions.png",
        "angle_vs_dimension.png",
    ):
        assert (folder / name).stat().st_size > 0, name
    assert [row["d"] for row in summary["table"]] == [3, 27]
    assert math.isclose(summary["table"][0]["theory_deg"], SIGN_THEORY_DEG)


def test_cli_on_a_trained_run_and_on_a_folder_that_is_not_one(tmp_path, trained):
    result = runner.invoke(
        app, ["geometry", "angles", trained["run_dir"], "geometry.samples=200", f"runs_dir={tmp_path}", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    table = json.loads(result.stdout)["table"]
    assert [row["d"] for row in table] == [784, 64, 64, 64]  # the tiny BLU MLP's four binary layers
    assert all(0 < row["mean_deg"] < 90 for row in table)
    bad = runner.invoke(app, ["geometry", "angles", str(tmp_path), f"runs_dir={tmp_path}"])
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "not a bnnctl run folder" in bad.stderr


# --- dot products, filters, the first layer -------------------------------------------------


def test_dot_products_are_exact_for_pm1_weights_and_track_sqrt_2_over_pi_for_gaussian_ones():
    from bnnctl.geometry.dot_products import dot_products
    from bnnctl.nn import Binarize

    torch.manual_seed(0)
    model = nn.Sequential(
        BinaryLinear(1000, 200, bias=False), nn.BatchNorm1d(200), Binarize(), BinaryLinear(200, 50, bias=False)
    )
    with torch.no_grad():
        model[0].weight.copy_(torch.randint(0, 2, (200, 1000)).float() * 2 - 1)  # real weights already +-1
        model[3].weight.normal_()
    images = torch.randint(0, 2, (300, 1000)).float() * 2 - 1
    table, layers = dot_products(model.eval(), images)
    first, second = table.iloc[0], table.iloc[1]
    assert first["r"] == pytest.approx(1.0, abs=1e-9) and first["slope"] == pytest.approx(1.0, abs=1e-9)
    assert "r_activations" not in first or math.isnan(first["r_activations"])  # the first layer has no sign before it
    # Gaussian W_c, +-1 inputs: corr(a.W_b, a.W_c) = cos(angle(W_c, W_b)) ~ sqrt(2/pi)
    assert second["r"] == pytest.approx(math.sqrt(2 / math.pi), abs=0.03)
    assert 0 < second["r_activations"] < 1
    assert abs(second["r_control"]) < 0.05 and abs(first["r_control"]) < 0.05
    assert len(layers[1].binary) == 300 * 50


def test_unique_filters_of_a_hand_built_layer(tmp_path):
    from bnnctl.geometry.filters import count_unique, unique_filters
    from bnnctl.nn import BinaryConv2d

    a = torch.tensor([[1.0, -1, 1], [1, 1, 1], [-1, -1, 1]])
    kernels = torch.stack([a, a, -a, torch.ones(3, 3)]).reshape(2, 2, 3, 3)  # 4 filters: a, a, -a, all +1
    counts = count_unique(kernels)
    assert (counts["filters"], counts["unique"], counts["unique_up_to_sign"]) == (4, 3, 2)
    assert (counts["possible"], counts["possible_up_to_sign"]) == (512, 256)
    conv = BinaryConv2d(2, 2, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(kernels * 0.3)  # latent weights: same signs
    table = unique_filters(nn.Sequential(conv))
    assert table.iloc[0]["unique"] == 3 and table.iloc[0]["unique_share"] == 0.75
    from bnnctl.geometry import figures

    assert figures.filter_shares(table, tmp_path / "filters.png").stat().st_size > 0
    with pytest.raises(RunError, match="no binary conv layers"):
        unique_filters(nn.Sequential(BinaryLinear(3, 2)))


def test_patch_pca_and_participation_ratio():
    from bnnctl.geometry.first_layer import pca, sample_patches

    g = torch.Generator().manual_seed(0)
    images = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5)
    patches = sample_patches(images, 3, 50, g)
    assert patches.shape == (50, 9)
    assert all(
        any(torch.equal(p.float(), q) for q in torch.nn.functional.unfold(images, 3).permute(0, 2, 1).reshape(-1, 9))
        for p in patches[:10]
    )  # every sample is a real patch
    rank_one = torch.randn(1000, 1, dtype=torch.float64, generator=g) * torch.ones(1, 9, dtype=torch.float64)
    values, rotation = pca(rank_one)
    assert values[0] / values.sum() == pytest.approx(1.0) and (values.sum() ** 2 / (values**2).sum()) == pytest.approx(
        1.0
    )
    assert torch.allclose(rotation @ rotation.T, torch.eye(9, dtype=torch.float64), atol=1e-9)
    iid = torch.randn(20000, 9, dtype=torch.float64, generator=g)
    values, _ = pca(iid)
    assert values.sum() ** 2 / (values**2).sum() == pytest.approx(9, rel=0.02)  # independent: all 9 dimensions


def test_geometry_commands_need_a_trained_run(tmp_path, trained):
    for command in ("dot-products", "filters"):
        result = runner.invoke(app, ["geometry", command, f"runs_dir={tmp_path}"])
        assert result.exit_code == 2 and "RUN_DIR missing" in result.stderr
    result = runner.invoke(
        app, ["geometry", "dot-products", trained["run_dir"], "geometry.images=100", f"runs_dir={tmp_path}", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["table"]
    assert len(rows) == 4 and all(0 < row["r"] <= 1 for row in rows)
    assert (Path(json.loads(result.stdout)["folder"]) / "dot_products.png").is_file()
    mlp = runner.invoke(app, ["geometry", "filters", trained["run_dir"], f"runs_dir={tmp_path}"])
    assert mlp.exit_code == 2 and "no binary conv layers" in mlp.stderr


def test_first_layer_command_on_synthetic_patches(tmp_path):
    result = runner.invoke(
        app,
        [
            "geometry",
            "first-layer",
            "geometry.dataset=synthetic",
            "geometry.patches=3000",
            f"runs_dir={tmp_path}",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["notes"]["d"] == 9 and 1 <= summary["notes"]["participation_ratio"] <= 9
    assert {(r["basis"], r["patches"]) for r in summary["table"]} == {
        ("pixel", "raw"),
        ("pca", "raw"),
        ("pixel", "centered"),
        ("pca", "centered"),
    }
    assert (Path(summary["folder"]) / "pca.csv").is_file() and (Path(summary["folder"]) / "first_layer.png").is_file()


def test_a_study_reports_its_progress_setting_by_setting():
    seen = []
    run_angles(
        load_geometry("angles", ["geometry.dims=[5,50,500]", "geometry.samples=100"]),
        lambda label, done, total: seen.append((label, done, total)),
    )
    assert seen == [("d=5", 1, 3), ("d=50", 2, 3), ("d=500", 3, 3)]


def test_edge_cases_give_nan_rows_or_one_line_errors_not_crashes(tmp_path):
    t = study("binarize=ternary", "geometry.ternary_dim=3", "geometry.threshold_sigma=[4.0,0.1]").table
    assert math.isnan(t["mean_deg"].iloc[0]) and not math.isnan(
        t["mean_deg"].iloc[1]
    )  # t = 4 sigma zeroes all of d = 3
    seen = []
    run_angles(
        load_geometry(
            "angles", ["binarize=hadamard", "geometry.hadamard_dim=8", "geometry.beta=[1,4]", "geometry.samples=10"]
        ),
        lambda *p: seen.append(p),
    )
    assert seen == [("beta=1", 1, 2), ("beta=4", 2, 2)]
    result = runner.invoke(
        app, ["geometry", "first-layer", "geometry.dataset=synthetic", "geometry.patch_size=40", f"runs_dir={tmp_path}"]
    )
    assert result.exit_code == 2 and "geometry.patch_size=40 exceeds the images (28 x 28)" in result.stderr


def test_dot_products_leave_out_float_layers():
    from bnnctl.geometry.dot_products import dot_products
    from bnnctl.nn import IDENTITY, Binarize

    model = nn.Sequential(BinaryLinear(20, 30, weight_binarizer=IDENTITY), Binarize(), BinaryLinear(30, 5))
    table, _ = dot_products(model.eval(), torch.randn(50, 20))
    assert list(table["layer"]) == ["2"]  # the float first layer is not a binary one
