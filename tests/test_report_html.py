"""`bnnctl report`: one self-contained page per run, grid and study; rendered in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnnctl.api import ablate, report, train
from bnnctl.cli import app
from bnnctl.reporting.html import png_size

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


class Page(HTMLParser):
    """Counts what a report holds: sections, tables and their rows, images and where they come from."""

    def __init__(self, html: str):
        super().__init__()
        self.sections: list[str] = []
        self.tables: list[dict] = []
        self.images: list[dict] = []
        self.body: dict = {}
        self.external: list[str] = []
        self._in_body_table = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "section":
            self.sections.append(a.get("data-title", ""))
        if tag == "table":
            self.tables.append({"section": self.sections[-1] if self.sections else "", "rows": 0, "headers": 0})
        if tag == "th" and self.tables:
            self.tables[-1]["headers"] += 1
        if tag == "tbody":
            self._in_body_table = True
        if tag == "tr" and self._in_body_table:
            self.tables[-1]["rows"] += 1
        if tag == "img":
            self.images.append(a)
        for key in ("src", "href"):
            value = a.get(key, "")
            if value and not value.startswith(("data:", "#")):
                self.external.append(value)

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body_table = False


def tiny_grid(tmp_path: Path):
    grid = tmp_path / "tiny_report.yaml"
    grid.write_text(
        "name: tiny_report\ndescription: two cells for the report\n"
        "fixed: [debug=tiny, train.epochs=2, train.max_steps_per_epoch=4]\n"
        "axes:\n  - {key: train.weight_clip, values: [false, true], short: W}\nseeds: [0, 1]\n"
        "reference: {source: made up for the test, values: {none: 0.5, W: 0.6}}\n"
    )
    return ablate(str(grid), ["launcher=inline", f"runs_dir={tmp_path / 'runs'}"])


@pytest.fixture(scope="module")
def grid_result(tmp_path_factory):
    return tiny_grid(tmp_path_factory.mktemp("grid"))


def test_a_grid_writes_a_self_contained_report_with_its_table_figures_and_references(grid_result):
    folder = grid_result.plan.grid_dir
    report = folder / "report.html"
    assert report in grid_result.files
    page = Page(report.read_text())
    assert page.external == []  # nothing to fetch: the figures are data URIs, the script inline
    assert page.sections[:3] == ["Grid", "Cells", "Reference values"]
    cells = next(t for t in page.tables if t["section"] == "Cells")
    runs = next(t for t in page.tables if t["section"] == "Runs")
    assert cells["rows"] == 2 and runs["rows"] == 4  # 2 cells, 2 cells x 2 seeds
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert pngs and sorted(i["data-name"] for i in page.images) == pngs
    for image in page.images:
        assert (int(image["width"]), int(image["height"])) == png_size((folder / image["data-name"]).read_bytes())
    assert "made up for the test" in report.read_text() and "Environment" in page.sections


def test_a_run_and_a_study_get_their_own_pages(tmp_path):
    run = train(["debug=tiny", "train.epochs=2", f"runs_dir={tmp_path}"])
    result = runner.invoke(app, ["report", str(run.path), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["kind"] == "run"
    page = Page((run.path / "report.html").read_text())
    assert page.sections == ["Summary", "Epochs", "Figures", "config.yaml", "Environment"]
    assert next(t for t in page.tables if t["section"] == "Epochs")["rows"] == 2
    assert [i["data-name"] for i in page.images] == ["curves.png"]

    study = runner.invoke(app, ["geometry", "angles", "geometry.dims=[3,16]", "geometry.samples=200",
                                f"runs_dir={tmp_path}", "--json"])  # fmt: skip
    assert study.exit_code == 0, study.stderr
    folder = Path(json.loads(study.stdout)["folder"])
    page = Page((folder / "report.html").read_text())  # the study wrote it itself
    assert page.body["data-kind"] == "study"
    assert next(t for t in page.tables if t["section"] == "results")["rows"] == 2
    assert len(page.images) == len(list(folder.glob("*.png"))) >= 1


def test_a_published_grid_copy_without_its_runs_still_reports_its_table(tmp_path):
    published = REPO / "docs" / "results" / "ablation" / "clip_dropout_fashion_5ep"
    out = tmp_path / "report.html"
    assert report(published, out).page == out
    page = Page(out.read_text())
    assert next(t for t in page.tables if t["section"] == "Cells")["rows"] == 8
    assert [i["data-name"] for i in page.images] == ["curves.png"]


def test_report_of_something_that_is_not_a_folder_is_one_line(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "not a folder" in result.stderr


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def headless(browser: str, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.browser
def test_chromium_renders_the_grid_report_with_every_figure_decoded(grid_result, tmp_path):
    browser = chromium()
    if browser is None:  # .ci/run installs Debian's chromium; a machine without it skips, saying so
        pytest.skip("Chromium is not installed: apt-get install chromium (Debian), then rerun -m browser")
    report = grid_result.plan.grid_dir / "report.html"
    dom = headless(browser, "--virtual-time-budget=5000", "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = Page(dom.stdout)
    pngs = sorted(grid_result.plan.grid_dir.glob("*.png"))
    # The page's own script recorded, after load, how many images decoded and their natural sizes.
    assert rendered.body["data-images"] == str(len(pngs)) == rendered.body["data-decoded"]
    sizes = sorted(rendered.body["data-image-sizes"].split(","))
    assert sizes == sorted("{}x{}".format(*png_size(p.read_bytes())) for p in pngs)
    assert next(t for t in rendered.tables if t["section"] == "Cells")["rows"] == 2
    shot = tmp_path / "report.png"
    done = headless(browser, f"--screenshot={shot}", "--window-size=1280,1600", report.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    width, height = png_size(shot.read_bytes())
    assert (width, height) == (1280, 1600) and shot.stat().st_size > 50_000  # a page, not a blank


def test_version_names_torch_cuda_and_numba():
    result = subprocess.run([sys.executable, "-m", "bnnctl", "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    import numba
    import torch

    line = result.stdout.strip()
    assert re.fullmatch(r"bnnctl \S+ \(torch \S+, CUDA \S+, numba \S+, Python \S+\)", line), line
    assert f"torch {torch.__version__}" in line and f"numba {numba.__version__}" in line


def test_quiet_silences_progress_but_not_results(tmp_path):
    args = ["train", "debug=tiny", "train.epochs=2", f"runs_dir={tmp_path}"]
    loud = runner.invoke(app, args)
    quiet = runner.invoke(app, ["-q", *args])
    assert loud.exit_code == quiet.exit_code == 0
    assert "epoch 2" in loud.stderr and quiet.stderr == ""
    assert "final_test_acc" in quiet.stdout


def test_no_color_turns_colour_off_on_a_terminal():
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "120"}  # rich: behave as on a colour terminal
    env.pop("NO_COLOR", None)
    cmd = [sys.executable, "-m", "bnnctl", "train", "--help"]
    coloured = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    plain = subprocess.run(cmd, capture_output=True, text=True, env={**env, "NO_COLOR": "1"}, timeout=120)
    colour = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7]|38;)[0-9;]*m")  # foreground colours, not bold
    assert colour.search(coloured.stdout)
    assert not colour.search(plain.stdout) and "Usage" in plain.stdout


def test_shell_completion_completes_commands():
    script = Path(sys.executable).with_name("bnnctl")  # completion keys on the program's name
    if not script.exists():
        pytest.skip("the bnnctl script is not installed next to this Python")
    env = {**os.environ, "_BNNCTL_COMPLETE": "complete_bash", "COMP_WORDS": "bnnctl abl", "COMP_CWORD": "1"}
    done = subprocess.run([str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.split() == ["ablate"]
