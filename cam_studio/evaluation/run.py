"""Running the evaluation: one loop runs every table's work, appends its rows to ``OUT/records/``
as they are computed and reports progress; an interrupted run computes only what is missing.

Under torchrun each process does its share: image i of the source is process ``i mod N``'s, and
a table that trains shares out its runs whole. Once every process is done, rank 0 merges their
rows and runs the tables timed with the machine to itself (the run-time table).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cam_studio.data.distributed import barrier, current
from cam_studio.data.sources import Sample, samples
from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.records import RecordFile, merge_all
from cam_studio.evaluation.tables import ROW_TYPES, TABLES
from cam_studio.evaluation.work import Load, Progress, Table, Work, batches
from cams.backbones import CLEAN_WEIGHTS, Backbone, load_backbone
from cams.errors import Fix, UserInputError
from cams.randomise import parse_randomised


def pending(records: RecordFile, config: EvaluationConfig, key: tuple[str, ...],
            images: str | None = None) -> Iterator[Sample]:
    """This process's images (of ``images``, default ``--images``) whose rows are not in
    ``records`` yet (``key`` + the image id).

    Under torchrun, image i of the source is process ``i mod world``'s: the split depends on the
    source alone, so every image has one owner whatever each process has seen of the records.
    """
    process = current()
    for index, sample in enumerate(samples(images or config.images, config.limit)):
        if process.owns(index) and (*key, sample.id) not in records.done:
            yield sample


def owned_count(config: EvaluationConfig, images: str | None = None) -> int:
    """How many images of the source are this process's (without reading them)."""
    process = current()
    return sum(1 for index, _ in enumerate(samples(images or config.images, config.limit))
               if process.owns(index))


@dataclass(frozen=True)
class Span:
    """A part of the whole run, ``[start, start + width)`` of its fraction done: passes each
    report on to ``progress`` and tells ``overall`` the fraction of the whole run done."""

    progress: Progress
    overall: Callable[[float], None] | None = None
    start: float = 0.0
    width: float = 1.0

    def part(self, index: int, count: int) -> Span:
        width = self.width / max(count, 1)
        return Span(self.progress, self.overall, self.start + index * width, width)

    def __call__(self, what: str, done: int, total: int | None) -> None:
        if self.overall is not None and total:  # first, so that a report reads it updated
            self.overall(self.start + self.width * min(done / total, 1.0))
        self.progress(what, done, total)


def loader(config: EvaluationConfig, models: Mapping[str, Backbone] | None = None) -> Load:
    """The run's loader: each (backbone, weights) loaded once, on the run's device. ``models``:
    your own backbones (``cams.wrap``) by the names the config's ``backbones`` give them; their
    weights are their own (or re-drawn: ``randomised:BLOCK``, the sanity check's)."""
    loaded: dict[tuple[Any, Any], Backbone] = {}
    models = models or {}

    def load(name: str | None, weights: Any = None) -> Backbone:
        key = (name, str(weights or CLEAN_WEIGHTS))
        if key not in loaded:
            loaded[key] = (own_weights(models[name], weights) if name in models
                           else load_backbone(name, weights, config.device))
        return loaded[key]
    return load


def own_weights(backbone: Backbone, weights: Any) -> Backbone:
    """A given backbone with its own weights, or re-drawn as ``randomised[-only]:BLOCK[:SEED]``
    says; any other weights are a one-line error."""
    if weights in (None, CLEAN_WEIGHTS):
        return backbone
    randomised = parse_randomised(str(weights))
    if randomised is None:
        raise UserInputError(f"{backbone.name} is your own model: it has its own weights, not "
                             f"{weights!r}", Fix("pairs", "clean:randomised:BLOCK, or load the "
                                                          "weights into your model"))
    block, test, seed = randomised
    return backbone.randomised(block, test, seed)


