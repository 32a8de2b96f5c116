"""The Evaluate tab: run the evaluation on the page's choices (the CLI's ``EvaluationConfig``),
return the report."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

from cams.backbones import CLEAN_WEIGHTS, RANDOM_WEIGHTS, REGISTRY, weights_available_offline
from cams.checkpoints import list_checkpoints
from cams.errors import UserInputError
from evaluation.config import TABLES, EvaluationConfig, parse_pairs
from evaluation.report import build_report
from evaluation.run import run_all
from studio.access import ACCESS

IMAGE_SOURCES = ("examples", "photos", "crops:50", "synthetic:binary:200", "a server folder")
# The tab's starting values: the two tables of a passive-fooling comparison on the examples; a
# training table, if ticked, with one seed and short runs.
START = EvaluationConfig(tables=["similarity", "susceptibility"], seeds=1, training_steps=300)


def backbone_options() -> list[str]:
    return [name for name in REGISTRY if weights_available_offline(name)]


def pair_options() -> list[str]:
    """"clean:NAME" for every registry checkpoint of a backbone with clean weights offline, and
    "START:NAME" for checkpoints trained from another registry checkpoint."""
    options = []
    for entry in list_checkpoints()[0]:
        start = entry.metadata.get("recipe", {}).get("init", CLEAN_WEIGHTS)
        if start == CLEAN_WEIGHTS and not weights_available_offline(entry.backbone):
            continue
        if start != RANDOM_WEIGHTS and not start.endswith(".safetensors"):
            options.append(f"{start}:{entry.name}")
    return options


def evaluate_from_page(source: str, folder: str | None, backbones: list[str] | None,
                       pairs: list[str] | None, tables: list[str] | None, limit: float | None,
                       seeds: float, training_steps: float,
                       progress=None) -> tuple[str, list[str], str]:
    """Run the chosen tables; returns the report's Markdown (plots removed), the plot files, and
    a zip of the whole report folder. ``None`` backbones, pairs or tables = the tab's start
    values (the first backbone and pair offered, ``START.tables``)."""
    backbones = backbone_options()[:1] if backbones is None else backbones
    pairs = pair_options()[:1] if pairs is None else pairs
    tables = START.tables if tables is None else tables
    if source not in IMAGE_SOURCES:
        raise UserInputError(f"unknown images {source!r}: choose one of {', '.join(IMAGE_SOURCES)}")
    images = (str(ACCESS.folder(folder, "server folder of images"))
              if source == "a server folder" else source)
    limit = ACCESS.images(int(limit) if limit else None)
    out = Path(tempfile.mkdtemp(prefix="cams-eval-")) / "report"
    config = EvaluationConfig(
        out=out, images=images, backbones=list(backbones), pairs=parse_pairs(",".join(pairs)),
        tables=[table for table in TABLES if table in tables],
        limit=limit, seeds=int(seeds), training_steps=ACCESS.steps(int(training_steps)))
    started = time.perf_counter()

    def report(what: str, done: int, total: int | None) -> None:
        if progress is not None:
            fraction = done / total if total else None
            progress(fraction, desc=f"{what}: {done}" + (f"/{total}" if total else " images"))

    run_all(config, report)
    command = (f"python -m cams evaluate --images {images} --backbones {','.join(backbones)} "
               f"--pairs {','.join(pairs)} --tables {','.join(config.tables)}"
               + (f" --limit {config.limit}" if config.limit else ""))
    markdown = build_report(out, command).read_text()
    markdown = re.sub(r"!\[[^\]]*\]\([^)]*\)\n?", "", markdown)
    markdown += f"\n\n_Computed in {time.perf_counter() - started:.0f} s._\n"
    plots = sorted(str(path) for path in out.glob("*.png"))
    archive = shutil.make_archive(str(out.parent / "cams-evaluation"), "zip", out)
    return markdown, plots, archive
