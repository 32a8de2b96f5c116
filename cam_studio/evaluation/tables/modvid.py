"""Explanations under FGSM attack (Generalizing Adversarial Explanations with Grad-CAM): NISSIM
between each method's map of an image and of its FGSM-attacked copy (both explaining the clean
prediction), MOD and VID over the images, and whether the attack changed the prediction."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cam_studio.data.sources import Sample
from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.rows import key
from cam_studio.evaluation.statistics import mod_vid
from cam_studio.evaluation.summaries import grouped, write_table
from cam_studio.evaluation.work import Load, Section, Table, Work, chosen, inputs_of, per_backbone_seconds
from cams.engine import explain
from cams.methods import DEFAULT_METHODS
from cams.metrics import nissim
from fooling.attacks import fgsm

SECONDS_PER_IMAGE = 0.3  # two panels and one input gradient, Lite0 on the 2-core CPU


@dataclass(frozen=True)
class ModVidRow:
    table: ClassVar[str] = "modvid"
    backbone: str = key()
    epsilon: str = key()
    image: str = key()
    method: str = ""
    nissim: float = 0.0
    attack_success: int = 0


def work(config: EvaluationConfig, load: Load) -> Iterator[Work]:
    epsilon = f"{config.epsilon:.6g}"
    for name in config.backbones:
        backbone = load(name)
        methods = chosen(config, DEFAULT_METHODS, backbone)

        def rows(batch: list[Sample], backbone=backbone, methods=methods) -> list[ModVidRow]:
            inputs = inputs_of(backbone, batch)
            clean = explain(backbone, inputs, methods)
            attacked_inputs = fgsm(backbone, inputs, clean.targets, config.epsilon)
            # Both maps explain the clean prediction: a change is the explanation's, not the class's.
            attacked = explain(backbone, attacked_inputs, methods, clean.targets,
                               clean.false_classes)
            success = (attacked.logits.argmax(1) != clean.targets).tolist()
            return [ModVidRow(backbone.name, epsilon, sample.id, name, value, int(flipped))
                    for name in methods
                    for sample, value, flipped in zip(
                        batch, nissim(clean.maps[name], attacked.maps[name]).tolist(), success)]

        yield Work(ModVidRow, (backbone.name, epsilon), f"MOD/VID {backbone.name}", rows)


def section(out: Path, rows: list[ModVidRow]) -> str:
    text = []
    for backbone, epsilon in dict.fromkeys((row.backbone, row.epsilon) for row in rows):
        mine = [row for row in rows if (row.backbone, row.epsilon) == (backbone, epsilon)]
        values = grouped(mine, "method", value="nissim")
        first = [row for row in mine if row.method == mine[0].method]
        success = sum(row.attack_success for row in first) / len(first)
        summaries = sorted(((method, mod_vid(nissims)) for (method,), nissims in values.items()),
                           key=lambda item: item[1].mod)
        table = [[method, f"{summary.mod:.4f}", f"{summary.vid:.2e}", f"{summary.vid_std:.4f}"]
                 for method, summary in summaries]
        text += [f"### {backbone}, ε = {float(epsilon) * 255:.3g}/255 ({len(first)} images; the "
                 f"attack changed the prediction of {success:.1%})", "",
                 write_table(out, f"modvid_{backbone}", ["method", "MOD", "VID", "VID std"],
                             table)]
    return "\n".join(text)


TABLE = Table(
    "modvid", "Generalizing Adversarial Explanations", (ModVidRow,), work,
    Section("Explanations under FGSM attack: MOD / VID (Generalizing Adversarial Explanations)",
            "NISSIM = (1 − SSIM)/2 between each method's map of the clean and of the "
            "FGSM-attacked image (both explaining the clean prediction); MOD = its mean, VID = "
            "its variance (std beside it). Higher = the explanation moves more under attack.",
            section),
    seconds=lambda config: per_backbone_seconds(config, SECONDS_PER_IMAGE),
    needs="backbones")
