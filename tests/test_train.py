import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from bnnctl.config import OptimizerConfig
from bnnctl.config.load import load_yaml
from bnnctl.errors import RunError
from bnnctl.nn import BinaryLinear
from bnnctl.runs import Run, create_run, load_trained, open_run
from bnnctl.training import evaluate_run, fit, train_into
from bnnctl.training.optim import clip_, glorot_lr_scale, lr_at_epoch
from helpers import tiny

LEGACY_TRAIN_RUN = next((Path(__file__).parent / "fixtures" / "legacy_v1" / "train").iterdir())

TIMING_KEYS = {"epoch_time_s", "eval_time_s", "samples_per_s"}


def _without_timing(history):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history]


def _fit_run(runs_dir, *overrides):
    cfg = tiny(*overrides)
    run = create_run(runs_dir, "train", cfg.run_name, cfg)
    summary = train_into(run, cfg, overrides=list(overrides))
    return cfg, run, summary


def test_a_binary_mlp_learns_the_synthetic_task(runs_dir):
    _, run, summary = _fit_run(runs_dir, "model=bnn_mlp", "optimizer.lr=0.01", "train.epochs=3")
    assert summary["final_test_acc"] > 0.9
    assert summary["epochs"] == 3 and len([m for m in run.metrics() if m["kind"] == "epoch"]) == 3


def test_stochastic_binarization_trains_too(runs_dir):
    _, _, summary = _fit_run(runs_dir, "model=bnn_mlp", "optimizer.lr=0.01", "binarize=stochastic", "train.epochs=3")
    assert summary["final_test_acc"] > 0.8


