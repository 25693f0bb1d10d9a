"""What training tells its caller while it runs: ``TrainObserver`` (does nothing; subclass to draw or log it).

Apart from the trainer, so that what observes training (the CLI's progress,
the loggers) depends on this interface alone, not on the loop that calls it.
"""

from __future__ import annotations

from typing import Any


class TrainObserver:
    """Receives progress; the default does nothing. Subclass to draw or log it."""

    def on_fit_start(self, *, epochs: int, steps_per_epoch: int, run: Any, device: str) -> None: ...

    def on_resume(self, history: list[dict[str, Any]]) -> None:
        """The epochs an earlier attempt finished (empty for a fresh run), before training goes on."""

    def on_step(self, *, epoch: int, step: int, loss: float | None) -> None: ...

    def on_iteration(self, record: dict[str, Any]) -> None:
        """A periodic validation record (``train.eval_every``): epoch, iteration, val_acc."""

    def on_epoch_end(self, record: dict[str, Any]) -> None: ...

    def on_fit_end(self, summary: dict[str, Any]) -> None: ...

    def close(self) -> None:
        """Stop any live display (called however training ended)."""


class Observers(TrainObserver):
    """Several observers as one, called in order."""

    def __init__(self, *observers: TrainObserver | None):
        self.observers = [o for o in observers if o is not None]

    def on_fit_start(self, **kwargs: Any) -> None:
        for o in self.observers:
            o.on_fit_start(**kwargs)

    def on_resume(self, history):
        for o in self.observers:
            o.on_resume(history)

    def on_step(self, **kwargs: Any) -> None:
        for o in self.observers:
            o.on_step(**kwargs)

    def on_iteration(self, record: dict[str, Any]) -> None:
        for o in self.observers:
            o.on_iteration(record)

    def on_epoch_end(self, record):
        for o in self.observers:
            o.on_epoch_end(record)

    def on_fit_end(self, summary):
        for o in self.observers:
            o.on_fit_end(summary)

    def close(self):
        for o in self.observers:
            o.close()
