"""Launchers run any function: results in finishing order, failures as typed results, the same answers everywhere."""

import os

import pytest

from bnnctl.config.load import load_launcher
from bnnctl.errors import ConfigError
from bnnctl.sweep.launchers import LAUNCHERS, TaskResult, make_launcher, split_cores


def square_or_fail(n: int) -> int:
    """Module-level, so that worker processes can unpickle it."""
    if n == 3:
        raise ValueError("three is not allowed")
    return n * n


def pid_of_worker(_: int) -> int:
    return os.getpid()


@pytest.mark.parametrize(
    "launcher",
    [["launcher=inline"], ["launcher=local", "launcher.workers=2", "launcher.threads=1"]],
    ids=["inline", "local"],
)
def test_map_returns_every_result_and_turns_exceptions_into_errors(launcher):
    results = dict(make_launcher(load_launcher(launcher), 5).map(square_or_fail, [0, 1, 2, 3, 4]))
    assert {n: r.value for n, r in results.items() if r.ok} == {0: 0, 1: 1, 2: 4, 4: 16}
    assert results[3] == TaskResult(error="ValueError: three is not allowed")


def test_inline_runs_in_this_process_and_local_in_others():
    inline = dict(make_launcher(load_launcher(["launcher=inline"]), 2).map(pid_of_worker, [0, 1]))
    assert {r.value for r in inline.values()} == {os.getpid()}
    local = dict(
        make_launcher(load_launcher(["launcher.workers=1", "launcher.threads=1"]), 2).map(pid_of_worker, [0, 1])
    )
    assert os.getpid() not in {r.value for r in local.values()}


def test_on_start_sees_each_task_before_it_finishes():
    started = []
    for task, _ in make_launcher(load_launcher(["launcher=inline"]), 3).map(
        square_or_fail, [5, 6, 7], on_start=started.append
    ):
        assert task in started
    assert started == [5, 6, 7]


def test_one_registry_names_the_launchers():
    assert {"inline", "local", "ray", "submitit"} <= set(LAUNCHERS)
    cfg = load_launcher(["launcher=local"])
    cfg.name = "nope"
    with pytest.raises(ConfigError, match=r"unknown launcher.name 'nope' \(known: .*local"):
        make_launcher(cfg, 1)


def test_cores_are_split_two_threads_per_worker_and_one_worker_per_gpu():
    assert split_cores(8, 0, 10) == (4, 2)
    assert split_cores(8, 0, 3) == (3, 2)
    assert split_cores(8, 0, 10, gpu=True) == (1, 8)
    assert split_cores(2, 3, 10) == (3, 1)
