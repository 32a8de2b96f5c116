"""Coverage (beyond the papers): does DiffGradCAM's resistance appear when the SHAM attack covers
more classes per image? The paper's SHAM fine-tune, in the form the pilots chose
(``fooling.config`` preset ``sham-adam``; ``--coverage-preset`` names another), attacking k
classes per image — the image's own and k − 1 others drawn each step, k = 1 … every class —
with several seeds; each training run is a unit.

Per run it records the head's change (the norm of the classifier's mean row, which a
class-uniform manipulation grows) and, on the images, what the susceptibility table records
(every method's MSE between the clean and the fooled maps, agreement, GradCAM's distance to the
SHAM, the common-mode share); the clean model's maps are computed once for all runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from cam_studio.data.distributed import current
from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.records import read_rows
from cam_studio.evaluation.rows import key
from cam_studio.evaluation.statistics import mean_std, unit_means
from cam_studio.evaluation.summaries import interval_cell, paired, unit_of, write_table
from cam_studio.evaluation.tables.susceptibility import (
    SECONDS_PER_IMAGE,
    SusceptibilityRow,
    pair_work,
)
from cam_studio.evaluation.work import Load, Progress, Section, Table, Work, image_count
from cams.backbones import CLEAN_WEIGHTS, DEFAULT_BACKBONE
from cams.methods import METHODS
from fooling.config import preset
from fooling.train import train

SECONDS_PER_STEP = 1.0  # a full-network Lite0 step at 224 px, batch 16, on the 2-core CPU
# ScoreCAM's masked passes dominate the measurement: about 12 s per image and model here.
SCORECAM_SECONDS_PER_IMAGE = 12.0


def run_label(classes: int, seed: int) -> str:
    return f"coverage-k{classes or 'all'}-seed{seed}"


@dataclass(frozen=True)
class CoverageRow:
    table: ClassVar[str] = "coverage"
    classes: int = key(0)
    seed: int = key(0)
    checkpoint: str = ""
    steps: int = 0
    lr: float = 0.0
    preset: str = ""
    train_seconds: float = 0.0
    validation_agreement: float = 0.0
    validation_sham_mse: float = 0.0
    mean_row_clean: float = 0.0
    mean_row_fooled: float = 0.0
    mean_row_change: float = 0.0
    class_row_change: float = 0.0


def head_change(clean: torch.Tensor, fooled: torch.Tensor) -> dict[str, float]:
    """The classifier's C×K weights before and after: the norm of the mean row before and after,
    the norm of the mean row's change, and the mean norm of a class row's change."""
    change = fooled - clean
    return {"mean_row_clean": float(clean.mean(0).norm()),
            "mean_row_fooled": float(fooled.mean(0).norm()),
            "mean_row_change": float(change.mean(0).norm()),
            "class_row_change": float(change.norm(dim=1).mean())}


def runs(config: EvaluationConfig) -> list[tuple[int, int]]:
    # seed-major: an interrupted table has the same number of runs for every k
    return [(classes, seed) for seed in range(config.coverage_seeds)
            for classes in config.coverage_classes]


def work(config: EvaluationConfig, load: Load) -> Iterator[Work]:
    folder = config.out / "coverage-checkpoints"
    jobs = runs(config)
    clean_maps: dict = {}  # the clean model's maps of each batch, for every run
    for index, (classes, seed) in enumerate(jobs):
        if not current().owns(index):  # under torchrun the runs are shared out whole
            continue
        name = run_label(classes, seed)

        def trained(progress: Progress, classes=classes, seed=seed, name=name) -> list:
            entry = train(preset(
                config.coverage_preset, name=name, attack_classes=classes, seed=seed,
                steps=config.coverage_steps, half=False,
                val_every=config.coverage_steps, val_size=64, directory=str(folder),
                device=config.device, command="python -m cam_studio evaluate (coverage table)"),
                distributed=False)
            clean = load(DEFAULT_BACKBONE).classifier_weight().detach().cpu()
            fooled = load(None, entry.weights_path).classifier_weight().detach().cpu()
            final = entry.metadata["metrics"]
            return [CoverageRow(classes, seed, name, config.coverage_steps,
                                entry.metadata["recipe"]["lr"], config.coverage_preset,
                                entry.metadata["train_seconds"], final["agreement"],
                                final["salience_mse"], **head_change(clean, fooled))]

        yield Work(CoverageRow, (str(classes), str(seed)), "coverage runs", once=trained,
                   position=(index + 1, len(jobs)))
        yield pair_work(config, load, CLEAN_WEIGHTS, str(folder / f"{name}.safetensors"),
                        fooled_label=name, clean_maps=clean_maps)


def per_run(rows: list[SusceptibilityRow], method: str, value: str) -> dict[str, float]:
    """Per coverage run (its label), the mean over photos of ``value`` of ``method``'s rows."""
    groups: dict[str, tuple[list[float], list[str]]] = {}
    for row in rows:
        if row.method == method:
            values, units = groups.setdefault(row.fooled, ([], []))
            values.append(float(getattr(row, value)))
            units.append(unit_of(row.image))
    return {run: mean_std(list(unit_means(*pair).values()))[0] for run, pair in groups.items()}