def test_a_cpu_run_repeats_exactly_with_the_same_seed(runs_dir):
    _, a, _ = _fit_run(runs_dir, "model=bnn_mlp", "binarize=stochastic", "model.dropout=0.3")
    _, b, _ = _fit_run(runs_dir, "model=bnn_mlp", "binarize=stochastic", "model.dropout=0.3")
    _, c, _ = _fit_run(runs_dir, "model=bnn_mlp", "binarize=stochastic", "model.dropout=0.3", "train.seed=1")
    assert _without_timing(a.metrics()) == _without_timing(b.metrics())
    assert _without_timing(a.metrics()) != _without_timing(c.metrics())
    wa, wb = a.load_checkpoint()["model"], b.load_checkpoint()["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def _latent_weights(run):
    state = run.load_checkpoint()["model"]
    return [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]


def test_weight_clipping_keeps_latent_weights_in_the_unit_interval(runs_dir):
    _, clipped, _ = _fit_run(runs_dir, "optimizer.lr=0.1", "train.weight_clip=true")
    _, free, _ = _fit_run(runs_dir, "optimizer.lr=0.1", "train.weight_clip=false")
    assert max(w.abs().max().item() for w in _latent_weights(clipped)) <= 1.0
    assert max(w.abs().max().item() for w in _latent_weights(free)) > 1.0


def test_clip_bounds_every_element_in_place():
    g = torch.tensor([-3.0, -1.0, -0.25, 0.5, 1.0, 7.0])
    clip_([g])
    assert g.tolist() == [-1.0, -1.0, -0.25, 0.5, 1.0, 1.0]


def test_gradient_clipping_changes_training(runs_dir):
    _, a, _ = _fit_run(runs_dir, "model.width=128", "train.grad_clip=false")
    _, b, _ = _fit_run(runs_dir, "model.width=128", "train.grad_clip=true")
    assert _without_timing(a.metrics()) != _without_timing(b.metrics())


def test_validation_every_n_iterations_is_logged(runs_dir):
    _, run, _ = _fit_run(runs_dir, "train.eval_every=10")
    iters = [m for m in run.metrics() if m["kind"] == "iter"]
    assert [m["iteration"] for m in iters] == [10, 20, 30, 40, 50, 60]  # 2 epochs x 32 steps
    assert all(0 <= m["val_acc"] <= 1 for m in iters)


def test_learning_rate_schedules():
    o = OptimizerConfig(lr=3e-3, lr_end=3e-7, schedule="exponential")
    assert lr_at_epoch(o, 0, 10) == pytest.approx(3e-3)
    assert lr_at_epoch(o, 9, 10) == pytest.approx(3e-7)
    assert lr_at_epoch(o, 1, 10) / lr_at_epoch(o, 0, 10) == pytest.approx(1e-4 ** (1 / 9))
    c = OptimizerConfig(lr=1e-3, lr_end=1e-5, schedule="cosine")
    assert lr_at_epoch(c, 0, 5) == pytest.approx(1e-3) and lr_at_epoch(c, 4, 5) == pytest.approx(1e-5)
    assert lr_at_epoch(OptimizerConfig(lr=1e-3), 7, 10) == 1e-3


def test_glorot_lr_scale_matches_the_bnn_code():
    # 1/sqrt(1.5/(fan_in+fan_out)): x73.9 for 4096x4096, x57.0 for 784x4096 (the BNN paper's Theano code, github.com/MatthieuCourbariaux/BinaryNet)
    assert glorot_lr_scale(BinaryLinear(4096, 4096)) == pytest.approx(73.9, abs=0.05)
    assert glorot_lr_scale(BinaryLinear(784, 4096)) == pytest.approx(57.0, abs=0.05)


def test_run_folder_is_self_describing_and_done_is_written_last(runs_dir):
    _, run, summary = _fit_run(runs_dir, "train.epochs=2")
    files = {p.name for p in run.path.iterdir()}
    assert files == {
        "config.yaml",
        "overrides.txt",
        "env.json",
        "metrics.jsonl",
        "summary.json",
        "checkpoint.pt",
        "curves.png",
        "DONE",
    }
    assert len(run.path.name.split("_")[-1]) == 8  # <time>_<name>_<hash8>
    mtimes = {p.name: p.stat().st_mtime_ns for p in run.path.iterdir()}
    assert mtimes["DONE"] == max(mtimes.values())
    env = json.loads((run.path / "env.json").read_text())
    assert env["packages"]["torch"] and env["device"] == "cpu" and "git" in env
    assert isinstance(env["cpu_capability"], str) and env["cpu_capability"]  # AVX2, AVX512, SVE256, ...
    assert set(env["cpu_int8_units"]) == {"vnni", "native_bf16"}
    assert (run.path / "overrides.txt").read_text() == "train.epochs=2\n"
    assert json.loads((run.path / "summary.json").read_text()) == summary


def test_the_same_config_gets_the_same_hash(runs_dir):
    _, a, _ = _fit_run(runs_dir, "train.epochs=1")
    _, b, _ = _fit_run(runs_dir, "train.epochs=1")
    _, c, _ = _fit_run(runs_dir, "train.epochs=1", "train.seed=3")
    hashes = [r.path.name.rsplit("_", 1)[1].split("-")[0] for r in (a, b, c)]
    assert hashes[0] == hashes[1] != hashes[2]
    assert a.path != b.path


def test_eval_reproduces_the_test_accuracy_of_training(runs_dir):
    _, run, summary = _fit_run(runs_dir, "model=bnn_mlp")
    result = evaluate_run(run.path)
    assert result["test_acc"] == summary["final_test_acc"]
    assert json.loads((run.path / "eval.json").read_text())["test_acc"] == result["test_acc"]


def test_eval_rejects_bad_run_folders(tmp_path, runs_dir):
    with pytest.raises(RunError, match="does not exist"):
        evaluate_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="not a bnnctl run folder"):
        evaluate_run(tmp_path / "empty")
    _, run, _ = _fit_run(runs_dir, "train.epochs=1")
    (run.path / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(RunError, match="corrupt or not a bnnctl checkpoint"):
        evaluate_run(run.path)
    (run.path / "checkpoint.pt").unlink()
    with pytest.raises(RunError, match="has no checkpoint.pt"):
        open_run(run.path).load_checkpoint()


def test_a_checkpoint_carries_its_config_and_rebuilds_the_trained_model(runs_dir):
    cfg, run, summary = _fit_run(runs_dir, "model=bnn_mlp", "train.epochs=1")
    (run.path / "config.yaml").write_text("not: [the, config")  # the checkpoint alone suffices
    loaded_cfg, model = load_trained(run)
    assert loaded_cfg.model == cfg.model and not model.training
    assert evaluate_run(run.path)["test_acc"] == summary["final_test_acc"]


def test_runs_of_the_previous_version_evaluate_to_their_recorded_accuracy(tmp_path):
    run = Path(shutil.copytree(LEGACY_TRAIN_RUN, tmp_path / LEGACY_TRAIN_RUN.name))
    assert "config" not in Run(run).load_checkpoint()  # a v1 checkpoint: config.yaml supplies it
    recorded = json.loads((run / "summary.json").read_text())["final_test_acc"]
    assert evaluate_run(run)["test_acc"] == recorded
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("width: 32", "width: 16"))
    with pytest.raises(RunError, match="does not fit its config"):
        evaluate_run(run)


