"""The ``bnnctl`` command line: parse, call the library, print. No tensors here.

One module per command group (``train``: train, eval and export; ``runs``; ``ablate``;
``bench``), sharing ``common`` (errors, exit codes, printing) and ``progress``
(live displays). The library never imports this package.
"""

from bnnctl.cli import ablate, bench, geometry, report, runs, train  # noqa: F401 - each registers its commands
from bnnctl.cli.app import app


def main() -> None:
    """The ``bnnctl`` program: a process that owns itself keeps freed memory for reuse (``bnnctl.process``)."""
    from bnnctl.process import keep_freed_memory_for_reuse

    keep_freed_memory_for_reuse()
    app()


__all__ = ["app", "main"]
