"""Grid files that list cells (one change at a time), runs shared between grids, attribution and comparison tables."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from bnnctl.cli import app
from bnnctl.config.load import load_grid, load_launcher
from bnnctl.errors import ConfigError
from bnnctl.reporting.attribution import Contrast
from bnnctl.sweep import expand_cells, plan_grid, run_grid

runner = CliRunner()
FIXED = "[debug=tiny, model.width=16, train.epochs=1]"


def write_cells_grid(tmp_path: Path, name: str = "attr", cells: str | None = None, seeds: str = "[0, 1]") -> Path:
    cells = cells or (
        "  - {label: base}\n"
        "  - {label: logits, overrides: [model.output=logits], note: no softmax}\n"
        "  - {label: p0.5, values: {model.dropout: [0.0, 0.5]}}\n"
        "  - {label: clipped, overrides: [train.weight_clip=true], compare_to: base}\n"
    )
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nfixed: [experiment=blu_report, debug=tiny, model.width=16, train.epochs=1]\n"
        "axes:\n  - {key: model.dropout, values: [0.0, 0.2], short: D}\n"
        f"cells:\n{cells}seeds: {seeds}\nbaseline_label: base\n"
    )
    return path


def test_listed_cells_come_in_order_each_crossed_with_the_axis():
    cells = expand_cells(load_grid("report_attribution"), [])
    labels = [c.label for c in cells]
    assert labels[:4] == ["faithful", "faithful+D", "logits", "logits+D"]
    assert cells[3].settings == {"change": "logits", "model.dropout": 0.2}
    assert "model.output=logits" in cells[3].overrides and "model.dropout=0.2" in cells[3].overrides
    p05 = next(c for c in cells if c.label == "p0.5+D")
    assert p05.settings["model.dropout"] == 0.5  # the cell's own axis values


def test_a_listed_cell_equal_to_another_shares_its_runs(tmp_path):
    plan = plan_grid(load_grid(str(write_cells_grid(tmp_path))), [f"runs_dir={tmp_path}"])
    ids = {c.label: c.cell_id for c in plan.cells}
    assert ids["p0.5"] == ids["base"] and ids["p0.5+D"] != ids["base+D"]  # without dropout the rate is inert
    assert len(plan.cells) == 8 and len(plan.tasks) == 7 * 2  # no run trains twice
    assert len({t.run_dir for t in plan.tasks}) == len(plan.tasks)


@pytest.mark.parametrize(
    "cells, match",
    [
        ("  - {label: a}\n  - {label: a}\n", "twice"),
        ("  - {label: a, overrides: [model.dropout=0.5]}\n", "overrides an axis"),
        ("  - {label: a+b}\n", "no '\\+'"),
        ("  - {label: a, values: {model.dropout: [0.1]}}\n", "as many values"),
        ("  - {label: a, compare_to: nope}\n", "not a listed cell"),
    ],
)
def test_bad_listed_cells_are_one_line_config_errors(tmp_path, cells, match):
    with pytest.raises(ConfigError, match=match):
        load_grid(str(write_cells_grid(tmp_path, cells=cells)))


def test_the_command_line_may_not_set_what_a_listed_cell_changes(tmp_path):
    grid = load_grid(str(write_cells_grid(tmp_path)))
    with pytest.raises(ConfigError, match="model.output is what cell 'logits'"):
        plan_grid(grid, ["model.output=logits", f"runs_dir={tmp_path}"])


def test_a_grid_with_neither_axes_nor_cells_is_refused(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("name: empty\nseeds: [0]\n")
    with pytest.raises(ConfigError, match="neither axes nor cells"):
        load_grid(str(path))


def test_welch_contrast_of_two_groups_is_scipys_welch_test():
    a, b = pd.Series([0.71, 0.74, 0.70]), pd.Series([0.60, 0.66, 0.61, 0.65])
    c = Contrast.of([(1, a), (-1, b)])
    t = stats.ttest_ind(a, b, equal_var=False)
    assert c.estimate == pytest.approx(a.mean() - b.mean())
    assert c.p_value == pytest.approx(t.pvalue)
    se = math.sqrt(a.var() / 3 + b.var() / 4)
    assert c.half_width == pytest.approx(stats.t.ppf(0.975, t.df) * se)


def test_contrast_of_four_groups_by_hand():
    groups = [pd.Series(v) for v in ([1.0, 2.0], [2.0, 4.0], [0.0, 1.0], [3.0, 3.5])]
    c = Contrast.of([(1, groups[0]), (-1, groups[1]), (-1, groups[2]), (1, groups[3])])
    assert c.estimate == pytest.approx(1.5 - 3.0 - 0.5 + 3.25)
    parts = [g.var() / 2 for g in groups]  # 0.25, 1.0, 0.25, 0.0625
    df = sum(parts) ** 2 / sum(p**2 / 1 for p in parts)
    assert c.p_value == pytest.approx(2 * stats.t.sf(abs(c.estimate) / math.sqrt(sum(parts)), df))
    assert math.isnan(Contrast.of([(1, groups[0].iloc[:1]), (-1, groups[1])]).p_value)  # one seed: no test


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The small attribution grid trained inline, and a second grid sharing two of its cells."""
    tmp = tmp_path_factory.mktemp("cells")
    runs = tmp / "runs"
    result = run_grid(
        plan_grid(load_grid(str(write_cells_grid(tmp))), [f"runs_dir={runs}"]), load_launcher(["launcher=inline"])
    )
    assert result.ok and not result.shared
    return tmp, runs


