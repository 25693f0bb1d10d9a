"""Configs as files and text: where ``conf/`` is, its groups, YAML out, overrides, and errors in one line.

Below the registries, beside ``schema``: everything here works on the
schemas' dataclasses and on strings, and imports nothing of bnnctl but its
errors, so run folders, loggers and reports may use it without the loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from bnnctl.errors import ConfigError

CONFIG_GROUPS = ("model", "data", "optimizer", "binarize", "experiment", "debug", "logger")
DEFAULT_RUNS_DIR = "runs"


def conf_dir() -> Path:
    """The Hydra config folder: inside the package (wheel) or beside it (source checkout)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise ConfigError(
        f"bnnctl's config folder (conf/) is missing: looked in {package / 'conf'} and {package.parent / 'conf'}"
    )


def group_options(group: str) -> list[str]:
    """The options of a config group: the YAML files in conf/<group>/."""
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


def describe_groups() -> str:
    """One line per config group with its options, for ``--help``."""
    return "\n".join(f"{g}: {', '.join(group_options(g))}" for g in CONFIG_GROUPS)


def yaml_problem(exc: BaseException) -> str:
    """A YAML syntax error in one line with where it is: 'expected ..., found ... (line 3, column 7)'."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or one_line(exc)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem


_PLAINER = {  # OmegaConf's wording -> what the user did wrong
    "Invalid value assigned: AnyNode is not a ListConfig, list or tuple.": "expects a list, e.g. [0,1,2]",
}


def one_line(exc: BaseException | None) -> str:
    """Hydra and OmegaConf errors span several lines and hide the cause; keep what names the problem."""
    parts = []
    while exc is not None:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        lines = [
            ln
            for ln in lines
            if not ln.startswith(("object_type", "full_key", "reference_type", "See https")) and ln != "None"
        ]
        key = getattr(exc, "full_key", None)
        lines = [_PLAINER.get(ln, ln) for ln in lines]
        if lines:
            parts.append(f"{key}: {lines[0]}" if key else "; ".join(lines))
        exc = exc.__cause__
    return " (".join(parts) + ")" * (len(parts) - 1) if parts else "unknown error"


def split_runs_dir(overrides: list[str]) -> tuple[str, list[str]]:
    """``runs_dir=PATH`` (where runs go, not what they are) taken out of the Hydra overrides."""
    runs_dir, rest = DEFAULT_RUNS_DIR, []
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key.lstrip("+") == "runs_dir":
            if not value:
                raise ConfigError("runs_dir: needs a folder, e.g. runs_dir=runs")
            runs_dir = value
        else:
            rest.append(override)
    return runs_dir, rest


def override_key(override: str) -> str:
    """The key an override sets: ``+a.b=1``, ``~a.b`` and ``a.b=1`` all set ``a.b``."""
    return override.partition("=")[0].lstrip("+~")


def to_container(cfg: Any) -> dict[str, Any]:
    """A schema dataclass as plain dicts, lists and strings (Enums by name): what YAML, JSON and hashes see."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)  # type: ignore[return-value]


def to_yaml(cfg: Any) -> str:
    """A schema dataclass (a training, grid, launcher or geometry config) as YAML."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
