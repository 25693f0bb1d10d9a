"""The run contract: one self-describing folder per run, its identity, its status, its trained model.

``ids`` (run and cell ids), ``folder`` (layout, status, DONE last),
``making`` (the one timestamped-folder maker; folders made, emptied, set
aside, opened), ``trained`` (the model from a checkpoint), ``listing``,
``grids`` (grid folders and their manifest). Inside the library import from
those modules; these re-exports are the public API.
"""

from bnnctl.runs.folder import (
    CHECKPOINT,
    CHECKPOINT_FORMAT,
    CONFIG,
    DONE,
    ENV,
    ERROR,
    METRICS,
    OVERRIDES,
    RESUME,
    RUN_FILES,
    SUMMARY,
    Run,
    RunState,
    Status,
)
from bnnctl.runs.grids import GRID_MANIFEST, MANIFEST_SCHEMA, cell_run_dir, grid_dir, read_manifest, write_manifest
from bnnctl.runs.ids import cell_id, config_hash, identity, run_id
from bnnctl.runs.listing import list_runs
from bnnctl.runs.making import (
    create_run,
    discard_if_untrained,
    fresh_run,
    new_timestamped_folder,
    open_run,
    safe_name,
    set_aside,
)
from bnnctl.runs.trained import Trained, load_trained, load_trained_model, load_weights, weights_mismatch

__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_FORMAT",
    "CONFIG",
    "DONE",
    "ENV",
    "ERROR",
    "GRID_MANIFEST",
    "MANIFEST_SCHEMA",
    "METRICS",
    "OVERRIDES",
    "RESUME",
    "RUN_FILES",
    "SUMMARY",
    "Run",
    "RunState",
    "Status",
    "Trained",
    "cell_id",
    "cell_run_dir",
    "config_hash",
    "create_run",
    "discard_if_untrained",
    "fresh_run",
    "grid_dir",
    "identity",
    "list_runs",
    "load_trained",
    "load_trained_model",
    "load_weights",
    "open_run",
    "read_manifest",
    "run_id",
    "safe_name",
    "set_aside",
    "new_timestamped_folder",
    "weights_mismatch",
    "write_manifest",
]
