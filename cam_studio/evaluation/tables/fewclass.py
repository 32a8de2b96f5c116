"""Few classes (DiffGradCAM paper, RQ1 and Table 2): models trained from random weights on a
seven-class task, as the paper's Iris PAD runs were — cross-entropy plus the MSE of the CAM to a
salience map — once with the task's true salience and once with the SHAM, several seeds each.
Does the SHAM keep accuracy (balanced accuracy per regime)? And how far does each CAM move
between the two regimes of one seed (the same initial weights and data order), Mean vs Max vs
LSE DiffGradCAM where they no longer coincide (C = 7)?

The task is ``synthetic:7class`` (one class per pattern, the pattern's footprint the true
salience); the backbone ``tiny_resnet``; each seed is a unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from cam_studio.data.distributed import current
from cam_studio.data.items import stack
from cam_studio.data.synthetic import SyntheticDataset
from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.records import read_rows
from cam_studio.evaluation.rows import key
from cam_studio.evaluation.summaries import interval_cell, paired, write_table
from cam_studio.evaluation.tables.coverage import per_run
from cam_studio.evaluation.tables.susceptibility import SusceptibilityRow, pair_work
from cam_studio.evaluation.work import Load, Progress, Section, Table, Work
from cams.backbones import Backbone
from cams.methods import METHODS
from fooling.config import preset
from fooling.train import train

# regime → the objective: the same loss on GradCAM, h = the pattern's footprint or the SHAM
REGIMES = {"human": "guided", "sham": "sham"}
SECONDS_PER_STEP = 0.06  # a tiny_resnet step with its salience term on the 2-core CPU
TEST_IMAGES = 512  # test-split images each run's balanced accuracy is measured on


def run_label(regime: str, seed: int) -> str:
    return f"fewclass-{regime}-seed{seed}"


@dataclass(frozen=True)
class FewClassRow:
    table: ClassVar[str] = "fewclass"
    regime: str = key()
    seed: int = key(0)
    steps: int = 0
    lr: float = 0.0
    train_seconds: float = 0.0
    accuracy: float = 0.0
    balanced_accuracy: float = 0.0
    gradcam_pointing: float = 0.0


def balanced_accuracy(model: Backbone, images: int, batch: int) -> tuple[float, float]:
    """Accuracy and balanced accuracy (the mean per-class recall) on the test split."""
    dataset = SyntheticDataset("7class", "test", 64, seed=1000, length=images)
    predictions, truths = [], []
    for first in range(0, len(dataset), batch):
        inputs, labels, _ = stack(dataset, list(range(first, min(first + batch, len(dataset)))))
        with torch.inference_mode():
            predictions.append(model.model(model.normalise(inputs)).argmax(1).cpu())
        truths.append(labels)
    predicted, truth = torch.cat(predictions), torch.cat(truths)
    recalls = [float((predicted[truth == c] == c).float().mean())
               for c in range(model.num_classes) if bool((truth == c).any())]
    return float((predicted == truth).float().mean()), sum(recalls) / len(recalls)


def work(config: EvaluationConfig, load: Load) -> Iterator[Work]:
    folder = config.out / "fewclass-checkpoints"
    jobs = [(regime, seed) for seed in range(config.fewclass_seeds) for regime in REGIMES]
    images = f"synthetic:7class:{config.fewclass_images}"
    for index, (regime, seed) in enumerate(jobs):
        if not current().owns(index // len(REGIMES)):  # both regimes of a seed in one process
            continue
        name = run_label(regime, seed)

        def trained(progress: Progress, regime=regime, seed=seed, name=name) -> list:
            entry = train(preset(
                "synthetic", name=name, data="synthetic:7class", loss=REGIMES[regime],
                objective="ce", seed=seed, steps=config.fewclass_steps, val_size=64,
                directory=str(folder), device=config.device,
                command="python -m cam_studio evaluate (fewclass table)"), distributed=False)
            model = load("tiny_resnet", entry.weights_path)
            accuracy, balanced = balanced_accuracy(model, TEST_IMAGES, config.batch * 8)
            pointing = entry.metadata["metrics"].get("pointing_game", float("nan"))
            return [FewClassRow(regime, seed, config.fewclass_steps, entry.metadata["recipe"]["lr"],
                                entry.metadata["train_seconds"], accuracy, balanced, pointing)]

        yield Work(FewClassRow, (regime, str(seed)), "few-class runs", once=trained,
                   position=(index + 1, len(jobs)))
        if regime == "sham":  # both regimes of this seed are trained: compare their maps
            human = folder / f"{run_label('human', seed)}.safetensors"
            yield pair_work(config, load, str(human), str(folder / f"{name}.safetensors"),
                            fooled_label=name, clean_label=run_label("human", seed),
                            images=images)


def section(out: Path, rows: list[FewClassRow]) -> str:
    measured = [row for row in read_rows(out / "records", SusceptibilityRow)
                if row.fooled.startswith("fewclass-")]
    seeds = sorted({row.seed for row in rows})
    by = {(row.regime, row.seed): row for row in rows}
    accuracy = [[regime, str(len([s for s in seeds if (regime, s) in by])),
                 interval_cell({str(s): by[(regime, s)].balanced_accuracy for s in seeds
                                if (regime, s) in by}, ".3f"),
                 interval_cell({str(s): by[(regime, s)].accuracy for s in seeds
                                if (regime, s) in by}, ".3f")] for regime in REGIMES]
    both = [s for s in seeds if ("human", s) in by and ("sham", s) in by]
    difference = [["SHAM − human salience", str(len(both)),
                   paired({str(s): by[("sham", s)].balanced_accuracy for s in both},
                          {str(s): by[("human", s)].balanced_accuracy for s in both})]]
    methods = [name for name in METHODS if name in {row.method for row in measured}]
    moved = {method: per_run(measured, method, "mse") for method in methods}
    by_method = [[method, interval_cell(moved[method], ".2e")] for method in methods]
    contrasts = [(other, "MeanDiffGradCAM") for other in ("GradCAM", "MaxDiffGradCAM",
                                                            "LSEDiffGradCAM")]
    contrasts += [(other, "MeanDiffGradCAM++") for other in ("GradCAM++", "MaxDiffGradCAM++",
                                                               "LSEDiffGradCAM++")]
    versus = [[f"{a} − {b}", paired(moved[a], moved[b])] for a, b in contrasts
              if a in moved and b in moved]
    images = len({row.image for row in measured})
    return "\n".join([
        f"{len(seeds)} seeds; each run {rows[0].steps} steps at lr {rows[0].lr} on "
        f"synthetic:7class from random weights; accuracy on {TEST_IMAGES} test images; maps "
        f"compared on {images} test images; each seed is a unit (95 % t intervals).", "",
        write_table(out, "fewclass", ["regime", "runs", "balanced accuracy [95 %]",
                                      "accuracy [95 %]"], accuracy),
        write_table(out, "fewclass_accuracy_difference", ["comparison", "seeds",
                                                          "balanced accuracy difference"],
                    difference),
        "How far each CAM moved between the two regimes of a seed (MSE of the normalised maps of "
        "the same images; mean over seeds [95 % t]):", "",
        write_table(out, "fewclass_methods", ["method", "MSE human vs SHAM regime"], by_method),
        "Mean against Max and LSE (and GradCAM), paired over seeds (negative = the first moved "
        "less):", "",
        write_table(out, "fewclass_contrasts", ["comparison", "MSE difference"], versus)])


def seconds(config: EvaluationConfig) -> float:
    runs = len(REGIMES) * config.fewclass_seeds
    return runs * config.fewclass_steps * SECONDS_PER_STEP + config.fewclass_seeds * 20


TABLE = Table(
    "fewclass", "DiffGradCAM, RQ1 / Table 2 (a seven-class task)", (FewClassRow,), work,
    Section("Few classes: SHAM training from scratch on a seven-class task (DiffGradCAM paper, "
            "RQ1)", "tiny_resnet trained from random weights on synthetic:7class with "
            "cross-entropy plus the MSE of its GradCAM to the task's true salience (the pattern's "
            "footprint) or to the SHAM; the two regimes of one seed share initial weights and "
            "data order.", section),
    seconds, opt_in=True, trains=True)
