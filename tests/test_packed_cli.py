"""`bnnctl export`, `eval --packed`, `bench gemm|infer` as scripts see them; the size and real-data checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnnctl.cli import app
from bnnctl.nn import build_model
from bnnctl.nn.size import model_size_bytes
from bnnctl.packed.export import pack_model, save_packed
from helpers import tiny

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def trained_run(runs_dir: Path, *overrides: str) -> Path:
    result = invoke("train", "debug=tiny", "train.epochs=1", f"runs_dir={runs_dir}", *overrides, "--json")
    assert result.exit_code == 0, result.stderr
    return Path(json.loads(result.stdout)["run_dir"])


@pytest.fixture(scope="module")
def bnn_run(tmp_path_factory) -> Path:
    return trained_run(tmp_path_factory.mktemp("runs"), "model=bnn_mlp", "model.width=96")


def test_export_writes_a_packed_file_much_smaller_than_the_checkpoint(bnn_run):
    result = invoke("export", bnn_run, "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert Path(info["file"]) == bnn_run / "packed.npz" and Path(info["file"]).stat().st_size == info["packed_bytes"]
    assert info["x_smaller_than_float32"] > 10  # 96 units: the first layer's float BN and the head weigh in
    assert [op["kind"] for op in info["ops"]].count("xnor_linear") == 3


def test_eval_packed_gives_the_float_models_predictions(bnn_run):
    invoke("export", bnn_run)
    result = invoke("eval", bnn_run, "--packed", "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["identical_predictions"] and info["predictions_differ"] == 0 and info["n"] == 500
    assert info["test_acc_packed"] == info["test_acc_float"]
    assert info["packed_model"].endswith("packed.npz")
    assert json.loads((bnn_run / "eval_packed.json").read_text())["n"] == 500


def test_export_refuses_a_hadamard_model_in_one_line_naming_the_layer(tmp_path):
    run = trained_run(tmp_path, "model=hbnn", "binarize=hadamard", "model.width=32")
    result = invoke("export", run)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: layer ") and "hadamard(beta=" in lines[0]
    assert not (run / "packed.npz").exists()


def test_eval_packed_names_a_damaged_packed_file(bnn_run, tmp_path):
    copy = tmp_path / bnn_run.name
    copy.mkdir()
    for name in ("checkpoint.pt", "config.yaml", "DONE", "summary.json"):
        (copy / name).write_bytes((bnn_run / name).read_bytes())
    (copy / "packed.npz").write_bytes(b"PK\x03\x04 cut off")
    result = invoke("eval", copy, "--packed")
    assert result.exit_code == 2
    assert "packed.npz: not a readable packed model file" in result.stderr


def test_bench_gemm_reports_every_method_with_ratios(tmp_path, monkeypatch):
    import bnnctl.nn.lowp as lowp

    monkeypatch.setattr(lowp, "cpu_has_native_bf16", lambda: True)  # as on an AVX-512 BF16 CPU
    monkeypatch.setattr(lowp, "cpu_has_vnni", lambda: True)
    result = invoke("bench", "gemm", "--m", "1,5", "--kn", "128", "--rounds", "1", "-o", tmp_path, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["products"]
    methods = {r["method"] for r in rows}
    assert {"packed", "packed+pack", "packed_rows", "float32", "float32_onednn", "bfloat16"} <= methods
    assert "int8" in methods and json.loads(result.stdout)["skipped"] == {}
    from bnnctl.bench.gemm import _operands, product_methods, skipped_methods

    monkeypatch.setattr(lowp, "cpu_has_native_bf16", lambda: False)  # AVX2: bf16 emulated, not worth timing
    monkeypatch.setattr(lowp, "cpu_has_vnni", lambda: False)
    assert set(product_methods(*_operands(3, 64, 64))) == {
        "packed", "packed+pack", "packed_rows", "float32", "float32_onednn"
    }  # fmt: skip
    assert set(skipped_methods()) == {"bfloat16", "int8"} and "no AVX-512 VNNI" in skipped_methods()["int8"]
    reference = [r for r in rows if r["method"] == "float32_onednn"]
    assert all(r["x_float32_onednn"] == 1.0 for r in reference) and all(r["GOP/s"] > 0 for r in rows)
    assert (tmp_path / "products.csv").is_file() and (tmp_path / "products.md").is_file()


def test_bench_gemm_sizes_draws_the_figure(tmp_path):
    args = ("bench", "gemm", "--m", "1", "--kn", "64", "--rounds", "1", "--sizes", "--size-list", "64,96")
    result = invoke(*args, "--naive-max", "64", "-o", tmp_path, "--json")
    assert result.exit_code == 0, result.stderr
    sizes = json.loads(result.stdout)["sizes"]
    assert {(r["size"], r["method"]) for r in sizes} >= {(64, "naive"), (96, "hadamard_block"), (96, "packed")}
    assert (96, "naive") not in {(r["size"], r["method"]) for r in sizes}
    assert (tmp_path / "sizes.png").stat().st_size > 10_000


def test_bench_gemm_rejects_a_bad_size_list():
    result = invoke("bench", "gemm", "--m", "1,x")
    assert (
        result.exit_code == 2
        and result.stderr.strip() == "error: --m: expected positive integers separated by commas, got '1,x'"
    )


def test_bench_infer_times_the_three_forms(bnn_run):
    result = invoke("bench", "infer", bnn_run, "--batch", "1,3", "--rounds", "1", "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert {(r["batch"], r["model"]) for r in rows} == {
        (b, m) for b in (1, 3) for m in ("float", "float_cached", "packed")
    }


@pytest.mark.slow
def test_the_packed_3x4096_bnn_mlp_is_over_25_times_smaller_than_float32(tmp_path):
    cfg = tiny("model=bnn_mlp", "model.width=4096")
    model = build_model(cfg.model, cfg.binarize, (1, 28, 28), 10).eval()
    path = save_packed(pack_model(model, (1, 28, 28)), tmp_path / "packed.npz")
    float32 = model_size_bytes(model)["bytes_float32"]
    assert float32 / path.stat().st_size >= 25


@pytest.mark.slow
def test_packed_predictions_on_real_fashion_mnist_equal_the_float_models(tmp_path, fashion):
    run = trained_run(tmp_path, "model=bnn_mlp", "model.width=256", "data=fashion_mnist", f"data.root={fashion}")
    assert invoke("export", run).exit_code == 0
    result = invoke("eval", run, "--packed", "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["n"] == 10000 and info["predictions_differ"] == 0
    assert info["test_acc_packed"] == info["test_acc_float"] > 0.7
