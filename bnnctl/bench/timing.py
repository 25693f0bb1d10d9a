"""Interleaved timing: every method once per round, in one process, medians over rounds.

The machine is shared and noisy, so methods are never timed in separate
blocks: round r times each method once (the order rotating per round), and a
method's figure is its median over rounds. Each sample repeats a call until it
lasts at least ``min_sample_s`` (a batch-1 call takes microseconds), and
sleeps briefly first so that the other method's worker threads (OpenMP spins
after a parallel region) have gone quiet.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

SETTLE_S = 0.002


def calls_per_sample(fn: Callable[[], object], min_sample_s: float) -> int:
    """How many calls make one sample of at least ``min_sample_s`` (after one untimed warm-up call)."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    return max(1, int(min_sample_s / once) + 1)


def interleaved_medians(
    methods: Mapping[str, Callable[[], object]], rounds: int, min_sample_s: float = 0.02
) -> dict[str, float]:
    """Median seconds per call of each method, timed round-robin over ``rounds`` rounds."""
    counts = {name: calls_per_sample(fn, min_sample_s) for name, fn in methods.items()}
    samples: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn, count = methods[name], counts[name]
            time.sleep(SETTLE_S)
            t0 = time.perf_counter()
            for _ in range(count):
                fn()
            samples[name].append((time.perf_counter() - t0) / count)
    return {name: statistics.median(values) for name, values in samples.items()}