def test_the_attribution_table_measures_each_change_against_its_reference(trained):
    tmp, runs = trained
    r = runner.invoke(app, ["ablate", "table", str(runs / "ablate" / "attr")])
    assert r.exit_code == 0, r.output
    folder = runs / "ablate" / "attr"
    table = pd.read_csv(folder / "attribution.csv")
    per_cell = pd.read_csv(folder / "results.csv").set_index("cell")["peak_val_acc_mean"]
    row = table.set_index("change").loc["logits"]
    assert row["effect_off"] == pytest.approx(per_cell["logits"] - per_cell["base"])
    gap = (per_cell["logits+D"] - per_cell["logits"]) - (per_cell["base+D"] - per_cell["base"])
    assert row["effect_gap"] == pytest.approx(gap)
    p05 = table.set_index("change").loc["p0.5"]
    assert p05["shares_off_runs"] and p05["effect_off"] == 0 and math.isnan(p05["effect_off_p"])
    assert p05["effect_gap"] == pytest.approx(per_cell["p0.5+D"] - per_cell["base+D"])  # the shared off runs cancel
    assert list(table["change"]) == ["logits", "p0.5", "clipped"]
    for name in ("attribution.md", "attribution.tex", "attribution.png"):
        assert (folder / name).stat().st_size > 0
    assert "change" in (folder / "table.md").read_text()


def test_a_second_grid_copies_the_runs_another_grid_finished(trained):
    tmp, runs = trained
    path = write_cells_grid(
        tmp, name="other", cells="  - {label: base}\n  - {label: fresh, overrides: [model.width=8]}\n"
    )
    result = run_grid(plan_grid(load_grid(str(path)), [f"runs_dir={runs}"]), load_launcher(["launcher=inline"]))
    assert len(result.shared) == 4  # base and base+D, two seeds each
    assert len(result.done) == 4  # fresh and fresh+D trained
    for task, source in result.shared:
        copied = Path(task.run_dir)
        assert (copied / "DONE").exists() and (copied / "shared_from.txt").read_text().strip() == str(source)
        assert (copied / "summary.json").read_text() == (source / "summary.json").read_text()
    assert not list((runs / "ablate" / "other" / "cells").glob("*/*.copying"))


def test_compare_puts_grids_side_by_side_with_each_seed_interval(trained, tmp_path):
    _, runs = trained
    out = tmp_path / "cmp"
    r = runner.invoke(
        app, ["ablate", "compare", str(runs / "ablate" / "attr"), str(runs / "ablate" / "other"), "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out / "comparison.csv").set_index("cell")
    attr = pd.read_csv(runs / "ablate" / "attr" / "results.csv").set_index("cell")
    assert table.loc["base", "attr_mean"] == pytest.approx(attr.loc["base", "peak_val_acc_mean"])
    assert table.loc["base", "other_mean"] == pytest.approx(table.loc["base", "attr_mean"])  # the same runs
    assert math.isnan(table.loc["logits", "other_mean"])  # a cell the second grid lacks
    assert (out / "comparison.png").stat().st_size > 0
    bad = runner.invoke(app, ["ablate", "compare", str(runs / "ablate" / "attr"), "-o", str(out)])
    assert bad.exit_code == 2 and "at least two" in bad.output
