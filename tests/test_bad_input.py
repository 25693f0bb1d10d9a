"""Bad input and damaged files against the command line, one table row each (issue 12's classes and more).

Every row asserts the exit code, a single stderr line that names the key or
file, no traceback, and that nothing finished changed (a finished run and a
finished grid are hashed before and after each row). The damaged-folder
tables assert the other side: ``runs ls`` and ``ablate table`` still exit 0,
list every intact run, and show the damaged one with its reason.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bnnctl.cli import app
from bnnctl.config.load import compose_train, load_grid, load_launcher
from bnnctl.runs import create_run
from bnnctl.sweep import plan_grid, run_grid
from bnnctl.training import TrainObserver, train_into

runner = CliRunner()
IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def write_idx(path: Path, values: np.ndarray) -> None:
    """An idx file: 0, 0, 0x08 (unsigned byte), the number of dimensions, the sizes (big-endian), the bytes."""
    header = bytes([0, 0, 8, values.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in values.shape)
    path.write_bytes(header + values.astype(np.uint8).tobytes())


def small_fashion(root: Path) -> Path:
    """A valid Fashion-MNIST-shaped dataset of 120 + 40 random images, in torchvision's layout."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 120), ("t10k", 40)):
        write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n))
    return root


class CutAfter(TrainObserver):
    """Stops training (as Ctrl-C would) at the first step of epoch ``epoch`` (0-based)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_step(self, *, epoch, step, loss):
        if epoch == self.epoch:
            raise KeyboardInterrupt


GRID = (
    "name: small\nfixed: [debug=tiny, train.epochs=1]\n"
    "axes:\n  - {key: train.weight_clip, values: [false, true], short: W}\nseeds: [0, 1]\n"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A finished run, a cut-off run with a resume state, a finished grid, a grid file and a small dataset."""
    base = tmp_path_factory.mktemp("world")
    runs = base / "runs"
    cfg = compose_train(["debug=tiny", "train.epochs=1"])
    done = create_run(runs, "train", "done", cfg)
    train_into(done, cfg, ["debug=tiny", "train.epochs=1"])
    cut_cfg = compose_train(["debug=tiny", "train.epochs=3"])
    cut = create_run(runs, "train", "cut", cut_cfg)
    with pytest.raises(KeyboardInterrupt):
        train_into(cut, cut_cfg, ["debug=tiny", "train.epochs=3"], CutAfter(1))
    grid_file = base / "small.yaml"
    grid_file.write_text(GRID)
    plan = plan_grid(load_grid(str(grid_file)), [f"runs_dir={runs}"])
    assert run_grid(plan, load_launcher(["launcher=inline"])).ok
    return {
        "runs": runs,
        "done": done.path,
        "cut": cut.path,
        "grid": plan.grid_dir,
        "grid_file": grid_file,
        "data": small_fashion(base / "data"),
    }


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file's hash under ``folder`` (the grid lock's pid and derived tables aside)."""
    derived = {".lock", "results.csv", "runs.csv", "table.md", "table.tex", "curves.png", "heatmap.png"}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in derived
    }


# --- set-ups: each returns the command line, given a scratch folder and the world ---------------------

Case = Callable[[Path, dict], list]


def train(*overrides: str) -> Case:
    return lambda tmp, w: ["train", "debug=tiny", "train.epochs=1", f"runs_dir={tmp / 'runs'}", *overrides]


def grid(*args: str) -> Case:
    return lambda tmp, w: ["ablate", "grid", str(w["grid_file"]), f"runs_dir={tmp / 'runs'}", *args]


def data_copy(tmp: Path, w: dict) -> Path:
    root = tmp / "data"
    shutil.copytree(w["data"], root)
    return root / "FashionMNIST" / "raw"


def damaged_data(damage: Callable[[Path], None], grid_of_it: bool = False) -> Case:
    """Train (or run the small grid) on a copy of the small dataset after ``damage(raw_folder)``."""

    def case(tmp: Path, w: dict) -> list:
        raw = data_copy(tmp, w)
        damage(raw)
        data = ["data=fashion_mnist", f"data.root={raw.parents[1]}"]
        if grid_of_it:
            return grid(*data)(tmp, w)
        return ["train", "debug=tiny", *data, f"runs_dir={tmp / 'runs'}"]

    return case


def run_copy(tmp: Path, w: dict, which: str = "done") -> Path:
    target = tmp / "copy" / w[which].name
    shutil.copytree(w[which], target)
    return target


def on_damaged_run(command: list[str], damage: Callable[[Path], None], which: str = "done") -> Case:
    """``command`` (RUN is replaced by the folder) on a copy of a run after ``damage(folder)``."""

    def case(tmp: Path, w: dict) -> list:
        run = run_copy(tmp, w, which)
        damage(run)
        return [str(run) if c == "RUN" else c for c in command]

    return case


def on(command: list[str]) -> Case:
    """``command`` with DONE, CUT, GRID, GRIDFILE and TMP replaced by the world's folders."""
    names = {"DONE": "done", "CUT": "cut", "GRID": "grid", "GRIDFILE": "grid_file"}
    return lambda tmp, w: [str(w[names[c]]) if c in names else str(tmp) if c == "TMP" else c for c in command]


