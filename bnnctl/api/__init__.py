"""The Python API: every command's flow, once. The CLI parses, calls one of these and renders.

``bnnctl.train([...])`` is ``bnnctl train ...``; ``bnnctl.ablate("clip_dropout", [...])``
is ``bnnctl ablate grid clip_dropout ...``; ``bnnctl.run_study("angles", [...])`` is
``bnnctl geometry angles ...``; ``bnnctl.report(path)`` is ``bnnctl report path``.
Overrides are the command line's, as a list of strings (``runs_dir=PATH`` among
them says where folders go). Nothing here prints: pass an observer or a
``progress`` callable to watch. Bad input raises ``bnnctl.errors.BnnctlError``
(the CLI's exit 2) with the same one-line message. No call leaves a
process-wide setting changed (``bnnctl.process.computing``).
"""

from bnnctl.api.benchmarks import bench_gemm, bench_infer, bench_train
from bnnctl.api.grids import AblateResult, AblateTable, ablate, ablate_table, compare
from bnnctl.api.results import ReportResult, report, runs_ls, runs_migrate
from bnnctl.api.studies import StudyResult, run_study, study_names
from bnnctl.api.training import TrainResult, evaluate, evaluate_packed, export, train

__all__ = [
    "AblateResult",
    "AblateTable",
    "ReportResult",
    "StudyResult",
    "TrainResult",
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
]
