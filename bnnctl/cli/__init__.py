"""The ``bnnctl`` command line: parse, call the library, print. No tensors here.

One module per command group (``train``: train, eval and export; ``runs``; ``ablate``;
``bench``), sharing ``common`` (errors, exit codes, printing) and ``progress``
(live displays). The library never imports this package.
"""

from bnnctl.cli import ablate, bench, geometry, report, runs, train  # noqa: F401 - each registers its commands
from bnnctl.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
