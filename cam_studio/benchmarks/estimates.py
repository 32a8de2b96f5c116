"""``python -m cam_studio bench --estimates``: are the page's "about … left" right within × 2?

The three long jobs of the page, each started as its button starts it and with its defaults:
the Compare tab's faithfulness (the default comparison with "faithfulness" ticked), the Evaluate
tab's default evaluation, and the Fine-tune tab's default run. Every progress line the page would
show is recorded with its time; when the job ends, each line's "about N left" is compared with
the time that was really left. Reported per job: the ratio shown ÷ real at the first line with an
estimate, and at the first line past 25 %, 50 % and 75 % of the job's wall time.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from cam_studio.benchmarks.measure import machine_description
from cam_studio.tabs.compare import BackboneCache, CompareRequest, run_compare
from cam_studio.tabs.evaluate import EvaluateRequest, evaluate_from_page
from cam_studio.tabs.finetune import TrainRequest, report, training_config
from cam_studio.tabs.jobs import start_job
from cam_studio.tabs.progress import parse_left, stage_progress

MOMENTS = (0.25, 0.5, 0.75)  # of the job's wall time


class Recorder:
    """A page progress bar's stand-in: keeps (time, text) of every line it is given."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def __call__(self, fraction: float | None = None, desc: str = "", **_: object) -> None:
        self.lines.append((time.perf_counter(), desc))


def judged(lines: list[tuple[float, str]], started: float, ended: float) -> dict:
    """Shown ÷ real time left at the first estimate and past each moment of the wall time."""
    shown = [(when, parse_left(text)) for when, text in lines]
    shown = [(when, left) for when, left in shown if left is not None and when < ended]
    wall = ended - started
    result: dict = {"wall_s": round(wall, 1), "lines": len(lines), "estimates": len(shown)}
    if not shown:
        return result
    when, left = shown[0]
    result["first"] = {"at_s": round(when - started, 1), "shown_s": left,
                       "real_s": round(ended - when, 1), "ratio": round(left / (ended - when), 2)}
    for moment in MOMENTS:
        past = [(when, left) for when, left in shown if when - started >= moment * wall]
        if past:
            when, left = past[0]
            result[f"at_{int(moment * 100)}%"] = {
                "shown_s": left, "real_s": round(ended - when, 1),
                "ratio": round(left / max(ended - when, 1e-9), 2)}
    return result


def faithfulness_job() -> dict:
    request = CompareRequest(faithfulness=True)
    cache = BackboneCache()
    run_compare(cache, dataclasses.replace(request, faithfulness=False))  # models loaded first
    recorder = Recorder()
    started = time.perf_counter()
    run_compare(cache, request, stage_progress(recorder))
    stage = [(when, text) for when, text in recorder.lines if text.startswith("faithfulness")]
    return judged(stage, stage[0][0] if stage else started, time.perf_counter())


def evaluate_job() -> dict:
    recorder = Recorder()
    started = time.perf_counter()
    evaluate_from_page(EvaluateRequest(), recorder)
    return judged(recorder.lines, started, time.perf_counter())


def finetune_job(registry: Path) -> dict:
    config = dataclasses.replace(training_config(TrainRequest(name="estimates-bench"))[0],
                                 directory=str(registry))
    started = time.perf_counter()
    job = start_job(config)
    lines = []
    while job.running:
        lines.append((time.perf_counter(), report(job)[0]))
        time.sleep(0.5)
    if job.error:
        raise RuntimeError(f"the fine-tune run failed: {job.error}")
    return judged(lines, started, time.perf_counter())


def bench_estimates() -> dict:
    with tempfile.TemporaryDirectory() as registry:
        return {"machine": machine_description(torch.device("cpu")),
                "faithfulness": faithfulness_job(), "evaluate": evaluate_job(),
                "finetune": finetune_job(Path(registry))}
