"""Susceptibility to passive fooling (DiffGradCAM paper, Table 4 / RQ3): per image and method, the
MSE between a clean and a fooled checkpoint's maps of the same image, their CAM entropies,
whether the two agree on the prediction, GradCAM's distance to the SHAM in both, and the
common-mode share of the change (the part no DiffGradCAM can see)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import matplotlib.pyplot as plt

from cam_studio.data.sources import Sample
from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.rows import key
from cam_studio.evaluation.statistics import mean_std
from cam_studio.evaluation.summaries import (
    box_plot,
    format_mean_std,
    grouped,
    interval_cell,
    p_value,
    paired,
    per_unit,
    units_text,
    write_table,
)
from cam_studio.evaluation.timing import lite0_scale
from cam_studio.evaluation.work import (
    Load,
    Section,
    Table,
    Work,
    chosen,
    image_count,
    inputs_of,
    pair_backbone,
)
from cams.engine import Explanation, explain
from cams.methods import METHODS as METHOD_TABLE
from cams.methods import Kind
from cams.metrics import cam_entropy_nats, common_mode_share, susceptibility
from fooling.config import TrainConfig
from fooling.sham import sham_distance

METHODS = tuple(name for name, method in METHOD_TABLE.items() if method.compared)
# Without --methods: all of them but IS-CAM and SS-CAM (10 and 35 masked passes per channel:
# minutes to hours per image for Lite0's 1280 channels); --methods names them.
DEFAULT_METHODS = tuple(name for name in METHODS
                        if METHOD_TABLE[name].kind not in (Kind.INTEGRATED_SCORES,
                                                           Kind.SMOOTHED_SCORES))
COMPARED_PAIR = ("GradCAM", "MeanDiffGradCAM")  # the overview's question: does Mean move less?
MOVED = 1e-4  # a GradCAM MSE below this: the pair did not move GradCAM
SECONDS_PER_IMAGE = 0.8  # both checkpoints' panels of these methods (SmoothGradCAM++'s four noisy
# copies and RefineCAM's graph below the layer among them), Lite0 on the 2-core CPU,
# and the many-pass maps of both, when in: ScoreCAM's masked passes (1280 channels), SESS's
# ~140 patches each
SLOW_SECONDS_PER_IMAGE = {"ScoreCAM": 40.0, "SESS": 6.0}


@dataclass(frozen=True)
class SusceptibilityRow:
    table: ClassVar[str] = "susceptibility"
    backbone: str = ""
    clean: str = key()
    fooled: str = key()
    attack_cam: str = ""
    image: str = key()
    method: str = ""
    mse: float = 0.0
    entropy_clean: float = 0.0
    entropy_fooled: float = 0.0
    agree: int = 0
    common_mode_share: float = 0.0
    gradcam_sham_mse_clean: float = 0.0
    gradcam_sham_mse_fooled: float = 0.0


def pair_work(config: EvaluationConfig, load: Load, clean_name: str, fooled_name: str,
              fooled_label: str | None = None, clean_label: str | None = None,
              clean_maps: dict[tuple[str, ...], Explanation] | None = None,
              images: str | None = None) -> Work:
    """The susceptibility of one clean → fooled pair, per batch of images. Either may be a
    checkpoint file (``fooled_label`` / ``clean_label`` name it in the records). With
    ``clean_maps``, the clean model's explanation of a batch is kept there and reused by every
    pair that shares the dict (one clean model against many fooled ones). ``images``: another
    source than ``--images``."""
    fooled = load(None, fooled_name)
    clean = load(fooled.name, clean_name)
    label, clean_name = fooled_label or fooled_name, clean_label or clean_name
    attack_cam = (fooled.metadata["recipe"].get("cam", TrainConfig.cam)
                  if "recipe" in fooled.metadata else
                  "constructed" if "construction" in fooled.metadata else "unknown")
    methods = chosen(config, DEFAULT_METHODS if config.methods is None else METHODS, clean)
    measured = list(dict.fromkeys([*methods, "GradCAM"]))  # GradCAM: the distance to the SHAM

    def rows(batch: list[Sample]) -> list[SusceptibilityRow]:
        ids = tuple(sample.id for sample in batch)
        a = clean_maps.get(ids) if clean_maps is not None else None
        if a is None:
            a = explain(clean, inputs_of(clean, batch), measured, class_maps=True)
            if clean_maps is not None:
                clean_maps[ids] = a
        b = explain(fooled, a.inputs, measured, a.targets, a.false_classes, class_maps=True)
        agree = (a.logits.argmax(1) == b.logits.argmax(1)).tolist()
        shares = common_mode_share(a.class_maps, b.class_maps).tolist()
        to_sham = [sham_distance(result.layer_maps["GradCAM"]).tolist() for result in (a, b)]
        moved = susceptibility(a.maps, b.maps)
        made = []
        for name in methods:
            entropy_a = cam_entropy_nats(a.layer_maps[name]).tolist()
            entropy_b = cam_entropy_nats(b.layer_maps[name]).tolist()
            made += [SusceptibilityRow(fooled.name, clean_name, label, attack_cam, sample.id, name,
                                       value, ea, eb, int(same), share, sham_a, sham_b)
                     for sample, value, ea, eb, same, share, sham_a, sham_b in zip(
                         batch, moved[name].tolist(), entropy_a, entropy_b, agree, shares,
                         *to_sham)]
        return made

    return Work(SusceptibilityRow, (clean_name, label), f"susceptibility {clean_name} vs {label}",
                rows, images=images)


def seconds(config: EvaluationConfig) -> float:
    """Lite0's per-image seconds, scaled to each pair's backbone (ScoreCAM by its channels too)."""
    total = 0.0
    for _, fooled in config.pairs:
        backbone = pair_backbone(fooled)
        total += SECONDS_PER_IMAGE * lite0_scale(backbone) + sum(
            per_image * lite0_scale(backbone, per_channel=name == "ScoreCAM")
            for name, per_image in SLOW_SECONDS_PER_IMAGE.items()
            if config.methods is None or name in config.methods)
    return total * image_count(config)


def work(config: EvaluationConfig, load: Load) -> Iterator[Work]:
    for clean_name, fooled_name in config.pairs:
        yield pair_work(config, load, clean_name, fooled_name)


def overview(out: Path, rows: list[SusceptibilityRow]) -> list[str]:
    """One line per clean → fooled pair: does it keep predictions, does it fool GradCAM, how
    class-uniform is the change, and does MeanDiffGradCAM move less than GradCAM (paired over
    units); and the figure of that last ratio against the common-mode share."""
    pairs = list(dict.fromkeys((row.clean, row.fooled) for row in rows))
    units = per_unit(rows, "clean", "fooled", "method", value="mse")
    table, points = [], []
    for clean, fooled in pairs:
        mine = [row for row in rows if (row.clean, row.fooled) == (clean, fooled)]
        first = [row for row in mine if row.method == mine[0].method]
        shares = [row.common_mode_share for row in first]
        shares = [share for share in shares if not math.isnan(share)] or [math.nan]
        moved = {method: units.get((clean, fooled, method)) for method in COMPARED_PAIR}
        if not all(moved.values()):
            continue
        gradcam, meandiff = (mean_std(list(moved[m].values()))[0] for m in COMPARED_PAIR)
        sham = [mean_std([getattr(row, f"gradcam_sham_mse_{which}") for row in first])[0]
                for which in ("clean", "fooled")]
        agreement = sum(row.agree for row in first) / len(first)
        table.append([fooled, mine[0].attack_cam, units_text(first, short=True),
                      f"{agreement:.1%}",
                      f"{sham[0]:.3f} → {sham[1]:.3f}", format_mean_std(shares, ".3f"),
                      f"{gradcam:.2e}", f"{meandiff:.2e}",
                      paired(moved[COMPARED_PAIR[1]], moved[COMPARED_PAIR[0]])])
        points.append((mean_std(shares)[0], meandiff / gradcam if gradcam else math.nan, fooled,
                       gradcam))
    if not table:
        return []
    figure, axis = plt.subplots(figsize=(7.6, 4.4), layout="constrained")
    for number, (share, ratio, label, gradcam) in enumerate(points, 1):
        moved = gradcam >= MOVED  # a pair that barely moved GradCAM says nothing about the ratio
        axis.scatter(share, ratio, s=60, color="tab:blue" if moved else "white",
                     edgecolors="tab:blue", label=f"{number}: {label}"
                     + ("" if moved else " (GradCAM barely moved)"))
        # Numbers of points that sit on one another are spread out to the right.
        crowd = sum(abs(share - other[0]) < 0.03 and abs(ratio - other[1]) < 0.03
                    for other in points[:number - 1])
        axis.annotate(str(number), (share, ratio), fontsize=8, xytext=(5 + 9 * crowd, 4),
                      textcoords="offset points")
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    axis.axhline(1, color="gray", lw=0.8, ls="--")
    axis.set_xlabel("common-mode share of the change (1 = the same for every class)")
    axis.set_ylabel("MeanDiffGradCAM moved / GradCAM moved")
    axis.set_xlim(-0.05, 1.05)
    axis.set_ylim(bottom=0)
    axis.set_title("Which manipulations DiffGradCAM sees through")
    figure.savefig(out / "resistance.png", dpi=110)
    plt.close(figure)
    return ["Every pair at a glance: top-1 agreement, GradCAM's MSE to the SHAM (clean → fooled), "
            "the common-mode share of the change (mean ± std over images), how far GradCAM and "
            "MeanDiffGradCAM moved, and MeanDiffGradCAM − GradCAM paired over units (the "
            "difference [95 % t], signed-rank p, Holm p over the pairs of this table).", "",
            write_table(out, "susceptibility_overview", [
                "fooled", "attack CAM", "images", "agreement", "GradCAM MSE to SHAM",
                "common-mode share", "GradCAM moved", "MeanDiffGradCAM moved",
                "MeanDiff − GradCAM"], table),
            "![MeanDiffGradCAM's movement over GradCAM's against the common-mode share]"
            "(resistance.png)\n"]


# The papers' second-order variants beside their first-order ones (DiffGradCAM paper, §6.3: "the
# DiffGradCAM++ variants generally reduce susceptibility relative to their DiffGradCAM
# counterparts").
FIRST_AND_SECOND_ORDER = tuple((name, f"{name}++") for name in
                               ("GradCAM", "MeanDiffGradCAM", "MaxDiffGradCAM", "LSEDiffGradCAM"))


def plusplus(out: Path, slug: str, units: dict, clean: str, fooled: str) -> list[str]:
    """Each ++ variant's MSE − its first-order variant's, paired over units (negative: the ++
    variant moved less)."""
    table = [[f"{second} − {first}", paired(units[(clean, fooled, second)],
                                             units[(clean, fooled, first)])]
             for first, second in FIRST_AND_SECOND_ORDER
             if (clean, fooled, first) in units and (clean, fooled, second) in units]
    if not table:
        return []
    return ["First-order against second-order: each ++ variant's MSE minus its first-order "
            "variant's, paired over units (negative = the ++ variant moved less):", "",
            write_table(out, f"{slug}_plusplus", ["comparison", "MSE difference"], table)]


def section(out: Path, rows: list[SusceptibilityRow]) -> str:
    text = overview(out, rows)
    pairs = list(dict.fromkeys((row.backbone, row.clean, row.fooled) for row in rows))
    values = grouped(rows, "clean", "fooled", "method", value="mse")
    units = per_unit(rows, "clean", "fooled", "method", value="mse")
    entropy_clean = grouped(rows, "clean", "fooled", "method", value="entropy_clean")
    entropy_fooled = grouped(rows, "clean", "fooled", "method", value="entropy_fooled")
    for backbone, clean, fooled in pairs:
        methods = [m for (c, f, m) in values if (c, f) == (clean, fooled)]
        best = min(methods, key=lambda m: mean_std(values[(clean, fooled, m)])[0])
        table = []
        for method in methods:
            mine = values[(clean, fooled, method)]
            p = p_value(values[(clean, fooled, best)], mine) if method != best else math.nan
            versus = (["the most resistant", "—"] if method == best else
                      [paired(units[(clean, fooled, method)], units[(clean, fooled, best)]),
                       f"{p:.1e}"])
            # Sorted by the mean as shown (3 significant digits; ties keep the table's order).
            shown_mean = float(f"{mean_std(mine)[0]:.2e}")
            table.append((shown_mean, [method, format_mean_std(mine),
                                       interval_cell(units[(clean, fooled, method)]), *versus,
                                       f"{mean_std(entropy_clean[(clean, fooled, method)])[0]:.2f}",
                                       f"{mean_std(entropy_fooled[(clean, fooled, method)])[0]:.2f}"]))
        table = [cells for _, cells in sorted(table, key=lambda item: item[0])]
        mine = [row for row in rows if (row.clean, row.fooled) == (clean, fooled)]
        images = [row for row in mine if row.method == methods[0]]
        agreement = sum(row.agree for row in images) / len(images)
        shares = [row.common_mode_share for row in images if not math.isnan(row.common_mode_share)]
        share = (f"; common-mode share of the change {format_mean_std(shares, '.3f')} (1 = the "
                 "same for every class, invisible to DiffGradCAM)" if shares else "")
        slug = f"susceptibility_{clean}_vs_{fooled}"
        text += [f"### {backbone}: {clean} vs {fooled}", "",
                 f"{units_text(mine)}; the two agree on the top-1 class for {agreement:.1%}"
                 f"{share}. Each method's MSE (mean ± std over images; the mean over units with "
                 "its 95 % t interval), and against the most resistant method paired over units "
                 "(the difference method − best [95 % t], signed-rank p, Holm p over this table); "
                 "beside it the papers' rank-sum p over the images, for comparison only.", "",
                 write_table(out, slug, ["method", "MSE clean vs fooled", "over units [95 %]",
                                         "− the most resistant",
                                         "papers' rank-sum p vs best (per image)",
                                         "entropy clean (nats)", "entropy fooled (nats)"],
                             table)]
        text += plusplus(out, slug, units, clean, fooled)
        box_plot(out / f"{slug}.png", {m: values[(clean, fooled, m)] for m in methods},
                 f"{backbone}: {clean} vs {fooled}", "MSE")
        text.append(f"![susceptibility box plot]({slug}.png)\n")
    # Every fooled checkpoint of a backbone against every measured CAM: which CAMs an attack on
    # one CAM moves (the rows name the CAM each attack supervised).
    moved = grouped(rows, "backbone", "fooled", "method", value="mse")
    for backbone in dict.fromkeys(row.backbone for row in rows):
        fooled = list(dict.fromkeys(row.fooled for row in rows if row.backbone == backbone))
        if len(fooled) < 2:
            continue
        attack_cams = {row.fooled: row.attack_cam for row in rows}
        measured = list(dict.fromkeys(m for b, f, m in moved if b == backbone))
        table = [[f"{name} ({attack_cams[name]})",
                  *(f"{mean_std(moved[(backbone, name, m)])[0]:.2e}"
                    if (backbone, name, m) in moved else "—" for m in measured)]
                 for name in fooled]
        text += [f"### {backbone}: every attack × every CAM (rows: the fooled checkpoint and the "
                 "CAM its attack supervised; mean MSE clean vs fooled)", "",
                 write_table(out, f"transfer_{backbone}", ["fooled (attack CAM)", *measured],
                             table)]
    return "\n".join(text)


TABLE = Table(
    "susceptibility", "DiffGradCAM, Table 4 / RQ3", (SusceptibilityRow,), work,
    Section("Susceptibility to passive fooling (DiffGradCAM paper, Table 4)",
            "MSE between the maps of the clean and the fooled checkpoint on identical images, "
            "mean ± std (lower = more resistant); the most resistant method per pair, and how "
            "every other method compares with it, paired on the same images.", section),
    seconds=seconds, needs="pairs")
