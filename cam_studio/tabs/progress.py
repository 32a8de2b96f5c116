"""How long a job has left, as the page's progress lines say it.

The estimate extrapolates the rate seen since the job's first report: with ``(t0, f0)`` the time
and fraction done at the first report and ``(t, f)`` now, the time left is
``(t - t0) / (f - f0) · (1 - f)``. Starting the clock at the first report, not at the click,
keeps one-off costs (loading the models, the first forward pass) out of the rate.
``python -m cam_studio bench --estimates`` measures these estimates against the real time left
of the page's long jobs (BENCHMARKS.md).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

ESTIMATING = "estimating the time left"
MIN_SECONDS = 1.0  # less time seen than this gives no estimate (one slow step would mislead)


def duration(seconds: float) -> str:
    """``42 s``, ``3 min``, ``1 h 5 min``: as precise as a person waiting needs."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min"


def left_text(seconds: float | None) -> str:
    return ESTIMATING if seconds is None else f"about {duration(seconds)} left"


def parse_left(text: str) -> float | None:
    """The seconds a progress line's ``about … left`` says (None if it says none): what the
    benchmark compares with the real time left."""
    found = re.search(r"about (?:(\d+) h )?(\d+) (s|min) left", text)
    if found is None:
        return None
    hours, amount, unit = found.groups()
    return int(hours or 0) * 3600 + int(amount) * (60 if unit == "min" or hours else 1)


class Remaining:
    """The time left of one job (or one stage of it), from its reports of the fraction done."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.origin: tuple[float, float] | None = None

    def seconds(self, fraction: float, now: float | None = None) -> float | None:
        """Seconds left at ``fraction`` done (0–1); None until some time and work were seen."""
        now = self.clock() if now is None else now
        if self.origin is None:
            self.origin = (now, fraction)
            return None
        start, done_then = self.origin
        if now - start < MIN_SECONDS or fraction <= done_then:
            return None
        return (now - start) / (fraction - done_then) * max(0.0, 1.0 - fraction)

    def text(self, fraction: float, now: float | None = None) -> str:
        return left_text(self.seconds(fraction, now))


def stage_progress(progress: Callable[..., None]) -> Callable[[int, int, str], None]:
    """A comparison's long stages on a page's progress bar (``progress(fraction, desc=…)``):
    ScoreCAM's masked and AblationCAM's ablated passes (the engine reports ``done, total``),
    then the faithfulness maps (with their stage); each stage's time left at its own rate."""
    clocks: dict[str, Remaining] = {}

    def report(done: int, total: int, stage: str = "masked / ablated passes") -> None:
        fraction = done / max(total, 1)
        left = clocks.setdefault(stage, Remaining()).text(fraction)
        progress(fraction, desc=f"{stage} {done}/{total} · {left}")
    return report


def within_budget(progress: Callable[..., None] | None, check: Callable[[float, float | None], None],
                  clock: Callable[[], float] = time.perf_counter) -> Callable[..., None]:
    """``progress`` (an engine's ``done, total[, stage]`` callback, or None) that first calls
    ``check(seconds since now, seconds the current stage has left)``, which may stop the job by
    raising: a job that reports its long stages cannot outrun its budget."""
    started = clock()
    clocks: dict[tuple, Remaining] = {}

    def report(done: int, total: int, *stage: str) -> None:
        left = clocks.setdefault(stage, Remaining(clock)).seconds(done / max(total, 1))
        check(clock() - started, left)
        if progress is not None:
            progress(done, total, *stage)
    return report
