"""bnnctl: an experiment runner for binary neural networks.

The library (everything here except ``cli/``) never imports the command line;
the CLI parses, calls one function of ``bnnctl.api`` and prints. The same
functions are here for scripts and notebooks: ``bnnctl.train``, ``bnnctl.ablate``,
``bnnctl.run_study``, ``bnnctl.report`` and the rest of ``bnnctl.api.__all__``.
"""

__version__ = "0.3.0"

# bnnctl.api's names, imported when first used so that `import bnnctl` stays light (no torch).
# No subpackage shares one of these names, so an import of a subpackage never hides them.
_API = (
    "ablate",
    "ablate_table",
    "bench_gemm",
    "bench_infer",
    "bench_train",
    "compare",
    "evaluate",
    "evaluate_packed",
    "export",
    "report",
    "run_study",
    "runs_ls",
    "runs_migrate",
    "study_names",
    "train",
)


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module("bnnctl.api"), name)  # by name: the layers below never import it
    raise AttributeError(f"module 'bnnctl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
