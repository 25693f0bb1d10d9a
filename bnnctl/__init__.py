"""bnnctl: an experiment runner for binary neural networks.

The library (everything here except ``cli/``) never imports the command line;
the CLI is a thin layer that composes configs, calls the library and prints.
The same commands from Python: ``bnnctl.train``, ``bnnctl.ablate``, ``bnnctl.report``
and ``bnnctl.geometry.angles`` (see ``bnnctl.api``).
"""

__version__ = "0.2.0"

_API = ("train", "ablate", "report")  # bnnctl.api, imported when first used: `import bnnctl` stays light


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module("bnnctl.api"), name)  # by name: the layers below never import it
    raise AttributeError(f"module 'bnnctl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