def run_work(work: Work, config: EvaluationConfig, progress: Progress) -> None:
    """One unit: its batches of pending images, or (``once``) itself if not done yet; rows are
    appended to their tables' records as they come."""
    folder = config.out / "records"
    records = {work.row: RecordFile(folder, work.row)}

    def append(rows: list[Any]) -> None:
        for row_type in dict.fromkeys(type(row) for row in rows):
            if row_type not in records:
                records[row_type] = RecordFile(folder, row_type)
            records[row_type].append([row for row in rows if type(row) is row_type])

    if work.per_batch is not None:
        todo = list(pending(records[work.row], config, work.key, work.images))  # lazy: no pixels
        total = owned_count(config, work.images)
        done = total - len(todo)
        for batch in batches(iter(todo), config.batch):
            append(work.per_batch(batch))
            done += len(batch)
            progress(work.label, done, total)
    elif work.key not in records[work.row].done:
        append(work.once(progress))
    if work.position is not None:
        progress(work.label, *work.position)


def run_table(table: Table, config: EvaluationConfig, span: Span, load: Load) -> None:
    """A table's units of work, each an equal part of the table's span."""
    units = list(table.work(config, load))
    for index, work in enumerate(units):
        run_work(work, config, span.part(index, len(units)))


NEEDED = {"pairs": "at least one clean:fooled pair", "backbones": "at least one backbone"}


def planned_tables(config: EvaluationConfig) -> list[str]:
    """The tables to compute: those named (each must have what it needs), or by default every
    table that applies and is not opt-in (faithfulness, ROAD, and the tables that train)."""
    if config.batch < 1 or (config.limit is not None and config.limit < 1):
        raise UserInputError("the batch size and the image limit must be at least 1",
                             Fix("batch", "at least 1"), Fix("limit", "at least 1"))
    if config.tables is None:
        return [name for name, table in TABLES.items()
                if not table.opt_in and (table.needs is None or getattr(config, table.needs))]
    unknown = [name for name in config.tables if name not in TABLES]
    if unknown:
        raise UserInputError(f"unknown table {unknown[0]!r}", Fix("tables", ", ".join(TABLES)))
    if not config.tables:
        raise UserInputError("no table chosen", Fix("tables", "at least one of "
                                                              + ", ".join(TABLES)))
    for name in config.tables:
        needs = TABLES[name].needs
        if needs is not None and not getattr(config, needs):
            raise UserInputError(f"the {name} table needs {NEEDED[needs]}",
                                 Fix(needs, "CLEAN:FOOLED, e.g. clean:sham-one-class-efficientnet_lite0"
                                     if needs == "pairs" else "at least one"))
    return [name for name in TABLES if name in config.tables]


def estimate_lines(config: EvaluationConfig, tables: list[str]) -> list[str]:
    """One line per planned table that takes minutes: what it does and about how long, on the
    2-core CPU the estimates were measured on."""
    lines = []
    for name in tables:
        minutes = TABLES[name].seconds(config) / 60
        if minutes >= 1:
            lines.append(f"the {name} table takes about {minutes:.0f} min on a 2-core CPU (less "
                         "on a GPU)" + ("; it resumes if interrupted" if TABLES[name].trains
                                        else ""))
    return lines


def run_all(config: EvaluationConfig, progress: Progress | None = None,
            overall: Callable[[float], None] | None = None,
            models: Mapping[str, Backbone] | None = None) -> None:
    """Every requested table; rows land in ``OUT/records`` as computed. ``progress(what, done,
    total)`` reports each unit of work; ``overall(fraction)`` the fraction of the whole run
    done, each table weighted by its estimated time. ``models``: your own backbones
    (``cams.wrap``) by name, for the names in ``config.backbones`` (and the pairs)."""
    process = current()
    if not (progress and process.main):
        progress, overall = (lambda what, done, total: None), None
    tables = planned_tables(config)
    ordered = ([name for name in tables if not TABLES[name].after_all]
               + [name for name in tables if TABLES[name].after_all])
    seconds = [max(TABLES[name].seconds(config), 1e-6) for name in ordered]
    starts = [sum(seconds[:index]) / sum(seconds) for index in range(len(ordered))]
    spans = {name: Span(progress, overall, start, part / sum(seconds))
             for name, start, part in zip(ordered, starts, seconds)}
    config.out.mkdir(parents=True, exist_ok=True)
    load = loader(config, models)
    for name in ordered:
        if not TABLES[name].after_all:
            run_table(TABLES[name], config, spans[name], load)
    barrier()
    if not process.main:
        return
    merge_all(config.out / "records", ROW_TYPES)
    for name in ordered:
        if TABLES[name].after_all:
            run_table(TABLES[name], config, spans[name], load)
