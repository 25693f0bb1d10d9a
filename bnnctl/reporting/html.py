"""One self-contained HTML page per result: ``write_run_page``, ``write_grid_page``, ``write_study_page``.

The page is a Jinja2 template (``templates/report.html.j2``) filled with
*sections*: key-value pairs, a sortable table, figures, a block of text. The
figures are embedded as base64 PNGs and the small sorting script is inline, so
the file alone is the report: it opens without a network or the folder.

Each kind of page is handed what it shows (``bnnctl.api.report`` picks the kind
with ``folder_kind``); a grid's page gets its tables as a ``GridTables``, never
by reading them back from Markdown:

* a training run (``config.yaml`` + ``metrics.jsonl`` or ``checkpoint.pt``): its
  headline numbers, every epoch's record, the learning curves, the config, the
  environment;
* an ablation grid (``grid.yaml``): the cell table with its 95% intervals and the
  reference values, the per-seed runs, every figure (per-cell curves, heatmap,
  accuracy vs bytes, attribution), the grid file, the environment of a run;
* a study (geometry, bench, anything else): its notes (``summary.json``), every
  CSV as a table, every PNG, its ``config.yaml``.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bnnctl.errors import RunError
from bnnctl.files import atomic_write_text
from bnnctl.reporting.grid_tables import GridTables, read_csv_or_none

REPORT = "report.html"
TEMPLATE = "report.html.j2"


@dataclass
class Figure:
    name: str
    data_uri: str
    width: int
    height: int


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool]  # per column: sort as numbers
    caption: str = ""


@dataclass
class Section:
    """One block of the page; exactly one of its payloads is set."""

    title: str
    pairs: list[tuple[str, str]] = field(default_factory=list)
    table: Table | None = None
    figures: list[Figure] = field(default_factory=list)
    text: str = ""
    note: str = ""


def folder_kind(folder: Path) -> str:
    """'grid', 'run' or 'study' (see the module docstring)."""
    if (folder / "grid.yaml").is_file():
        return "grid"
    if (folder / "config.yaml").is_file() and any((folder / f).is_file() for f in ("metrics.jsonl", "checkpoint.pt")):
        return "run"  # a study folder has config.yaml and summary.json too, but no epochs
    return "study"


def _existing_folder(folder: Path) -> Path:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise RunError(f"{folder}: not a folder (give a run, grid or study folder)")
    return folder


def _write_page(path: Path, title: str, subtitle: str, kind: str, sections: list[Section]) -> Path:
    atomic_write_text(path, render(title, subtitle, kind, sections))
    return path


def write_run_page(folder: Path, output: Path | None = None) -> Path:
    """A training run's page (default ``folder/report.html``); returns its path."""
    folder = _existing_folder(folder)
    return _write_page(output or folder / REPORT, *_run_sections(folder))


def write_study_page(folder: Path, output: Path | None = None) -> Path:
    """A study's or a benchmark's page: its notes, every CSV as a table, every PNG, its config."""
    folder = _existing_folder(folder)
    return _write_page(output or folder / REPORT, *_study_sections(folder))


def write_grid_page(tables: GridTables, output: Path | None = None) -> Path:
    """A grid's page from the tables handed to it (rebuilt from its runs, or a published copy's)."""
    return _write_page(output or tables.folder / REPORT, *_grid_sections(tables))


