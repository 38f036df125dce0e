"""What the codecs fitted at encode time share (overfit-rgb, nirvana-video): the learning-rate
schedule and the step budget (``steps``, optionally capped by ``seconds``, with a progress bar)."""
from __future__ import annotations

import math
import time

__all__ = ["cosine_scale", "StepBudget"]


def cosine_scale(i: int, total: int, floor: float = 0.05) -> float:
    """Learning-rate factor at step i of total: cosine decay from 1 to ``floor``."""
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * i / total))


class StepBudget:
    """Counts fitting steps. With ``seconds``, the total is cut after the first 5 steps to the
    number that fits in that time (measured on them), never below 6; ``bar`` (tqdm) follows."""

    MEASURE = 5

    def __init__(self, steps: int, seconds: float | None = None, bar=None) -> None:
        self.total, self.seconds, self.bar = int(steps), seconds, bar
        self.i = 0
        self.t0 = time.perf_counter()

    @property
    def running(self) -> bool:
        return self.i < self.total

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def tick(self) -> None:
        self.i += 1
        if self.i == self.MEASURE and self.seconds is not None:
            per = self.elapsed / self.MEASURE
            self.total = max(self.MEASURE + 1, min(self.total, int(self.seconds / per)))
            if self.bar is not None:
                self.bar.total = self.total
        if self.bar is not None:
            self.bar.update(1)

    def report(self) -> bool:
        """True on the steps where a bar's figures should be refreshed (every 10th and the last)."""
        return self.bar is not None and (self.i % 10 == 0 or self.i == self.total)
