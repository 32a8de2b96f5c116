"""Sanity checks of every map (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"; the random
logit test of Sixt et al. 2020): does a map change when the model's weights are re-drawn, or when
it explains a random other class? A map that stays the same ignores what the model learned.

- **Cascading randomisation**: the pretrained model's blocks re-drawn from the top (the
  classifier) down, one more block per stage (``cams.randomise``); each stage's map of an image
  compared with the pretrained model's map of it, explaining the same class.
- **Independent randomisation**: one block re-drawn at a time, the others pretrained.
- **Random logit**: the pretrained model's map of a random other class (uniform over the other
  classes, seeded per image) against its map of the predicted class.

Each comparison is measured as Spearman's rank correlation (the decision, as Quantus's MPRT and
Adebayo et al. rank maps), SSIM (Quantus's RandomLogit default) and MSE, on the maps as shown
(normalised, at the input's size). The seeds re-draw the weights (or the random class) anew;
per photo the seeds are averaged, and the photo is the unit of every interval and test.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import matplotlib.pyplot as plt
import torch

from cam_studio.data.sources import Sample
from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.rows import key
from cam_studio.evaluation.statistics import below_margin_p, holm
from cam_studio.evaluation.summaries import interval_cell, p_text, per_unit, units_text, write_table
from cam_studio.evaluation.timing import lite0_scale
from cam_studio.evaluation.work import Load, Section, Table, Work, chosen, image_count, inputs_of
from cams.backbones import Backbone, randomisable_blocks
from cams.engine import Explanation, explain
from cams.errors import UserInputError
from cams.methods import MANY_PASS_KINDS
from cams.methods import METHODS as METHOD_TABLE
from cams.metrics import mse, spearman, ssim
from cams.randomise import CASCADING, INDEPENDENT, block_names

RANDOM_LOGIT = "random-logit"
TYPICAL_BLOCKS = 12
# Every map but the many-pass ones (ScoreCAM one pass per distinct channel, IS-CAM ten, SS-CAM 35
# per channel, SESS one per patch: ~12 s, ~2 min, minutes and ~6 s per image and model for Lite0
# on the 2-core CPU, at each of ~25 models per seed); --methods adds them.
DEFAULT_METHODS = tuple(name for name, method in METHOD_TABLE.items()
                        if method.kind not in MANY_PASS_KINDS)
# The declared margin: a map passes a test when its mean similarity to the trained map is
# significantly below this (one-sided t test over photos, Holm over the table's tests).
MARGIN = 0.5
DECISIONS = {CASCADING: "spearman", INDEPENDENT: "spearman", RANDOM_LOGIT: "ssim"}
SECONDS_PER_IMAGE_AND_MODEL = 0.48  # one panel of the default methods (27 maps: SmoothGradCAM++
# four noisy copies, RefineCAM a graph below the layer), Lite0 on the 2-core CPU: 9 min 7 s for 3
# seeds on the 15 test photos, 2026-12-02


@dataclass(frozen=True)
class SanityRow:
    table: ClassVar[str] = "sanity"
    backbone: str = key()
    seed: int = key(0)
    image: str = key()
    test: str = ""
    block: str = ""  # the stage's block (cascading: re-drawn down to it); "" for random logit
    method: str = ""
    explained: int = 0  # the class both maps explain (random logit: the random class)
    spearman: float = 0.0
    ssim: float = 0.0
    mse: float = 0.0


def random_classes(images: list[str], targets: torch.Tensor, classes: int, seed: int) -> torch.Tensor:
    """Per image, a class other than its target, uniform and fixed by (seed, image id): the same
    on every run, whatever the batch."""
    picked = []
    for image, target in zip(images, targets.tolist()):
        generator = torch.Generator().manual_seed(zlib.crc32(f"{seed}/{image}".encode()))
        other = int(torch.randint(classes - 1, (1,), generator=generator))
        picked.append(other + (other >= target))
    return torch.tensor(picked, device=targets.device)


def stages(backbone: Backbone) -> list[tuple[str, str]]:
    """The randomised models of one seed, as (test, block): the cascade from the top block down,
    then each block alone."""
    names = block_names(backbone.model)
    return [(CASCADING, name) for name in names] + [(INDEPENDENT, name) for name in names]


def compared(backbone: Backbone, seed: int, batch: list[Sample], test: str, block: str,
             reference: Explanation, changed: Explanation, classes: torch.Tensor) -> list[SanityRow]:
    """One row per image and method: the changed maps against the reference ones."""
    return [SanityRow(backbone.name, seed, sample.id, test, block, name, explained, *values)
            for name in reference.maps
            for sample, explained, *values in zip(
                batch, classes.tolist(),
                spearman(reference.maps[name], changed.maps[name]).tolist(),
                ssim(reference.maps[name], changed.maps[name]).tolist(),
                mse(reference.maps[name], changed.maps[name]).tolist())]


def sanity_rows(backbone: Backbone, methods: list[str], seed: int,
                batch: list[Sample]) -> list[SanityRow]:
    """Every check of one seed on one batch: the trained model's maps once, then each randomised
    model's (re-drawn per batch: one model in memory at a time) and the random class's."""
    clean = explain(backbone, inputs_of(backbone, batch), methods)
    rows = []
    for test, block in stages(backbone):
        randomised = backbone.randomised(block, test, seed)
        changed = explain(randomised, clean.inputs, methods, clean.targets, clean.false_classes)
        rows += compared(backbone, seed, batch, test, block, clean, changed, clean.targets)
    other = random_classes([sample.id for sample in batch], clean.targets, backbone.num_classes,
                           seed)
    changed = explain(backbone, clean.inputs, methods, other)
    return rows + compared(backbone, seed, batch, RANDOM_LOGIT, "", clean, changed, other)


def work(config: EvaluationConfig, load: Load) -> Iterator[Work]:
    for name in config.backbones:
        backbone = load(name)
        methods = chosen(config, DEFAULT_METHODS if config.methods is None else tuple(METHOD_TABLE),
                         backbone)
        for seed in range(config.sanity_seeds):
            yield Work(SanityRow, (backbone.name, str(seed)),
                       f"sanity {backbone.name}, seed {seed}",
                       lambda batch, backbone=backbone, methods=methods, seed=seed:
                       sanity_rows(backbone, methods, seed, batch))


def _units(rows: list[SanityRow], value: str) -> dict[tuple, dict[str, float]]:
    """Per (backbone, test, block, method), the mean of ``value`` per photo over its seeds (and
    crops), the undefined values (a constant map has no ranks) left out."""
    defined = [row for row in rows if not math.isnan(getattr(row, value))]
    return per_unit(defined, "backbone", "test", "block", "method", value=value)


def _curve_plot(path: Path, title: str, stages: list[str],
                curves: dict[str, list[float]]) -> None:
    figure, axis = plt.subplots(figsize=(11, 4.5), layout="constrained")
    for index, (method, values) in enumerate(curves.items()):  # 10 colours, then dashed
        axis.plot(range(len(stages)), values, marker="o", markersize=3, label=method,
                  linestyle="-" if index < 10 else "--")
    axis.set_xticks(range(len(stages)), stages, rotation=40, ha="right")
    axis.axhline(MARGIN, color="grey", linestyle="--", linewidth=1)
    axis.set_ylim(-0.3, 1.05)
    axis.set_ylabel("Spearman ρ to the trained map")
    axis.set_title(title)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def section(out: Path, rows: list[SanityRow]) -> str:
    text = []
    for backbone in dict.fromkeys(row.backbone for row in rows):
        mine = [row for row in rows if row.backbone == backbone]
        methods = list(dict.fromkeys(row.method for row in mine))
        seeds = sorted({row.seed for row in mine})
        units = {value: _units(mine, value) for value in ("spearman", "ssim")}
        undefined = sum(math.isnan(row.spearman) for row in mine)
        text += [f"### {backbone} ({units_text(mine)}, {len(seeds)} seed{'s' * (len(seeds) != 1)}; "
                 "the photo the unit, its seeds averaged)", ""]
        # The curves: Spearman per stage, cascading (top first) and independent.
        for test in (CASCADING, INDEPENDENT):
            stages = list(dict.fromkeys(row.block for row in mine if row.test == test))
            if not stages:
                continue
            table, curves = [], {}
            for method in methods:
                cells = [units["spearman"].get((backbone, test, stage, method), {})
                         for stage in stages]
                table.append([method, *(interval_cell(cell, ".2f") if cell else "—"
                                        for cell in cells)])
                curves[method] = [sum(cell.values()) / len(cell) if cell else math.nan
                                  for cell in cells]
            what = ("the blocks re-drawn from the top down to the column's" if test == CASCADING
                    else "the column's block alone re-drawn")
            text += [f"Spearman ρ between the trained model's map and the map with {what} "
                     "(mean over photos [95 % t]; — where every map was constant):", "",
                     write_table(out, f"sanity_{test}_{backbone}", ["method", *stages], table)]
            path = out / f"sanity_{test}_{backbone}.png"
            _curve_plot(path, f"{backbone}: {test} randomisation", stages, curves)
            text.append(f"![{test} randomisation, {backbone}]({path.name})\n")
        # The decisions: each map against the margin, Holm over this backbone's tests.
        decided = []
        cascade = list(dict.fromkeys(row.block for row in mine if row.test == CASCADING))
        checks = [(CASCADING, cascade[0], "top block re-drawn")] if cascade else []
        if len(cascade) > 1:
            checks.append((CASCADING, cascade[-1], "every block re-drawn"))
        if any(row.test == RANDOM_LOGIT for row in mine):
            checks.append((RANDOM_LOGIT, "", "a random class explained"))
        for method in methods:
            for test, block, label in checks:
                value = DECISIONS[test]
                cell = units[value].get((backbone, test, block, method), {})
                if cell:
                    decided.append([method, f"{label} ({block or test})", value, cell,
                                    below_margin_p(list(cell.values()), MARGIN)])
        adjusted = holm([row[-1] for row in decided])
        table = [[method, check, value, interval_cell(cell, ".2f"), p_text(p), p_text(q),
                  "pass" if q < 0.05 else "fail"]
                 for (method, check, value, cell, p), q in zip(decided, adjusted)]
        text += [f"Which maps pass: a map passes a check when its mean similarity to the "
                 f"trained map (Spearman ρ for randomised weights, SSIM for the random logit) "
                 f"is below {MARGIN} — a one-sided t test over photos, Holm-adjusted over the "
                 f"{len(decided)} tests of this table; 'fail' means the data do not show it "
                 "below the margin, not that the map is the same.", "",
                 write_table(out, f"sanity_tests_{backbone}",
                             ["method", "check", "similarity", "mean [95 % t]",
                              f"p (mean < {MARGIN})", "Holm p", "verdict"], table)]
        if undefined:
            text += [f"{undefined} of {len(mine)} comparisons had a constant map (no ranks: "
                     "Spearman undefined) and are left out of the Spearman means.", ""]
    return "\n".join(text)


def block_count(name: str) -> int:
    """How many blocks a backbone's cascade re-draws; for your own model (no name to read the
    architecture from) a typical CNN's 12, for the estimate only."""
    try:
        return len(randomisable_blocks(name))
    except UserInputError:
        return TYPICAL_BLOCKS


def seconds(config: EvaluationConfig) -> float:
    models = sum((config.sanity_seeds * (2 * block_count(name) + 1) + 1) * lite0_scale(name)
                 for name in config.backbones)
    return SECONDS_PER_IMAGE_AND_MODEL * image_count(config) * models


TABLE = Table(
    "sanity", "Adebayo et al. 2018 (MPRT); Sixt et al. 2020 (random logit)", (SanityRow,), work,
    Section("Sanity checks: model-parameter randomisation and the random logit",
            "Does each map change when the model's weights are re-drawn (cascading from the top "
            "block down, or one block alone), or when it explains a random other class? A map "
            "that stays close to the trained model's map ignores what the model learned.",
            section),
    seconds=seconds, opt_in=True, needs="backbones")