def test_todays_training_repeats_the_previous_versions_numbers(tmp_path):
    """The refactor kept behaviour: the v1 run's config, trained today, gives its metrics again.

    With float32 products, as every product was then; today's default on a CPU with VNNI and native bf16
    (auto: int8 forward, bf16-rounded gradients) moves these 400-example numbers by a few examples.
    """
    cfg = load_yaml(LEGACY_TRAIN_RUN / "config.yaml")
    assert cfg.train.binary_matmul == "auto"  # a key it lacks takes today's default, so the run id stays
    cfg.train.binary_matmul = "fp32"
    run = Run(tmp_path / "again")
    run.path.mkdir()
    train_into(run, cfg)
    before = [json.loads(line) for line in (LEGACY_TRAIN_RUN / "metrics.jsonl").read_text().splitlines()]
    after = run.metrics()
    assert len(after) == len(before) == 1
    for key in (
        "train_acc",
        "val_acc",
        "test_acc",
    ):  # 400-500 examples: one flip is 0.0025 (other CPUs round differently)
        assert after[0][key] == pytest.approx(before[0][key], abs=0.0041), key
    for key in ("train_loss", "val_loss", "test_loss"):
        assert after[0][key] == pytest.approx(before[0][key], rel=1e-3), key


@pytest.mark.slow
def test_the_compiled_model_trains_like_the_eager_one(runs_dir):
    _, eager, _ = _fit_run(runs_dir, "model=bnn_mlp", "train.epochs=1")
    _, compiled, summary = _fit_run(runs_dir, "model=bnn_mlp", "train.epochs=1", "train.compile=true")
    assert summary["compiled"] is True
    e, c = eager.metrics()[0], compiled.metrics()[0]
    assert math.isclose(e["test_acc"], c["test_acc"], abs_tol=0.02)


@pytest.mark.slow
def test_bnn_learns_real_fashion_mnist(runs_dir, fashion):
    cfg, run, summary = _fit_run(
        runs_dir,
        "model=bnn_mlp",
        "data=fashion_mnist",
        f"data.root={fashion}",
        "model.width=512",
        "train.epochs=1",
        "train.batch_size=100",
        "train.weight_clip=true",
    )
    assert summary["data_source"].startswith(fashion)
    assert summary["final_test_acc"] > 0.75  # a 512-wide BNN after one epoch; chance is 0.10


def test_cpu_training_flushes_denormals_to_zero_while_it_trains_and_restores_after():
    from bnnctl.process import denormals_flushed
    from bnnctl.training import TrainObserver

    class Probe(TrainObserver):
        seen: list[bool] = []

        def on_epoch_end(self, record):
            self.seen.append(denormals_flushed())

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero mode")
    try:
        assert not denormals_flushed()  # off: a denormal survives
        fit(tiny("train.epochs=1", "train.max_steps_per_epoch=1"), observer=Probe())
        assert Probe.seen == [True]  # training flushed them
        assert not denormals_flushed()  # and left the process as it found it
    finally:
        torch.set_flush_denormal(False)
