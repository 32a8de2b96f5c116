"""The Fine-tune tab: its choices, the SHAM preview, starting and reporting runs.

``cam_studio.page.finetune`` wires the tab's events here; the training itself is
``fooling.train`` (the CLI's), and the tab's ``TrainRequest`` builds the CLI's ``TrainConfig``.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from cam_studio.data.training import PHOTOS
from cam_studio.tabs.access import ACCESS
from cam_studio.tabs.jobs import TrainingJob, unpack_dataset_zip
from cam_studio.tabs.progress import Remaining, left_text
from cam_studio.tabs.values import number
from cams.backbones import CLEAN_WEIGHTS, RANDOM_WEIGHTS, spec_for
from cams.checkpoints import list_checkpoints
from cams.errors import Fix, UserInputError
from cams.metrics import cam_entropy_nats
from fooling.config import TrainConfig, preset
from fooling.sham import sham_mask
from fooling.train import check_start

DATA_SOURCES: dict[str, str] = {
    "synthetic: bona fide vs attack (binary)": "synthetic:binary",
    "synthetic: 7 pattern classes": "synthetic:7class",
    "bundled photos (unlabelled: KL to the starting model)": PHOTOS,
    "a folder on the server (ImageFolder)": "folder",
    "an uploaded zip (images/CLASS/…, optional salience/CLASS/…)": "zip",
}
METRIC_NAMES = ("accuracy", "auroc", "agreement", "salience_mse", "pointing_game",
                "cam_entropy_nats")


# The tab's starting values: the synthetic preset, a short SHAM run.
START = preset("synthetic", name="my-sham-model", loss="sham", steps=200)
START_SOURCE = next(label for label, data in DATA_SOURCES.items() if data == START.data)


def init_choices(backbone: str) -> list[tuple[str, str]]:
    """Starting weights: pretrained, random, or any registry checkpoint of ``backbone``."""
    return [("clean (pretrained)", CLEAN_WEIGHTS), ("random initialisation", RANDOM_WEIGHTS)] + [
        (entry.label, entry.name) for entry in list_checkpoints(backbone)[0]]


def sham_preview(backbone: str, size: int | None, entropy_nats: float) -> tuple[np.ndarray, str]:
    """The SHAM a run would supervise, at the layer size the backbone's spec gives for this
    input size, enlarged for display, and a caption."""
    side = number(size, "size", 0, 4096, True) or None
    ACCESS.training_shape(1, side)  # a shared app's cap (a 4000 px preview took 33 s of CPU)
    height, width = spec_for(backbone).layer_size(side)
    try:
        mask = sham_mask(height, width, entropy_nats)
    except ValueError as error:
        raise UserInputError(f"no SHAM for {backbone} at this input size: {error}") from error
    scale = max(1, 192 // max(height, width))
    picture = np.kron(mask.numpy(), np.ones((scale, scale)))
    picture = np.pad(picture, 1, constant_values=0.5)  # a thin frame shows where the map ends
    entropy = float(cam_entropy_nats(mask[None].double())[0])
    caption = (f"SHAM at {backbone}'s {height}×{width} layer (white = where the fooled CAM is "
               f"pushed): {int(mask.sum())} of {height * width} cells on, entropy {entropy:.2f} "
               "nats")
    return (picture * 255).astype(np.uint8), caption


@dataclass(frozen=True)
class TrainRequest:
    """A run as the tab or the ``/train`` API asks for it (the field order is the API's
    parameter order; every field has the tab's start value): built once, then turned into the
    command line's ``TrainConfig`` by ``training_config``."""

    name: str = START.name
    backbone: str = START.backbone
    init: str = START.init
    loss: str = START.loss
    cam: str = START.cam
    source: str = START_SOURCE
    folder: str | None = None
    salience: str | None = None
    upload: str | None = None
    steps: float = START.steps
    batch: float = START.batch
    size: float | None = None
    lr: float = START.lr
    seed: float = START.seed
    resume: bool = False


def training_config(request: TrainRequest) -> tuple[TrainConfig, Path | None]:
    """A run's config from the tab's request, and the folder an uploaded zip was unpacked into
    (None without one; the run's job removes it when the run ends). The zip is unpacked only
    once the rest of the request is checked and its name is free: a refused run unpacks
    nothing."""
    name = (request.name or "").strip()
    if not name:
        raise UserInputError("the checkpoint has no name", Fix("name"))
    data = DATA_SOURCES.get(request.source, request.source)
    if data not in DATA_SOURCES.values():
        raise UserInputError(f"unknown data {request.source!r}",
                             Fix("data", "one of the tab's data options"))
    init = request.init or CLEAN_WEIGHTS
    if init not in {value for _, value in init_choices(request.backbone)}:
        raise UserInputError(f"{init!r} is no starting point for {request.backbone}",
                             Fix("init", "clean, random or a registry checkpoint of "
                                         f"{request.backbone}"))
    salience = str(ACCESS.folder(request.salience, "salience folder")) if request.salience else None
    if data == "folder":
        data = str(ACCESS.folder(request.folder, "server folder of the dataset (ImageFolder "
                                                 "layout)"))
    elif data == "zip" and not request.upload:
        raise UserInputError("no dataset zip uploaded", Fix("data", "upload the zip first"))
    config = TrainConfig(name=name, backbone=request.backbone, init=init, loss=request.loss,
                         cam=request.cam, data=data, salience=salience,
                         steps=ACCESS.steps(number(request.steps, "steps", 1, 10**7, True)),
                         batch=number(request.batch, "batch", 1, 4096, True),
                         size=number(request.size, "size", 0, 4096, True) or None,
                         lr=number(request.lr, "lr", 0, 100),
                         seed=number(request.seed, "seed", 0, 2**32 - 1, True, default=0),
                         command=f"app Fine-tune tab: {name}")
    ACCESS.training_shape(config.batch, config.size)
    if data != "zip":
        return config, None
    check_start(config, bool(request.resume))
    scratch = Path(tempfile.mkdtemp(prefix="cams-data-"))
    try:
        images, found = unpack_dataset_zip(request.upload, scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return dataclasses.replace(config, data=str(images),
                               salience=str(found) if found else None), scratch


NATS = "cam_entropy_nats"  # the one metric not on a 0–1 scale: its own axis


def loss_figure(losses: list[tuple[int, float]]) -> Figure:
    """The training loss over the steps (matplotlib, no pyplot state: concurrent requests cannot
    draw into each other's figures; ``tight_layout`` keeps the axis labels inside)."""
    figure = Figure(figsize=(5.2, 2.7), dpi=100)
    axes = figure.add_subplot()
    if losses:
        axes.plot(*zip(*losses), linewidth=1.2, color="#1f77b4")
    axes.set_xlabel("step")
    axes.set_ylabel("training loss")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def validation_figure(validations: list[dict[str, float]]) -> Figure:
    """The validation metrics over the steps: the 0–1 ones on the left axis (fixed 0–1), the
    CAM entropy (nats) on its own right axis."""
    figure = Figure(figsize=(5.2, 2.7), dpi=100)
    axes = figure.add_subplot()
    lines = []
    for key in METRIC_NAMES:
        points = [(v["step"], v[key]) for v in validations if key in v]
        if points and key != NATS:
            lines += axes.plot(*zip(*points), marker="o", markersize=3, label=key)
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("step")
    axes.set_ylabel("0–1 metrics")
    axes.grid(alpha=0.3)
    entropy = [(v["step"], v[NATS]) for v in validations if NATS in v]
    if entropy:
        right = axes.twinx()
        lines += right.plot(*zip(*entropy), marker="s", markersize=3, color="0.35",
                            linestyle="--", label="CAM entropy (nats, right)")
        right.set_ylabel("nats")
    if lines:
        axes.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="best")
    figure.tight_layout()
    return figure


def curves(events: list[dict]) -> tuple[list[tuple[int, float]], list[dict[str, float]]]:
    """(step, loss) pairs and validations from a job's events; a resumed run's first event
    carries the history saved with its state."""
    losses: list[tuple[int, float]] = []
    validations: list[dict[str, float]] = []
    for event in events:
        if event.get("resumed"):
            losses += [(int(step), float(loss)) for step, loss in event.get("losses", [])]
            validations += event.get("history", [])
        else:
            if "loss" in event:
                losses.append((int(event["step"]), float(event["loss"])))
            if "validation" in event:
                validations.append(event["validation"])
    return losses, validations


def report(job: TrainingJob | None) -> tuple[str, Figure, Figure]:
    """Status line, the loss curve and the validation curves."""
    if job is None:
        return "No run yet.", loss_figure([]), validation_figure([])
    events = list(job.events)
    losses, validations = curves(events)
    last = events[-1] if events else {}
    done, total = last.get("step", 0), last.get("steps", job.config.steps)
    if job.result is not None:
        final = job.result.metadata.get("metrics", {})
        shown = ", ".join(f"{key} {final[key]:.3f}" for key in METRIC_NAMES if key in final)
        status = (f"**Done**: `{job.result.name}` saved ({shown}). Pick it as checkpoint B in the "
                  "Compare tab.")
    elif job.error:
        status = f"**Stopped** at step {done}: {job.error}"
    else:
        status = f"**Training** `{job.config.name}`: step {done} of {total}" + (
            f", loss {last['loss']:.4f} · {time_left(events, total)}" if "loss" in last
            else " (validating the start)")
    return status, loss_figure(losses), validation_figure(validations)


def time_left(events: list[dict], total: int) -> str:
    """The run's time left, at the rate of its steps so far in this job (the rate starts at its
    first step: loading the data and validating the start are not steps)."""
    steps = [event for event in events if "loss" in event and "time" in event]
    if not steps:
        return left_text(None)
    remaining = Remaining()
    remaining.seconds(steps[0]["step"] / total, now=steps[0]["time"])
    return remaining.text(steps[-1]["step"] / total, now=steps[-1]["time"])
