"""Errors the command line turns into one clear line and an exit code.

Library code raises these instead of printing, so the CLI can decide how to
report them (one line on stderr, exit 2) and tests can assert on them.
"""

from __future__ import annotations


class BnnctlError(Exception):
    """Bad input or environment: a one-line message for the user, exit code 2."""

    exit_code = 2


class ConfigError(BnnctlError):
    """A config that does not compose or does not validate."""


class DataError(BnnctlError):
    """A dataset that cannot be found, read or downloaded."""


class RunError(BnnctlError):
    """A run folder that is missing, incomplete, unwritable or corrupt."""


class TrainingDiverged(BnnctlError):
    """The loss or the weights stopped being finite: the run is marked failed, never done (exit 1)."""

    exit_code = 1


class PackError(BnnctlError):
    """A model that cannot be packed exactly, or a packed model file that cannot be read."""


class Terminated(BaseException):
    """SIGTERM arrived (``kill``, a SLURM time limit or preemption): handled like Ctrl-C, exit 143.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception``
    on the way up mistakes it for a failed run.
    """
