"""Similarity to GradCAM / GradCAM++ on clean models (DiffGradCAM paper, Table 3 / RQ2): the MSE
of each DiffGradCAM(++) map (and FinerCAM) to its baseline, per image and backbone."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cam_studio.data.sources import Sample
from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.rows import key
from cam_studio.evaluation.summaries import (
    box_plot,
    format_mean_std,
    grouped,
    p_value,
    paired,
    per_unit,
    units_text,
    write_table,
)
from cam_studio.evaluation.work import Load, Section, Table, Work, chosen, inputs_of, per_backbone_seconds
from cams.engine import explain
from cams.methods import (
    DIFF_BASELINES,
    METHOD_NAMES,
    RETARGETABLE,
    TARGETED_SEPARATOR,
    method_row,
    targeted_name,
)
from cams.metrics import baseline_similarity

# The papers' variants and their baselines, then every other gradient method with the three
# differences as its target ("LayerCAM · MeanDiff" …) beside the method itself.
DIFFERENCES = ("MeanDiff", "MaxDiff", "LSEDiff")
METHODS = (*(name for name in METHOD_NAMES
             if name in DIFF_BASELINES or name in DIFF_BASELINES.values()),
           *(name for method in RETARGETABLE if method not in DIFF_BASELINES.values()
             for name in (method, *(targeted_name(method, target) for target in DIFFERENCES))))
SECONDS_PER_IMAGE = 0.1  # one panel of these methods, Lite0 on the 2-core CPU


@dataclass(frozen=True)
class SimilarityRow:
    table: ClassVar[str] = "similarity"
    backbone: str = key()
    image: str = key()
    method: str = ""
    baseline: str = ""
    mse: float = 0.0


def work(config: EvaluationConfig, load: Load) -> Iterator[Work]:
    for name in config.backbones:
        backbone = load(name)
        methods = chosen(config, METHODS, backbone)

        def rows(batch: list[Sample], backbone=backbone, methods=methods) -> list[SimilarityRow]:
            result = explain(backbone, inputs_of(backbone, batch), methods)
            return [SimilarityRow(backbone.name, sample.id, name, method_row(name).baseline, value)
                    for name, values in baseline_similarity(result.maps).items()
                    for sample, value in zip(batch, values.tolist())]

        yield Work(SimilarityRow, (backbone.name,), f"similarity {backbone.name}", rows)


def section(out: Path, rows: list[SimilarityRow]) -> str:
    values = grouped(rows, "backbone", "method", value="mse")
    units = per_unit(rows, "backbone", "method", value="mse")
    backbones = list(dict.fromkeys(row.backbone for row in rows))
    methods = list(dict.fromkeys(row.method for row in rows))
    table = [[method, *(format_mean_std(values[(b, method)]) if (b, method) in values else "—"
                        for b in backbones)] for method in methods]
    targeted = (" (and each other gradient method's map of the Mean, Max and LSE differences and "
                "that method's own map)" if any(TARGETED_SEPARATOR in row.method for row in rows)
                else "")
    text = [f"MSE between each DiffGradCAM(++) map and its baseline{targeted}, mean ± std over "
            f"images ({units_text(rows)}).", "",
            write_table(out, "similarity", ["method", *backbones], table)]
    # Within each family (GradCAM, GradCAM++, each retargeted method), its first variant (Mean)
    # against the others, in the order the records hold them.
    families = defaultdict(list)
    for variant, baseline in dict.fromkeys((row.method, row.baseline) for row in rows):
        if variant not in families[baseline]:
            families[baseline].append(variant)
    tests = []
    for backbone in backbones:
        for first, *others in families.values():
            for other in others:
                if (backbone, first) not in values or (backbone, other) not in values:
                    continue
                p = p_value(values[(backbone, first)], values[(backbone, other)])
                tests.append([backbone, f"{first} − {other}",
                              paired(units[(backbone, first)], units[(backbone, other)]),
                              f"{p:.2e}"])
    text += ["Mean vs Max and Mean vs LSE, paired over the units (the same images or photos): the "
             "mean difference first − second with its 95 % t interval, the signed-rank p and the "
             "Holm-adjusted p over this table's comparisons; beside them the papers' rank-sum p "
             "between the per-image MSEs, for comparison only (it ignores the pairing and, for "
             "crops, treats crops of one photo as independent).", "",
             write_table(out, "similarity_tests", ["backbone", "comparison", "MSE difference",
                                                   "papers' rank-sum p (per image)"], tests)]
    for backbone in backbones:
        path = out / f"similarity_{backbone}.png"
        box_plot(path, {m: values[(backbone, m)] for m in methods if (backbone, m) in values},
                 f"{backbone}: MSE to GradCAM(++)", "MSE", log=True)
        text.append(f"![similarity box plot, {backbone}]({path.name})\n")
    return "\n".join(text)


TABLE = Table(
    "similarity", "DiffGradCAM, Table 3 / RQ2", (SimilarityRow,), work,
    Section("Similarity to GradCAM / GradCAM++ on clean models (DiffGradCAM paper, Table 3)", "",
            section),
    seconds=lambda config: per_backbone_seconds(config, SECONDS_PER_IMAGE),
    needs="backbones")
