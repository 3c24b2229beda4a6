"""Live progress of a search: a Ray Tune callback that says, every few seconds, how many
trials are done and running, the best score so far and the time left. ``honing run`` shows
the lines on the terminal and Prefect keeps them in the task run's log."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from honing.metrics import metric_value


def progress_callback(
    say: Callable[[str], None],
    metric: str,
    budget_s: float | None,
    every_s: float,
    family_key: str,
) -> Any:
    """A Ray Tune callback that says, every ``every_s`` seconds and at the end, how many trials
    are done and running, the best score so far and the time left."""
    from ray.tune import Callback

    class Progress(Callback):
        def __init__(
            self,
            say: Callable[[str], None],
            metric: str,
            budget_s: float | None,
            every_s: float,
        ) -> None:
            self.say, self.metric, self.budget_s, self.every_s = say, metric, budget_s, every_s
            self.started = time.monotonic()
            self.last = 0.0
            self.done = self.stopped = self.failed = 0
            self.best: tuple[float, str] | None = None

        def line(self, running: int) -> str:
            best = (
                f"best {self.metric} {metric_value(self.metric, self.best[0]):.4f} ({self.best[1]})"
                if self.best
                else "no score yet"
            )
            left = ""
            if self.budget_s is not None:
                remaining = self.budget_s - (time.monotonic() - self.started)
                left = f", {max(remaining, 0):.0f}s left"
            extra = "".join(
                f", {n} {word}"
                for n, word in ((self.stopped, "stopped"), (self.failed, "failed"))
                if n
            )
            return f"search: {self.done} trials done, {running} running{extra}; {best}{left}"

        def on_trial_result(self, iteration, trials, trial, result, **info):  # noqa: ANN001
            score = result.get("score")
            if score is not None and (self.best is None or score > self.best[0]):
                self.best = (float(score), str(trial.config.get(family_key)))
            self.tick(trials)

        def on_trial_complete(self, iteration, trials, trial, **info):  # noqa: ANN001
            self.done += 1
            self.tick(trials)

        def on_trial_error(self, iteration, trials, trial, **info):  # noqa: ANN001
            self.failed += 1
            self.tick(trials)

        def tick(self, trials: list[Any], force: bool = False) -> None:
            now = time.monotonic()
            if force or now - self.last >= self.every_s:
                self.last = now
                running = sum(1 for t in trials if t.status == "RUNNING")
                self.say(self.line(running))

        def on_experiment_end(self, trials, **info):  # noqa: ANN001
            self.stopped = sum(1 for t in trials if t.status == "TERMINATED") - self.done
            self.stopped = max(self.stopped, 0)
            self.say(self.line(0).replace("search:", "search finished:"))

    return Progress(say, metric, budget_s, every_s)
