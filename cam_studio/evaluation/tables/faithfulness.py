"""Faithfulness (beyond the papers' tables): deletion and insertion AUC (``faithfulness``) and
ROAD, remove and debias (``road``), of every compared map on each backbone's clean model and on
every fooled checkpoint of ``--pairs``; each method against GradCAM on the same model, paired over
units. Across models these compare two models, not two maps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from torch import Tensor

from cam_studio.data.sources import Sample
from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.rows import key
from cam_studio.evaluation.summaries import (
    equivalent,
    format_mean_std,
    grouped,
    interval_cell,
    paired,
    per_unit,
    units_text,
    write_table,
)
from cam_studio.evaluation.work import Load, Section, Table, Work, chosen, image_count, inputs_of
from cams.backbones import Backbone
from cams.engine import Explanation, explain
from cams.faithfulness import (
    BLUR_SIGMA,
    FAITHFULNESS_STEPS,
    ROAD_QUICK_PERCENTILES,
    faithfulness_curves,
    road,
)
from cams.methods import METHODS as METHOD_TABLE

# 16 forward passes of 2 images per map and one of its image and baseline (ROAD: 6
# imputations), so ScoreCAM (itself thousands) is left out.
METHODS = tuple(name for name, method in METHOD_TABLE.items() if method.compared and method.default)
# How close two methods' faithfulness must be to call them equivalent (paired TOST): AUCs and
# ROAD scores are probabilities (changes) in [0, 1].
EQUIVALENCE_MARGIN = 0.01
# Seconds per image and model, 10 maps, Lite0 on the 2-core CPU.
SECONDS_PER_IMAGE = {"faithfulness": 2.5, "road": 6.0}


@dataclass(frozen=True)
class FaithfulnessRow:
    table: ClassVar[str] = "faithfulness"
    model: str = key()
    image: str = key()
    method: str = ""
    deletion_auc: float = 0.0
    insertion_auc: float = 0.0


@dataclass(frozen=True)
class RoadRow:
    table: ClassVar[str] = "road"
    model: str = key()
    image: str = key()
    method: str = ""
    morf: float = 0.0
    lerf: float = 0.0
    combined: float = 0.0


Score = Callable[[EvaluationConfig, Backbone, Explanation, str], dict[str, Tensor]]


def deletion_insertion(config: EvaluationConfig, backbone: Backbone, result: Explanation,
                       name: str) -> dict[str, Tensor]:
    """Deletion and insertion AUC (``cams.faithfulness.faithfulness_curves``, blurred baseline)."""
    curves = faithfulness_curves(backbone.model, result.inputs, result.maps[name], result.targets)
    return {"deletion_auc": curves.deletion_auc, "insertion_auc": curves.insertion_auc}


def road_columns(config: EvaluationConfig, backbone: Backbone, result: Explanation,
                 name: str) -> dict[str, Tensor]:
    """ROAD MoRF, LeRF and combined, each the mean over ``ROAD_QUICK_PERCENTILES``."""
    scores = road(backbone.model, result.inputs, result.maps[name], result.targets,
                  noise=config.road_noise)
    return {"morf": scores.morf.mean(dim=1), "lerf": scores.lerf.mean(dim=1),
            "combined": scores.combined}


def models(config: EvaluationConfig, load: Load) -> Iterator[tuple[str, Backbone]]:
    """(label, model): each backbone's clean model, then every fooled checkpoint of the pairs
    (does fooling cost faithfulness?)."""
    for name in config.backbones:
        yield name, load(name)
    for fooled in dict.fromkeys(fooled for _, fooled in config.pairs):
        yield fooled, load(None, fooled)


def per_map_work(row_type: type, score: Score):
    """A faithfulness table's work: per model, batch and method, ``score``'s columns."""
    def work(config: EvaluationConfig, load: Load) -> Iterator[Work]:
        for label, backbone in models(config, load):
            methods = chosen(config, METHODS, backbone)

            def rows(batch: list[Sample], backbone=backbone, methods=methods,
                     label=label) -> list[Any]:
                result = explain(backbone, inputs_of(backbone, batch), methods)
                made = []
                for name in methods:
                    columns = {column: values.tolist()
                               for column, values in score(config, backbone, result,
                                                           name).items()}
                    made += [row_type(label, sample.id, name,
                                      **{column: values[index] for column, values in
                                         columns.items()}) for index, sample in enumerate(batch)]
                return made

            yield Work(row_type, (label,), f"{row_type.table} {label}", rows)
    return work


def versus_gradcam(out: Path, rows: list[Any], table_name: str, column: str,
                   label: str, explanation: str) -> str:
    """One faithfulness measure per model and method, mean ± std over images, and each method
    against GradCAM on the same model, paired over units."""
    models_ = list(dict.fromkeys(row.model for row in rows))
    methods = list(dict.fromkeys(row.method for row in rows))
    values = grouped(rows, "model", "method", value=column)
    units = per_unit(rows, "model", "method", value=column)
    table = []
    for model in models_:
        for method in methods:
            if (model, method) not in values:
                continue
            against = (model, "GradCAM")
            versus = ([paired(units[(model, method)], units[against]),
                       equivalent(units[(model, method)], units[against], EQUIVALENCE_MARGIN)]
                      if method != "GradCAM" and against in units else ["—", "—"])
            table.append([model, method, format_mean_std(values[(model, method)], ".3f"),
                          interval_cell(units[(model, method)], ".3f"), *versus])
    return "\n".join([f"{explanation}: mean ± std over images, the mean over units with its 95 % t "
                      "interval, and each method − GradCAM on the same model paired over units "
                      "(the difference [95 % t], signed-rank p, Holm p over this table; and TOST "
                      f"p that the difference lies within ±{EQUIVALENCE_MARGIN:g}: small = "
                      "equivalent):", "",
                      write_table(out, table_name, ["model", "method", label, "over units [95 %]",
                                                    "− GradCAM", "− GradCAM"], table)])


def faithfulness_section(out: Path, rows: list[FaithfulnessRow]) -> str:
    """Deletion and insertion AUC per model and method (``versus_gradcam``)."""
    text = [f"{units_text(rows)}; pixels replaced by a Gaussian blur of the image "
            f"(σ = {BLUR_SIGMA:g} of its side) in {FAITHFULNESS_STEPS} steps, most relevant "
            "first. Deletion AUC: lower = more faithful; insertion AUC: higher = more faithful.",
            ""]
    for curve in ("deletion", "insertion"):
        text.append(versus_gradcam(out, rows, f"faithfulness_{curve}", f"{curve}_auc",
                                   f"{curve} AUC", f"{curve.capitalize()} AUC"))
    return "\n".join(text)


def road_section(out: Path, rows: list[RoadRow]) -> str:
    """ROAD MoRF, LeRF and combined per model and method (``versus_gradcam``)."""
    percentiles = ", ".join(map(str, ROAD_QUICK_PERCENTILES))
    text = [f"{units_text(rows)}; the pixels at or above the map's {percentiles}th percentile "
            "(MoRF), or at or below the (100 − q)th (LeRF), filled by ROAD's noisy linear "
            "imputation (noise 0.01, seed 0); each value is the change of the explained class's "
            "probability, averaged over the percentiles. MoRF: lower = more faithful; LeRF: "
            "higher = more faithful; combined = mean (LeRF − MoRF) / 2 (pytorch-grad-cam's "
            "ROADCombined): higher = more faithful.", ""]
    for column, label in (("combined", "ROAD combined"), ("morf", "ROAD MoRF"),
                          ("lerf", "ROAD LeRF")):
        text.append(versus_gradcam(out, rows, f"road_{column}", column, label, label))
    return "\n".join(text)


def seconds(table: str) -> Callable[[EvaluationConfig], float]:
    def estimate(config: EvaluationConfig) -> float:
        count = len(config.backbones) + len(dict.fromkeys(fooled for _, fooled in config.pairs))
        return SECONDS_PER_IMAGE[table] * image_count(config) * count
    return estimate


FAITHFULNESS = Table(
    "faithfulness", "beyond the papers' tables (the DiffGradCAM paper names deletion/insertion "
    "as the common test)", (FaithfulnessRow,), per_map_work(FaithfulnessRow, deletion_insertion),
    Section("Faithfulness: deletion and insertion (beyond the papers' tables)",
            "How fast the explained class's probability falls as the pixels each map ranks most "
            "relevant are removed (deletion), and rises as they are revealed on the blurred "
            "image (insertion); on every backbone's clean model and on every fooled checkpoint "
            "of --pairs.", faithfulness_section),
    seconds("faithfulness"), opt_in=True)
ROAD = Table(
    "road", "beyond the papers (pytorch-grad-cam's ROADMostRelevantFirst / "
    "ROADLeastRelevantFirst / ROADCombined)", (RoadRow,), per_map_work(RoadRow, road_columns),
    Section("Faithfulness: ROAD, remove and debias (beyond the papers' tables)",
            "ROAD (Rong et al. 2022) removes pixels by imputing them from their neighbours, so "
            "the removal itself leaks less of the map's shape than a blur; on the same models "
            "and images as the deletion and insertion table.", road_section),
    seconds("road"), opt_in=True)