def write(name: str, content: bytes | str) -> Callable[[Path], None]:
    data = content.encode() if isinstance(content, str) else content
    return lambda folder: (folder / name).write_bytes(data)


def truncate(name: str, keep: int) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes((folder / name).read_bytes()[:keep])


def delete(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


def patch_byte(name: str, offset: int, value: int) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        raw = bytearray((folder / name).read_bytes())
        raw[offset] = value
        (folder / name).write_bytes(bytes(raw))

    return damage


def relabel(name: str, labels: np.ndarray) -> Callable[[Path], None]:
    return lambda folder: write_idx(folder / name, labels)


def gzip_garbage(folder: Path) -> None:
    (folder / "train-images-idx3-ubyte").unlink()
    (folder / "train-images-idx3-ubyte.gz").write_text("not gzip at all")


def gzip_cut(folder: Path) -> None:
    import gzip

    packed = gzip.compress((folder / "train-images-idx3-ubyte").read_bytes())
    (folder / "train-images-idx3-ubyte").unlink()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(packed[: len(packed) // 2])


def checkpoint_edit(edit: Callable[[dict], dict]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        state = torch.load(folder / "checkpoint.pt", weights_only=True)
        torch.save(edit(state), folder / "checkpoint.pt")

    return damage


def narrower_config(state: dict) -> dict:
    state["config"]["model"]["width"] = 32
    return state


class NotATensor:
    pass


def grid_folder_with(name: str, content: str) -> Case:
    def case(tmp: Path, w: dict) -> list:
        folder = tmp / "copied-grid"
        shutil.copytree(w["grid"], folder)
        (folder / name).write_text(content)
        return ["ablate", "table", str(folder)]

    return case


def grid_file_with(content: str) -> Case:
    def case(tmp: Path, w: dict) -> list:
        path = tmp / "bad.yaml"
        path.write_text(content)
        return ["ablate", "grid", str(path), f"runs_dir={tmp / 'runs'}"]

    return case


def a_file(tmp: Path) -> Path:
    path = tmp / "a-file"
    path.write_text("not a folder")
    return path


# (id, case, exit code, what the one line must contain)
ROWS: list[tuple[str, Case, int, str]] = [
    # --- overrides of a run (class 11, 7, 2, 8) ---
    ("no key", train("="), 2, "an override needs a key"),
    ("no key with value", train("=3"), 2, "an override needs a key"),
    ("unknown flag", train("--unknown-flag"), 2, "--unknown-flag: not an option"),
    ("launcher given to train", train("launcher=local"), 2, "belong to `bnnctl ablate grid`"),
    ("ablation given to train", train("ablation.seeds=[0]"), 2, "belong to `bnnctl ablate grid`"),
    ("no equals sign", train("epochs"), 2, "epochs: not a valid override"),
    ("override syntax", train("train.epochs=[1,"), 2, "train.epochs=[1,: not a valid override"),
    ("trailing bracket", train("model.dropout=0.5)"), 2, "model.dropout=0.5): not a valid override"),
    ("unknown model", train("model=nope"), 2, "unknown option 'nope' for config group 'model'"),
    ("unknown data", train("data=nope"), 2, "config group 'data'"),
    ("unknown experiment", train("experiment=nope"), 2, "config group 'experiment'"),
    ("unknown binarize preset", train("binarize=nope"), 2, "config group 'binarize'"),
    ("unknown key", train("train.nope=1"), 2, "train.nope"),
    ("added unknown key", train("+train.nope=1"), 2, "train.nope"),
    ("epochs not a number", train("train.epochs=abc"), 2, "train.epochs"),
    ("epochs negative", train("train.epochs=-2"), 2, "train.epochs must be >= 1"),
    ("epochs zero", train("train.epochs=0"), 2, "train.epochs must be >= 1"),
    ("bool not a bool", train("train.weight_clip=maybe"), 2, "train.weight_clip"),
    ("batch size zero", train("train.batch_size=0"), 2, "train.batch_size"),
    ("batch larger than data", train("train.batch_size=100000"), 2, "train.batch_size=100000 exceeds"),
    ("lr inf", train("optimizer.lr=inf"), 2, "optimizer.lr must be a finite number"),
    ("lr nan", train("optimizer.lr=nan"), 2, "optimizer.lr must be a finite number"),
    ("lr negative", train("optimizer.lr=-1"), 2, "optimizer.lr"),
    ("lr_end negative", train("optimizer.lr_end=-1"), 2, "optimizer.lr_end"),
    ("eps negative", train("optimizer.eps=-1"), 2, "optimizer.eps"),
    ("weight decay negative", train("optimizer.weight_decay=-1"), 2, "optimizer.weight_decay"),
    ("unknown schedule", train("optimizer.schedule=linear"), 2, "optimizer.schedule"),
    ("world size zero", train("dist.world_size=0"), 2, "dist.world_size must be in 1..1024"),
    ("world size not dividing the batch", train("dist.world_size=3"), 2, "must be a multiple of dist.world_size"),
    ("unknown compression", train("dist.compress=zip"), 2, "dist.compress"),
    ("hadamard block zero", train("dist.beta=0"), 2, "dist.beta must be >= 1"),
    ("seed beyond 64 bits", train("train.seed=99999999999999999999"), 2, "train.seed must be in"),
    ("seed negative", train("train.seed=-1"), 2, "train.seed must be in"),
    ("noise nan", train("data.synthetic_noise=nan"), 2, "data.synthetic_noise"),
    ("zero-size images", train("data.synthetic_shape=[0,28,28]"), 2, "data.synthetic_shape"),
    ("two-d images", train("data.synthetic_shape=[28,28]"), 2, "data.synthetic_shape"),
    ("one class", train("data.num_classes=1"), 2, "data.num_classes"),
    ("validation size negative", train("data.val_size=-1"), 2, "data.val_size"),
    ("pixel range", train("data.pixel_range=weird"), 2, "data.pixel_range"),
    ("width zero", train("model.width=0"), 2, "model.width"),
    ("depth zero", train("model.depth=0"), 2, "model.depth"),
    ("width beyond memory", train("model.width=100000000"), 2, "model.width"),
    ("dropout negative", train("model.dropout=-0.1"), 2, "model.dropout"),
    ("dropout one", train("model.dropout=1.0"), 2, "model.dropout"),
    ("unknown loss", train("model.loss=mse"), 2, "model.loss"),
    ("unknown product format", train("train.binary_matmul=fp8"), 2, "train.binary_matmul must be one of"),
    ("unknown binarizer", train("binarize.weights.name=signum"), 2, "binarize.weights.name"),
    ("binarizer parameter", train("+binarize.activations.params.beta=4"), 2, "binarize.activations.params.beta"),
    ("device", train("train.device=tpu"), 2, "train.device"),
    ("eval_every negative", train("train.eval_every=-1"), 2, "train.eval_every"),
    ("threads negative", train("train.threads=-1"), 2, "train.threads"),
    ("steps per epoch negative", train("train.max_steps_per_epoch=-1"), 2, "train.max_steps_per_epoch"),
    ("runs_dir empty", train("runs_dir="), 2, "runs_dir"),
    # --- places that cannot be written (class 6) ---
    ("runs_dir in /proc", lambda tmp, w: ["train", "debug=tiny", "runs_dir=/proc/bnnctl-x"], 2, "/proc/bnnctl-x"),
    ("runs_dir under a file", lambda tmp, w: ["train", "debug=tiny", f"runs_dir={a_file(tmp)}/runs"], 2, "a-file"),
    ("grid runs_dir in /proc", grid("runs_dir=/proc/bnnctl-x"), 2, "/proc/bnnctl-x"),
    ("grid runs_dir under a file", lambda tmp, w: grid(f"runs_dir={a_file(tmp)}/r")(tmp, w), 2, "a-file"),
    ("runs ls --write in /proc", on(["runs", "ls", "--write", "/proc/bnnctl-x"]), 2, "/proc/bnnctl-x"),
    ("runs ls --write under a file", lambda tmp, w: ["runs", "ls", "--write", a_file(tmp) / "t"], 2, "a-file"),
    # --- dataset files (classes 3 and 4) ---
    ("dataset missing", lambda tmp, w: [*train("data=fashion_mnist", f"data.root={tmp}")(tmp, w)], 2, "not found"),
    (
        "mnist offline",
        lambda tmp, w: [*train("data=mnist", f"data.root={tmp}", "data.download=false")(tmp, w)],
        2,
        "dataset 'mnist' not found",
    ),
    (
        "cifar offline",
        lambda tmp, w: [*train("data=cifar10", f"data.root={tmp}", "data.download=false")(tmp, w)],
        2,
        "dataset 'cifar10' not found",
    ),
    (
        "idx wrong magic",
        damaged_data(patch_byte("train-labels-idx1-ubyte", 2, 0x09)),
        2,
        "train-labels-idx1-ubyte is not an unsigned-byte idx file",
    ),
    (
        "idx random bytes",
        damaged_data(write("train-labels-idx1-ubyte", bytes(range(256)) * 4)),
        2,
        "train-labels-idx1-ubyte",
    ),
    ("idx empty", damaged_data(write("t10k-images-idx3-ubyte", b"")), 2, "t10k-images-idx3-ubyte is empty"),
    ("idx header cut", damaged_data(truncate("t10k-images-idx3-ubyte", 6)), 2, "t10k-images-idx3-ubyte is truncated"),
    (
        "idx data cut",
        damaged_data(truncate("train-images-idx3-ubyte", 5000)),
        2,
        "train-images-idx3-ubyte is truncated",
    ),
    ("gz not gzip", damaged_data(gzip_garbage), 2, "train-images-idx3-ubyte.gz"),
    ("gz cut off", damaged_data(gzip_cut), 2, "train-images-idx3-ubyte.gz"),
    (
        "fewer labels than images",
        damaged_data(relabel("train-labels-idx1-ubyte", np.zeros(119))),
        2,
        "120 images but 119 labels",
    ),
    (
        "labels beyond the classes",
        damaged_data(relabel("train-labels-idx1-ubyte", np.full(120, 200))),
        2,
        "outside the 10 classes",
    ),
    (
        "labels file of images",
        damaged_data(relabel("train-labels-idx1-ubyte", np.zeros((120, 2)))),
        2,
        "train-labels-idx1-ubyte holds 2-d data",
    ),
    (
        "images file of labels",
        damaged_data(relabel("train-images-idx3-ubyte", np.zeros(120))),
        2,
        "train-images-idx3-ubyte holds 1-d data",
    ),
    # --- run folders given to eval, export, --resume (classes 1 and 11) ---
    ("eval nowhere", on(["eval", "TMP/nowhere"]), 2, "does not exist"),
    ("eval a file", lambda tmp, w: ["eval", a_file(tmp)], 2, "is not a folder"),
    ("eval not a run", on(["eval", "TMP"]), 2, "not a bnnctl run folder"),
    ("eval bad device", on(["eval", "DONE", "--device", "tpu"]), 2, "unknown device 'tpu'"),
    ("eval checkpoint cut", on_damaged_run(["eval", "RUN"], truncate("checkpoint.pt", 100)), 2, "checkpoint.pt"),
    ("eval checkpoint missing", on_damaged_run(["eval", "RUN"], delete("checkpoint.pt")), 2, "has no checkpoint.pt"),
    (
        "eval checkpoint garbage",
        on_damaged_run(["eval", "RUN"], write("checkpoint.pt", "garbage")),
        2,
        "not a torch file",
    ),
    (
        "eval checkpoint with code",
        on_damaged_run(["eval", "RUN"], checkpoint_edit(lambda s: {**s, "x": NotATensor()})),
        2,
        "objects other than tensors",
    ),
    (
        "eval checkpoint of another width",
        on_damaged_run(["eval", "RUN"], checkpoint_edit(narrower_config)),
        2,
        "does not fit its config",
    ),
    (
        "eval checkpoint not a dict",
        on_damaged_run(["eval", "RUN"], checkpoint_edit(lambda s: [1, 2])),
        2,
        "not a bnnctl checkpoint",
    ),
    ("eval --packed nowhere", on(["eval", "TMP/nowhere", "--packed"]), 2, "does not exist"),
    ("export nowhere", on(["export", "TMP/nowhere"]), 2, "does not exist"),
    ("export checkpoint cut", on_damaged_run(["export", "RUN"], truncate("checkpoint.pt", 50)), 2, "checkpoint.pt"),
    ("resume nowhere", on(["train", "--resume", "TMP/nowhere"]), 2, "does not exist"),
    ("resume a finished run", on(["train", "--resume", "DONE"]), 2, "is finished (DONE): there is nothing to resume"),
    ("resume with another config", on(["train", "--resume", "CUT", "train.epochs=5"]), 2, "cannot change it"),
    (
        "resume state cut",
        on_damaged_run(["train", "--resume", "RUN"], truncate("resume.pt", 200), "cut"),
        2,
        "resume.pt",
    ),
    (
        "resume config not YAML",
        on_damaged_run(["train", "--resume", "RUN"], write("config.yaml", "a: [1,"), "cut"),
        2,
        "config.yaml",
    ),
    (
        "resume config a scalar",
        on_damaged_run(["train", "--resume", "RUN"], write("config.yaml", "42"), "cut"),
        2,
        "config.yaml",
    ),
    # --- grids (classes 5, 8, 11) ---
    ("unknown grid", lambda tmp, w: ["ablate", "grid", "nope"], 2, "unknown grid 'nope'"),
    ("seeds not a list", grid("ablation.seeds=abc"), 2, "ablation.seeds=abc"),
    ("seed not a number", grid("ablation.seeds=[0,x]"), 2, "ablation.seeds[1]"),
    ("seeds empty", grid("ablation.seeds=[]"), 2, "ablation.seeds must be distinct and not empty"),
    ("seeds repeated", grid("ablation.seeds=[0,0]"), 2, "ablation.seeds must be distinct"),
    ("seeds syntax", grid("ablation.seeds=[0,"), 2, "ablation.seeds=[0,"),
    ("grid name escapes", grid("ablation.name=../../escaped"), 2, "ablation.name must be a plain folder name"),
    ("grid name absolute", grid("ablation.name=/tmp/abs"), 2, "ablation.name must be a plain folder name"),
    ("grid key unknown", grid("ablation.nosuch=1"), 2, "ablation.nosuch"),
    ("launcher unknown", grid("launcher=nope"), 2, "unknown launcher 'nope'"),
    ("launcher workers negative", grid("launcher.workers=-1"), 2, "launcher.workers"),
    ("launcher workers text", grid("launcher.workers=x"), 2, "launcher.workers=x"),
    ("launcher poll zero", grid("launcher.poll_s=0"), 2, "launcher.poll_s"),
    ("seed set for every cell", grid("train.seed=3"), 2, "ablation.seeds"),
    ("axis set for every cell", grid("train.weight_clip=true"), 2, "train.weight_clip is an axis"),
    ("cell override unknown", grid("model=nope"), 2, "config group 'model'"),
    ("grid dataset missing", lambda tmp, w: grid("data=fashion_mnist", f"data.root={tmp}")(tmp, w), 2, "not found"),
    (
        "grid dataset damaged",
        damaged_data(write("t10k-labels-idx1-ubyte", b""), grid_of_it=True),
        2,
        "t10k-labels-idx1-ubyte is empty",
    ),
    ("grid file syntax", grid_file_with("name: x\naxes: [\n"), 2, "bad.yaml"),
    ("grid file escapes", grid_file_with(GRID.replace("name: small", "name: ../../../escaped")), 2, "ablation.name"),
    ("grid file a list", grid_file_with("[1, 2]\n"), 2, "bad.yaml"),
    ("grid file no axes", grid_file_with("name: x\nseeds: [0]\n"), 2, "neither axes nor cells"),
    # --- grid folders given to ablate table (classes 1 and 11) ---
    ("table nowhere", on(["ablate", "table", "TMP/nowhere"]), 2, "does not exist"),
    ("table of a file", on(["ablate", "table", "GRIDFILE"]), 2, "is a file, not a grid folder"),
    ("table of a plain folder", on(["ablate", "table", "TMP"]), 2, "not an ablation grid folder"),
    ("table manifest not YAML", grid_folder_with("grid.yaml", "cells: [\n"), 2, "grid.yaml"),
    ("table manifest a list", grid_folder_with("grid.yaml", "[1]\n"), 2, "grid.yaml"),
    # --- usage (class 11) ---
    ("unknown command", lambda tmp, w: ["nosuch"], 2, "No such command 'nosuch'"),
    ("unknown option", lambda tmp, w: ["runs", "ls", "--nosuch"], 2, "No such option: --nosuch"),
    ("missing argument", lambda tmp, w: ["eval"], 2, "Missing argument"),
    ("bench batch zero", lambda tmp, w: ["bench", "train", "--batch-sizes", "0"], 2, "--batch-sizes"),
    ("bench batch one", lambda tmp, w: ["bench", "train", "--batch-sizes", "100,1"], 2, "--batch-sizes must be >= 2"),
    ("bench rounds zero", lambda tmp, w: ["bench", "train", "--rounds", "0"], 2, "--rounds must be >= 1"),
    ("bench gemm rounds zero", lambda tmp, w: ["bench", "gemm", "--rounds", "0"], 2, "--rounds must be >= 1"),
    ("bench gemm sizes", lambda tmp, w: ["bench", "gemm", "--m", "0"], 2, "--m"),
    ("geometry override", lambda tmp, w: ["geometry", "angles", "foo=1"], 2, "cannot apply 'foo=1'"),
    ("geometry key unknown", lambda tmp, w: ["geometry", "angles", "geometry.nope=1"], 2, "geometry.nope"),
    (
        "geometry dims not a list",
        lambda tmp, w: ["geometry", "angles", "geometry.dims=abc"],
        2,
        "geometry.dims: expects a list",
    ),
]


@pytest.mark.parametrize("case, code, match", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_is_one_line_and_changes_nothing_finished(world, tmp_path, case, code, match):
    before = fingerprint(world["runs"])
    args = case(tmp_path, world)
    result = invoke(*args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, (args, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert match in lines[0], lines[0]
    assert "\x1b[" not in result.stderr
    assert fingerprint(world["runs"]) == before
    assert not list(tmp_path.glob("runs/train/*")), "a failed set-up left a run folder behind"
    assert not list(tmp_path.glob("runs/ablate/*/cells/*")), "a grid that could not start left run folders"


def test_the_table_has_a_row_for_every_input_class():
    assert len(ROWS) >= 80
    assert len({r[0] for r in ROWS}) == len(ROWS)


# --- damaged folders: listed, never an error (class 1) -------------------------------------------------

DAMAGES = {
    "summary a list": (write("summary.json", "[1,2,3]"), "damaged", "summary.json"),
    "summary not UTF-8": (write("summary.json", b"\xff\xfe{"), "damaged", "summary.json"),
    "summary cut off": (truncate("summary.json", 30), "damaged", "summary.json"),
    "summary missing": (delete("summary.json"), "damaged", "summary.json"),
    "config not YAML": (write("config.yaml", "model: [1,\n"), "damaged", "config.yaml"),
    "config a scalar": (write("config.yaml", "42\n"), "damaged", "config.yaml"),
    "config missing": (delete("config.yaml"), "damaged", "has no config.yaml"),
    "metrics last line cut": (lambda f: (f / "metrics.jsonl").open("a").write('{"epoch": 2, "tr'), "done", None),
}


def _listing(runs_dir: Path, *extra: str):
    return invoke("runs", "ls", "--runs-dir", runs_dir, "--json", *extra)


@pytest.mark.parametrize("damage, status, named", DAMAGES.values(), ids=list(DAMAGES))
def test_runs_ls_shows_a_damaged_folder_as_a_row_and_strict_makes_it_an_error(world, tmp_path, damage, status, named):
    runs = tmp_path / "runs"
    shutil.copytree(world["runs"] / "train", runs / "train")
    victim = runs / "train" / world["done"].name
    damage(victim)
    result = _listing(runs)
    assert result.exit_code == 0, result.stderr
    rows = {r["run"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {world["done"].name, world["cut"].name}  # every folder listed
    assert rows[world["done"].name]["status"] == status
    assert rows[world["cut"].name]["status"] == "incomplete"
    if named:
        assert named in rows[world["done"].name]["error"]
        strict = _listing(runs, "--strict")
        assert strict.exit_code == 2 and strict.stderr.strip().startswith("error: 1 damaged run folder")


@pytest.mark.parametrize(
    "damage, counted",
    [
        (write("summary.json", "[1,2,3]"), [1, 2]),
        (truncate("summary.json", 20), [1, 2]),
        (write("metrics.jsonl", '{"a": 1}\nnot json\n{}\n'), [2, 2]),  # costs the run its curve, not its row
    ],
    ids=["summary a list", "summary cut off", "metrics line not JSON"],
)
def test_ablate_table_counts_the_intact_seeds_and_names_the_damaged_one(world, tmp_path, damage, counted):
    import pandas as pd

    grid = tmp_path / "small"
    shutil.copytree(world["grid"], grid)
    damage(sorted(grid.glob("cells/*/seed-0"))[0])
    result = invoke("ablate", "table", grid, "--json")
    assert result.exit_code == 0, result.stderr
    assert sorted(r["n"] for r in json.loads(result.stdout)["table"]) == counted
    per_seed = pd.read_csv(grid / "runs.csv")
    assert len(per_seed) == 4
    damaged = per_seed[per_seed["status"] == "damaged"]
    assert len(damaged) == 4 - sum(counted)
    if len(damaged):
        assert "summary.json" in damaged["error"].iloc[0]
        strict = invoke("ablate", "table", grid, "--strict")
        assert strict.exit_code == 2 and strict.stderr.strip().splitlines()[-1].startswith("error: 1 damaged")


def test_a_grid_rerun_sets_a_damaged_finished_run_aside_and_trains_it_again(world, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(world["grid"], runs / "ablate" / "small")
    victim = sorted((runs / "ablate" / "small").glob("cells/*/seed-1"))[0]
    (victim / "summary.json").write_text('{"best_val_acc": 0.9')  # cut off, DONE still there
    result = invoke("ablate", "grid", world["grid_file"], f"runs_dir={runs}", "launcher=inline", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["trained"] == 1
    assert (victim / "DONE").is_file() and json.loads((victim / "summary.json").read_text())["epochs"] == 1
    aside = victim.with_name("seed-1.damaged")
    assert (aside / "summary.json").read_text() == '{"best_val_acc": 0.9'  # kept, not deleted
    assert "set aside" in result.stderr


# --- random damage -------------------------------------------------------------------------------------

RUN_FILES = ["config.yaml", "summary.json", "metrics.jsonl", "DONE", "env.json", "overrides.txt", "checkpoint.pt"]
damage_kind = st.sampled_from(["truncate", "garbage", "delete", "empty", "not-utf8"])


def _damage(path: Path, kind: str, percent: int) -> None:
    cut = percent / 100
    if not path.exists():
        return
    if kind == "delete":
        path.unlink()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncate":
        path.write_bytes(path.read_bytes()[: int(len(path.read_bytes()) * cut)])
    elif kind == "garbage":
        path.write_bytes(bytes((i * 37 + int(cut * 255)) % 256 for i in range(64)))
    else:
        path.write_bytes(b"\xff\xfe\x00" + path.read_bytes()[:10])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    damages=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(RUN_FILES), damage_kind, st.integers(0, 100)),
        min_size=1,
        max_size=4,
    )
)
def test_random_damage_never_stops_a_listing_or_a_table(world, tmp_path_factory, damages):
    """Damage random files of random grid runs: runs ls and ablate table exit 0 and list every undamaged run."""
    base = tmp_path_factory.mktemp("random")
    grid = base / "ablate" / "small"
    shutil.copytree(world["grid"], grid)
    train = base / "train"
    runs = sorted(p for p in grid.glob("cells/*/seed-*"))
    for i, run in enumerate(runs):  # the same folders, listed by runs ls as train runs
        shutil.copytree(run, train / f"run-{i}")
    damaged = set()
    for index, name, kind, cut in damages:
        for folder in (runs[index], train / f"run-{index}"):
            _damage(folder / name, kind, cut)
        damaged.add(index)

    listing = invoke("runs", "ls", "--runs-dir", base, "--json")
    assert listing.exit_code == 0, listing.stderr
    rows = {r["run"]: r for r in json.loads(listing.stdout)}
    for i in range(len(runs)):
        if i not in damaged:
            assert rows[f"run-{i}"]["status"] == "done"
        elif any((train / f"run-{i}").iterdir()):  # a damaged folder is still a row
            assert f"run-{i}" in rows

    table = invoke("ablate", "table", grid, "--json")
    assert table.exit_code == 0, table.stderr
    per_seed = {Path(p).parent.name + "/" + Path(p).name: s for p, s in _per_seed(grid)}
    for i, run in enumerate(runs):
        if i not in damaged:
            assert per_seed[run.parent.name + "/" + run.name] == "done"


def _per_seed(grid: Path):
    import pandas as pd

    frame = pd.read_csv(grid / "runs.csv")
    return zip(frame["path"], frame["status"], strict=True)