def section(out: Path, rows: list[CoverageRow]) -> str:
    measured = [row for row in read_rows(out / "records", SusceptibilityRow)
                if row.fooled.startswith("coverage-")]
    ks = list(dict.fromkeys(row.classes for row in rows))
    label = {k: "every class" if k == 0 else str(k) for k in ks}
    runs_of = {k: [row.checkpoint for row in rows if row.classes == k] for k in ks}
    agree = per_run(measured, "GradCAM", "agree")
    sham_clean = per_run(measured, "GradCAM", "gradcam_sham_mse_clean")
    sham_fooled = per_run(measured, "GradCAM", "gradcam_sham_mse_fooled")
    share = per_run(measured, "GradCAM", "common_mode_share")
    growth = {row.checkpoint: row.mean_row_fooled / row.mean_row_clean for row in rows}
    uniform = {row.checkpoint: row.mean_row_change / row.class_row_change for row in rows}

    def across(values: dict[str, float], k: int, digits: str = ".3f") -> str:
        return interval_cell({run: values[run] for run in runs_of[k] if run in values}, digits)

    overview = [[label[k], str(len(runs_of[k])), across(agree, k),
                 across({run: sham_fooled[run] / sham_clean[run] for run in sham_clean}, k),
                 across(growth, k, ".2f"), across(uniform, k), across(share, k)] for k in ks]
    methods = [name for name in METHODS if name in {row.method for row in measured}]
    moved = {method: per_run(measured, method, "mse") for method in methods}
    by_method = [[method, *(across(moved[method], k, ".2e") for k in ks)] for method in methods]
    contrasts = [(name, baseline) for name, baseline in (("MeanDiffGradCAM", "GradCAM"),
                                                         ("MeanDiffGradCAM++", "GradCAM++"))
                 if name in moved and baseline in moved]
    versus = [[label[k], *(paired({run: moved[name][run] for run in runs_of[k]},
                                  {run: moved[baseline][run] for run in runs_of[k]})
                           for name, baseline in contrasts)] for k in ks]
    steps = sorted({(row.preset, row.steps, row.lr) for row in rows})
    images = len({row.image for row in measured})
    return "\n".join([
        f"Runs of {', '.join(f'preset {p}, {s} steps at lr {lr}' for p, s, lr in steps)}; "
        f"each measured on "
        f"{images} images; each run is a unit (mean over its photos), the intervals are 95 % t "
        "intervals over the runs of a k.", "",
        write_table(out, "coverage", [
            "classes attacked per image", "runs", "top-1 agreement [95 %]",
            "GradCAM MSE to SHAM, fooled / clean [95 %]", "mean row norm, fooled / clean [95 %]",
            "head change: mean-row share ‖mean ΔW‖ / mean ‖ΔW_c‖ [95 %]",
            "common-mode share [95 %]"], overview),
        "How far each method moved (MSE between the clean and the fooled maps; per run the "
        "mean over photos, then the mean over runs [95 % t]):", "",
        write_table(out, "coverage_methods", ["method", *(label[k] for k in ks)], by_method),
        "MeanDiffGradCAM − GradCAM and MeanDiffGradCAM++ − GradCAM++, paired over the runs of "
        "each k (negative = the DiffGradCAM moved less; with three runs the signed-rank p cannot "
        "go below 0.25, so read the t interval):", "",
        write_table(out, "coverage_versus_gradcam", ["classes attacked per image",
                                                     *(f"{a} − {b}" for a, b in contrasts)],
                    versus)])


def seconds(config: EvaluationConfig) -> float:
    count = len(runs(config))
    scorecam = (config.methods is None or "ScoreCAM" in config.methods)
    per_image = SECONDS_PER_IMAGE + (SCORECAM_SECONDS_PER_IMAGE if scorecam else 0)
    return count * (config.coverage_steps * SECONDS_PER_STEP + per_image * image_count(config))


TABLE = Table(
    "coverage", "beyond the papers (the paper's attack, k classes per image)", (CoverageRow,),
    work,
    Section("Coverage: does DiffGradCAM resist when the attack covers more classes?",
            "The paper's SHAM fine-tune of EfficientNet-Lite0 (the whole network, the SHAM MSE "
            "of GradCAM plus a classification term) attacking k classes per image: the GradCAMs "
            "of the image's own class and of k − 1 others drawn each step are pulled onto the "
            "SHAM while the predictions are kept. Its deviations from the paper, the same for "
            "every k, were chosen on the validation photos (docs/results/coverage-pilots) and "
            "are the preset's (fooling/config.py, sham-adam): KL to the clean model, not "
            "cross-entropy to its top-1 (which lost the predictions in every pilot); Adam at "
            "1e-4, not SGD at 0.002 (whose few hundred steps here hardly move the classifier's "
            "mean row, where the class-uniform change lives; the paper's one ImageNet epoch is "
            "some 80,000 steps); β = 2 and a pooled-feature term; crops of 59 photos, not "
            "labelled ImageNet. Resistance is what the DiffGradCAM paper claims (RQ3); the "
            "common-mode share says why it appears or not.", section),
    seconds, opt_in=True, trains=True)