def render(title: str, subtitle: str, kind: str, sections: list[Section]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bnnctl.reporting", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    from bnnctl import __version__

    return env.get_template(TEMPLATE).render(
        title=title, subtitle=subtitle, kind=kind, sections=sections, version=__version__
    )


# --- what each kind of folder shows --------------------------------------------------------------------------------


def _run_sections(folder: Path) -> tuple[str, str, str, list[Section]]:
    from bnnctl.runs import Run

    run = Run(folder)
    state = run.state()
    summary = state.summary or {}
    sections = [Section("Summary", pairs=_pairs({"status": state.status.value, **summary}))]
    if state.reason:
        sections[0].note = state.reason
    try:
        epochs = [r for r in run.metrics() if r.get("kind") == "epoch"]
    except RunError as exc:
        epochs, sections[0].note = [], str(exc)
    if epochs:
        frame = pd.DataFrame(epochs).drop(columns=["kind"], errors="ignore")
        sections.append(Section("Epochs", table=table_of(frame, "one record per epoch (metrics.jsonl)")))
    sections.append(Section("Figures", figures=_figures(folder)))
    sections += _text_sections(folder, ["config.yaml"])
    sections.append(_environment(folder / "env.json"))
    subtitle = f"training run, {summary.get('data', '')} {summary.get('model', '')}".rstrip(", ")
    return f"Run {folder.name}", subtitle, "run", sections


def _grid_sections(tables: GridTables) -> tuple[str, str, str, list[Section]]:
    folder, manifest, grid, shown, per_seed = (
        tables.folder,
        tables.manifest,
        tables.grid,
        tables.display,
        tables.per_seed,
    )
    reference = grid.get("reference") or {}
    about = {
        "grid": grid["name"],
        "description": grid.get("description", ""),
        "cells": len(manifest.get("cells") or []),
        "seeds": ", ".join(map(str, grid.get("seeds") or [])),
        "overrides": " ".join(manifest.get("overrides") or []) or "(none)",
    }
    if reference.get("values"):
        about["reference"] = f"{reference.get('source', '')} ({reference.get('metric', 'peak_val_acc')})"
    sections = [Section("Grid", pairs=_pairs(about))]
    sections.append(
        Section(
            "Cells", table=table_of(shown, "mean ± half-width of the 95% t-interval over seeds"), note=tables.footer
        )
    )
    if reference.get("values"):
        sections.append(
            Section(
                "Reference values",
                pairs=[(label, f"{value * 100:.1f} %") for label, value in reference["values"].items()],
                note=reference.get("source", ""),
            )
        )
    sections.append(Section("Figures", figures=_figures(folder)))
    if not per_seed.empty:
        keep = [c for c in per_seed.columns if c not in ("order", "path", "cell_id")]
        sections.append(Section("Runs", table=table_of(per_seed[keep], "one row per cell x seed (runs.csv)")))
    sections += _text_sections(folder, ["attribution.md", "grid.yaml"])
    sections.append(_environment(_first_run_environment(per_seed)))
    return f"Grid {grid['name']}", grid.get("description", ""), "grid", sections


def _study_sections(folder: Path) -> tuple[str, str, str, list[Section]]:
    sections = []
    notes = _read_json(folder / "summary.json")
    if isinstance(notes, dict):
        sections.append(Section("Summary", pairs=_pairs(notes)))
    for csv in sorted(folder.glob("*.csv")):
        frame = read_csv_or_none(csv)
        if frame is not None:
            sections.append(Section(csv.stem, table=table_of(frame, csv.name)))
    for path in sorted(folder.glob("*.json")):
        data = _read_json(path)
        if path.name != "summary.json" and isinstance(data, dict):
            sections.append(Section(path.name, pairs=_pairs(data)))
    sections.append(Section("Figures", figures=_figures(folder)))
    sections += _text_sections(folder, ["config.yaml"])
    sections.append(_environment(folder / "env.json"))
    return f"Study {folder.name}", str(folder.parent.name), "study", sections


# --- pieces --------------------------------------------------------------------------------------------------------


def table_of(frame: pd.DataFrame, caption: str = "") -> Table:
    """A DataFrame as strings, with the columns whose every value is a number marked for numeric sorting."""
    columns = [str(c) for c in frame.columns]
    numeric = [pd.to_numeric(frame[c], errors="coerce").notna().all() and len(frame) > 0 for c in frame.columns]
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
    return Table(columns, rows, [bool(n) for n in numeric], caption)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _pairs(mapping: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for key, value in mapping.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        out.append((str(key), _cell(value)))
    return out


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


SCREENSHOT = "report.png"  # a picture of the page itself, published beside it; never embedded in it


def _figures(folder: Path) -> list[Figure]:
    figures = []
    for path in sorted(folder.glob("*.png")):
        if path.name == SCREENSHOT:
            continue
        data = path.read_bytes()
        try:
            width, height = png_size(data)
        except ValueError:
            continue  # a damaged figure is left out, not the page
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        figures.append(Figure(path.name, uri, width, height))
    return figures


def _text_sections(folder: Path, names: list[str]) -> list[Section]:
    sections = []
    for name in names:
        path = folder / name
        if path.is_file():
            try:
                sections.append(Section(name, text=path.read_text()))
            except (OSError, UnicodeDecodeError) as exc:
                sections.append(Section(name, note=f"cannot read {path}: {exc}"))
    return sections


def _environment(path: Path | None) -> Section:
    env = _read_json(path) if path is not None else None
    if not isinstance(env, dict):
        return Section("Environment", note="not recorded in this folder")
    flat = {k: v for k, v in env.items() if k not in ("packages", "argv")}
    flat.update({f"package {k}": v for k, v in (env.get("packages") or {}).items()})
    if env.get("argv"):
        flat["command"] = " ".join(env["argv"])
    return Section("Environment", pairs=_pairs(flat), note=str(path))


def _first_run_environment(per_seed: pd.DataFrame | None) -> Path | None:
    if per_seed is None or "path" not in per_seed:
        return None
    for path in per_seed["path"].dropna():
        env = Path(str(path)) / "env.json"
        if env.is_file():
            return env
    return None


def _read_json(path: Path | None) -> Any:
    try:
        return json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        return None
