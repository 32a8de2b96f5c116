"""The Evaluate tab: run the evaluation on the page's choices (the CLI's ``EvaluationConfig``),
return the report."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cam_studio.evaluation.config import EvaluationConfig, parse_pairs
from cam_studio.evaluation.report import build_report
from cam_studio.evaluation.run import planned_tables, run_all
from cam_studio.evaluation.tables import TABLES
from cam_studio.tabs.access import ACCESS
from cam_studio.tabs.progress import Remaining
from cam_studio.tabs.tempspace import app_space
from cam_studio.tabs.values import number
from cams.backbones import CLEAN_WEIGHTS, RANDOM_WEIGHTS, REGISTRY, weights_available_offline
from cams.checkpoints import list_checkpoints
from cams.errors import IMAGES, Fix, UserInputError
from cams.methods import MANY_PASS_KINDS, METHOD_NAMES, METHODS

# Evaluations in progress (not the swept space: a long one outlives its 10 minutes), each removed
# when done, or after a day untouched.
EVALUATIONS = Path(tempfile.gettempdir()) / "cam-studio-evaluations"
ABANDONED_S = 24 * 3600
# Every method but the many-pass ones (ScoreCAM: its box adds it; IS-CAM and SS-CAM: 10 and 35
# times its cost; SESS: a pass per patch, ~140 per image).
WITHOUT_SCORECAM = [name for name in METHOD_NAMES if METHODS[name].kind not in MANY_PASS_KINDS]
IMAGE_SOURCES = ("examples", "photos", "crops:50", "synthetic:binary:200", "a server folder")
# The tab's starting values: the two tables of a passive-fooling comparison on the bundled
# examples (at most 8; there are five), every method but ScoreCAM (its box adds it: minutes): under
# half a minute on a 2-core CPU. A training table, if ticked, with one seed and short runs.
START = EvaluationConfig(tables=["similarity", "susceptibility"], seeds=1, training_steps=300,
                         limit=8)


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


@dataclass(frozen=True)
class EvaluateRequest:
    """An evaluation as the tab or the ``/evaluate`` API asks for it (the field order is the
    API's parameter order). ``None`` backbones, pairs or tables = the tab's start values (the
    first backbone and pair offered, ``START.tables``)."""

    source: str = START.images
    folder: str | None = None
    backbones: tuple[str, ...] | None = None
    pairs: tuple[str, ...] | None = None
    tables: tuple[str, ...] | None = None
    limit: float | None = START.limit
    seeds: float = START.seeds
    training_steps: float = START.training_steps
    scorecam: bool = False  # ScoreCAM's masked passes: ~20 s per image and checkpoint on a CPU


def evaluation_config(request: EvaluateRequest) -> EvaluationConfig:
    """The command line's ``EvaluationConfig`` for a request, in a fresh report folder."""
    backbones = backbone_options()[:1] if request.backbones is None else request.backbones
    pairs = pair_options()[:1] if request.pairs is None else request.pairs
    tables = START.tables if request.tables is None else request.tables
    if request.source not in IMAGE_SOURCES:
        raise UserInputError(f"unknown images {request.source!r}",
                             Fix(IMAGES, "one of " + ", ".join(IMAGE_SOURCES)))
    images = (str(ACCESS.folder(request.folder, "server folder of images"))
              if request.source == "a server folder" else request.source)
    config = EvaluationConfig(
        out=EVALUATIONS, images=images,
        backbones=list(backbones), pairs=parse_pairs(",".join(pairs)),
        tables=[table for table in TABLES if table in tables],
        limit=ACCESS.images(number(request.limit, "limit", 1, 10**9, True)),
        seeds=number(request.seeds, "seeds", 1, 1000, True, default=1),
        training_steps=ACCESS.steps(number(request.training_steps, "training_steps", 1, 10**7,
                                           True, default=START.training_steps)),
        methods=[*WITHOUT_SCORECAM, "ScoreCAM"] if request.scorecam else WITHOUT_SCORECAM,
        batch=1)  # an image at a time: the progress bar moves with each image
    # One folder per distinct evaluation: the same request after a restart (or a lost
    # connection) resumes from its records, as the command line does with --out.
    settings = {key: value for key, value in dataclasses.asdict(config).items() if key != "out"}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    config.out = EVALUATIONS / key[:20] / "report"
    return config


# Writing the report after the tables (Markdown, plots, the zip): 1.1 s for the tab's default on
# the 2-core CPU. The progress bar gives it its share, so the time left counts it.
REPORT_SECONDS = 1.0


def estimated_seconds(config: EvaluationConfig) -> float:
    """The tables' own estimates, summed (what the job limit is checked against)."""
    return sum(TABLES[name].seconds(config) for name in planned_tables(config))


def evaluate_from_page(request: EvaluateRequest,
                       progress=None) -> tuple[str, list[str], str]:
    """Run the chosen tables; returns the report's Markdown (plots removed), the plot files, and
    a zip of the whole report folder."""
    forget_abandoned()
    config = evaluation_config(request)
    seconds = estimated_seconds(config)
    ACCESS.minutes(seconds, "evaluation")  # above the server's job limit: refused before any work
    out = config.out
    started = time.perf_counter()

    remaining = Remaining()
    whole = [0.0]  # the fraction of the whole job done: the tables', then the report's share
    tables_share = 1 - REPORT_SECONDS / (seconds + REPORT_SECONDS)

    def report(what: str, done: int, total: int | None) -> None:
        if progress is not None:
            progress(whole[0], desc=f"{what}: {done}" + (f"/{total}" if total else "")
                     + f" · {remaining.text(whole[0])}")

    def overall(fraction: float) -> None:
        whole[0] = fraction * tables_share

    run_all(config, report, overall)
    report("writing the report", 1, 1)
    pairs = ",".join(f"{clean}:{fooled}" for clean, fooled in config.pairs)
    # The images as the page named them: a shared app's report shows no server path.
    images = (f"DATA_ROOT/{request.folder}" if ACCESS.remote and request.source == "a server folder"
              else config.images)
    command = (f"python -m cam_studio evaluate --images {images} --backbones "
               f"{','.join(config.backbones)} --pairs {pairs} --tables {','.join(config.tables)}"
               + (f" --limit {config.limit}" if config.limit else "")
               + (f" --methods {','.join(config.methods)}" if config.methods else ""))
    markdown = build_report(out, command).read_text()
    markdown = re.sub(r"!\[[^\]]*\]\([^)]*\)\n?", "", markdown)
    markdown += f"\n\n_Computed in {time.perf_counter() - started:.0f} s._\n"
    # What the page shows lives in the swept space; the records folder goes once it is done.
    shown = app_space().fresh("evaluation-")
    plots = [str(shutil.copy2(path, shown)) for path in sorted(out.glob("*.png"))]
    archive = shutil.make_archive(str(shown / "cams-evaluation"), "zip", out)
    shutil.rmtree(out.parent, ignore_errors=True)
    return markdown, plots, archive


def forget_abandoned(now: float | None = None) -> None:
    """Remove evaluation folders untouched for ``ABANDONED_S`` (runs nobody came back for)."""
    now = time.time() if now is None else now
    for folder in EVALUATIONS.glob("*") if EVALUATIONS.is_dir() else []:
        try:
            if now - max(path.stat().st_mtime for path in [folder, *folder.rglob("*")]) > \
                    ABANDONED_S:
                shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            continue
