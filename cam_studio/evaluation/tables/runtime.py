"""Run time (DiffGradCAM paper, Table 1): per method, milliseconds per image alone (one
``explain`` call computing only it) and its marginal cost inside the one-pass panel (the panel's
time minus the panel's without it). Timed by the main process once every other is done."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cam_studio.data.sources import samples
from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.rows import key
from cam_studio.evaluation.summaries import write_table
from cam_studio.evaluation.timing import timed
from cam_studio.evaluation.work import Load, Progress, Section, Table, Work, chosen, inputs_of
from cams.engine import explain
from cams.methods import DEFAULT_METHODS, METHOD_NAMES, METHODS

REPEATS = 5
SECONDS_PER_BACKBONE = 40.0  # every method alone and the panel without each, Lite0, 2-core CPU


@dataclass(frozen=True)
class RuntimeRow:
    table: ClassVar[str] = "runtime"
    backbone: str = key()
    device: str = key()
    method: str = ""
    batch: int = 0
    standalone_ms: float = 0.0
    marginal_ms: float = 0.0
    panel_ms: float = 0.0


def work(config: EvaluationConfig, load: Load) -> Iterator[Work]:
    for name in config.backbones:
        backbone = load(name)

        def timings(progress: Progress, backbone=backbone) -> list[RuntimeRow]:
            device = str(backbone.device)
            batch = list(samples(config.images, config.batch))
            inputs = inputs_of(backbone, batch)
            panel = chosen(config, DEFAULT_METHODS, backbone)
            measured = chosen(config, METHOD_NAMES, backbone)

            def median_ms(methods: list[str], times: int) -> float:
                explain(backbone, inputs, methods)  # warm-up
                return statistics.median(timed(lambda: explain(backbone, inputs, methods),
                                               backbone.device) for _ in range(times)) / len(batch)

            panel_ms = median_ms(panel, REPEATS)
            rows = []
            for index, method in enumerate(measured):
                times = REPEATS if METHODS[method].default else 1  # the opt-in ones are slow
                standalone = median_ms([method], times)
                rest = [other for other in panel if other != method]
                marginal = (panel_ms - median_ms(rest, REPEATS) if method in panel and rest
                            else standalone)
                rows.append(RuntimeRow(backbone.name, device, method, len(batch), standalone,
                                       marginal, panel_ms))
                progress(f"runtime {backbone.name}", index + 1, len(measured))
            return rows

        yield Work(RuntimeRow, (backbone.name, str(backbone.device)), f"runtime {backbone.name}",
                   once=timings)


def section(out: Path, rows: list[RuntimeRow]) -> str:
    text = []
    for backbone, device in dict.fromkeys((row.backbone, row.device) for row in rows):
        mine = [row for row in rows if (row.backbone, row.device) == (backbone, device)]
        table = [[row.method, f"{row.standalone_ms:.1f}", f"{row.marginal_ms:.1f}"]
                 for row in mine]
        text += [f"### {backbone} on {device} (batch {mine[0].batch}; whole panel "
                 f"{mine[0].panel_ms:.1f} ms per image)", "",
                 write_table(out, f"runtime_{backbone}_{device.replace(':', '')}",
                             ["method", "alone (ms/image)", "marginal in panel (ms/image)"],
                             table)]
    return "\n".join(text)


TABLE = Table(
    "runtime", "DiffGradCAM, Table 1", (RuntimeRow,), work,
    Section("Run time (DiffGradCAM paper, Table 1)",
            "Milliseconds per image: each method alone (one `explain` call computing only it) "
            "and its marginal cost inside the one-pass panel (the panel's time minus the panel's "
            "without it; it can be ≈ 0 or slightly negative within timing noise).", section),
    seconds=lambda config: SECONDS_PER_BACKBONE * len(config.backbones),
    needs="backbones", after_all=True)
