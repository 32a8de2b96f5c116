"""What an evaluation table is: one object with its name, its rows (typed columns), the units of
work it runs, its report section and its estimate; and the helpers its work shares.

A table's ``work(config)`` yields ``Work`` units. A unit either runs over the images of the
source, a batch at a time (``per_batch``: batch → rows), or once (``once``: → rows); the one loop
(``cam_studio.evaluation.run``) appends the rows to the records as they come, skips what the
records already hold, and reports progress. Adding a table is one object in
``cam_studio.evaluation.tables``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from cam_studio.data.sources import Sample, samples
from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.timing import lite0_scale
from cams.backbones import Backbone
from cams.backbones.specs import DEFAULT_BACKBONE
from cams.checkpoints import find_checkpoint
from cams.engine import applies, as_input_batch, select_methods
from cams.errors import UserInputError
from cams.methods import method_row

Progress = Callable[[str, int, int | None], None]  # (what, done, total)
Load = Callable[..., Backbone]  # load(name, weights=None): the run's loader, each model once


@dataclass
class Work:
    """One unit of a table's work. ``row`` is the row type it writes first (its records decide
    what is done); ``key`` the values of the row's key columns before the image (all of them
    for ``once``); ``label`` names it in the progress, and ``position`` (done, total) says how
    far a ``once`` unit brings its table; ``images`` is its image source when not the config's."""

    row: type
    key: tuple[str, ...]
    label: str
    per_batch: Callable[[list[Sample]], list[Any]] | None = None
    once: Callable[[Progress], list[Any]] | None = None
    position: tuple[int, int] | None = None
    images: str | None = None  # its own image source (default: the config's --images)


@dataclass(frozen=True)
class Section:
    """A table's part of the report: its heading, what it measures, and its body (tables and
    plots written into the report folder, from the table's typed rows)."""

    heading: str
    intro: str
    body: Callable[[Path, list[Any]], str]


@dataclass(frozen=True)
class Table:
    """One evaluation table. ``rows``: its row types, the first its own (a table may write rows
    of others: training writes pointing-game rows); ``work``: its units of work for a config;
    ``section``: its report section (None: reported within another's); ``opt_in``: computed only
    when named; ``needs``: the config field it cannot run without (``pairs``, ``backbones``);
    ``after_all``: run by the main process once every process is done (timing, with the machine
    to itself); ``seconds``: its estimated run time on the project's 2-core CPU."""

    name: str
    paper: str
    rows: tuple[type, ...]
    work: Callable[[EvaluationConfig, Load], Iterable[Work]]
    section: Section | None
    seconds: Callable[[EvaluationConfig], float]
    opt_in: bool = False
    needs: str | None = None
    after_all: bool = False
    trains: bool = False


def batches(source: Iterator[Sample], size: int) -> Iterator[list[Sample]]:
    batch: list[Sample] = []
    for sample in source:
        batch.append(sample)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def inputs_of(backbone: Backbone, batch: list[Sample]) -> Tensor:
    return as_input_batch(backbone, [sample.image for sample in batch])


def pair_backbone(fooled: str) -> str:
    """The backbone of a pair, named by its fooled checkpoint (the default backbone when that is
    a file or not listed: the estimates' fallback, not the run's)."""
    try:
        return find_checkpoint(fooled).backbone
    except UserInputError:
        return DEFAULT_BACKBONE


def image_count(config: EvaluationConfig) -> int:
    """How many images of the source a run takes (without reading them)."""
    return sum(1 for _ in samples(config.images, config.limit))


def per_backbone_seconds(config: EvaluationConfig, lite0_seconds: float) -> float:
    """A table's estimate that takes ``lite0_seconds`` per image on Lite0, over every image
    and backbone of the run (each backbone's time scaled by ``lite0_scale``)."""
    return lite0_seconds * image_count(config) * sum(map(lite0_scale, config.backbones))


def chosen(config: EvaluationConfig, table_methods: tuple[str, ...], backbone: Backbone) -> list[str]:
    """A table's methods that apply to ``backbone``, restricted to ``--methods`` if given."""
    wanted = [name for name in table_methods if applies(method_row(name), backbone)
              and (config.methods is None or name in config.methods)]
    return select_methods(backbone, wanted)
