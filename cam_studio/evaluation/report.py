"""From the per-image records to the papers' tables: CSV, Markdown, PNG plots and ``report.md``.

Everything here reads ``OUT/records/*.csv`` only, so a report can be rebuilt at any time (also
while a long run is still appending, or after it was interrupted).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from cam_studio.evaluation.statistics import (
    bootstrap_interval,
    mean_std,
    mod_vid,
    paired_comparison,
    rank_sum,
    unit_means,
)
from cams.faithfulness import BLUR_SIGMA, FAITHFULNESS_STEPS, ROAD_QUICK_PERCENTILES
from cams.methods import DIFF_BASELINES
from fooling.attacks import ATTACK_BASE, ATTACKS
from fooling.objectives import OBJECTIVES

SIGNIFICANCE = 0.05
CROP_ID = re.compile(r"(?P<photo>.+)/crop-[0-9]+")  # imagedata.sources names crops PHOTO/crop-I
COMPARED_PAIR = ("GradCAM", "MeanDiffGradCAM")  # the overview's question: does Mean move less?
MOVED = 1e-4  # a GradCAM MSE below this: the pair did not move GradCAM


def read(out: Path, table: str) -> list[dict[str, str]]:
    path = out / "records" / f"{table}.csv"
    if not path.exists():
        return []
    with path.open() as handle:
        return list(csv.DictReader(handle))


def p_value(a: list[float], b: list[float]) -> float:
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return rank_sum(torch.tensor(a), torch.tensor(b)).p_value


def format_mean_std(values: list[float], digits: str = ".2e") -> str:
    mean, std = mean_std(values)
    return f"{mean:{digits}} ± {std:{digits}}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_table(out: Path, name: str, header: list[str], rows: list[list[str]]) -> str:
    """Write ``NAME.csv`` and ``NAME.md``; returns the Markdown."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    (out / f"{name}.csv").write_text(buffer.getvalue())
    text = markdown_table(header, rows)
    (out / f"{name}.md").write_text(text)
    return text


def grouped(rows: list[dict[str, str]], *keys: str, value: str) -> dict[tuple, list[float]]:
    groups: dict[tuple, list[float]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[key] for key in keys)].append(float(row[value]))
    return groups


def unit_of(image: str) -> str:
    """The independent unit an image belongs to: its photo for a crop, else the image itself."""
    match = CROP_ID.fullmatch(image)
    return match["photo"] if match else image


def per_unit(rows: list[dict[str, str]], *keys: str, value: str) -> dict[tuple, dict[str, float]]:
    """Per key, the mean of ``value`` per unit (``unit_of`` the row's image)."""
    groups: dict[tuple, tuple[list[float], list[str]]] = defaultdict(lambda: ([], []))
    for row in rows:
        values, units = groups[tuple(row[key] for key in keys)]
        values.append(float(row[value]))
        units.append(unit_of(row["image"]))
    return {key: unit_means(*pair) for key, pair in groups.items()}


def paired_cells(a: dict[str, float], b: dict[str, float]) -> list[str]:
    """Signed-rank p and mean difference [95 %] of a − b over the units both have."""
    units = [unit for unit in a if unit in b]
    result = paired_comparison([a[unit] for unit in units], [b[unit] for unit in units])
    return [f"{result.p_value:.1e}" + (" *" if result.p_value < SIGNIFICANCE else ""),
            f"{result.mean_difference:+.2e} [{result.low:+.2e}, {result.high:+.2e}]"]


def interval_cell(units: dict[str, float]) -> str:
    low, high = bootstrap_interval(list(units.values()))
    return f"{mean_std(list(units.values()))[0]:.2e} [{low:.2e}, {high:.2e}]"


def box_plot(path: Path, groups: dict[str, list[float]], title: str, ylabel: str,
             log: bool = False) -> None:
    figure, axis = plt.subplots(figsize=(1.2 * len(groups) + 2, 4), layout="constrained")
    axis.boxplot(list(groups.values()), tick_labels=list(groups), showmeans=True)
    axis.set_title(title)
    axis.set_ylabel(ylabel)
    if log and all(min(values) > 0 for values in groups.values()):
        axis.set_yscale("log")
    axis.tick_params(axis="x", rotation=30)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def units_text(rows: list[dict[str, str]], short: bool = False) -> str:
    images = {row["image"] for row in rows}
    units = {unit_of(image) for image in images}
    if len(units) == len(images):
        return f"{len(images)} images"
    if short:
        return f"{len(images)} crops / {len(units)} photos"
    return (f"{len(images)} crops of {len(units)} photos, the photo the unit of the paired tests "
            "and intervals")


def similarity_section(out: Path, rows: list[dict[str, str]]) -> str:
    values = grouped(rows, "backbone", "method", value="mse")
    units = per_unit(rows, "backbone", "method", value="mse")
    backbones = list(dict.fromkeys(row["backbone"] for row in rows))
    methods = list(dict.fromkeys(row["method"] for row in rows))
    table = [[method, *(format_mean_std(values[(b, method)]) if (b, method) in values else "—"
                        for b in backbones)] for method in methods]
    text = ["MSE between each DiffGradCAM(++) map and its baseline, mean ± std over images "
            f"({units_text(rows)}).", "",
            write_table(out, "similarity", ["method", *backbones], table)]
    # Within each family (GradCAM, GradCAM++), its first variant (Mean) against the others.
    families = defaultdict(list)
    for variant, baseline in DIFF_BASELINES.items():
        families[baseline].append(variant)
    tests = []
    for backbone in backbones:
        for first, *others in families.values():
            for other in others:
                if (backbone, first) not in values or (backbone, other) not in values:
                    continue
                p = p_value(values[(backbone, first)], values[(backbone, other)])
                tests.append([backbone, f"{first} vs {other}", f"{p:.2e}",
                              *paired_cells(units[(backbone, first)], units[(backbone, other)])])
    text += ["Mean vs Max and Mean vs LSE: the papers' Wilcoxon rank-sum test between the "
             "per-image MSEs, and the paired signed-rank test (the same images; * = p < 0.05) "
             "with the mean difference first − second [95 % bootstrap interval]:", "",
             write_table(out, "similarity_tests", ["backbone", "comparison", "rank-sum p",
                                                   "signed-rank p", "mean difference [95 %]"],
                         tests)]
    for backbone in backbones:
        path = out / f"similarity_{backbone}.png"
        box_plot(path, {m: values[(backbone, m)] for m in methods if (backbone, m) in values},
                 f"{backbone}: MSE to GradCAM(++)", "MSE", log=True)
        text.append(f"![similarity box plot, {backbone}]({path.name})\n")
    return "\n".join(text)


def versus_gradcam(out: Path, rows: list[dict[str, str]], table_name: str, column: str,
                   label: str, explanation: str) -> str:
    """One faithfulness measure per model and method, mean ± std over images, and each method
    against GradCAM on the same model, paired over units."""
    models = list(dict.fromkeys(row["model"] for row in rows))
    methods = list(dict.fromkeys(row["method"] for row in rows))
    values = grouped(rows, "model", "method", value=column)
    units = per_unit(rows, "model", "method", value=column)
    table = []
    for model in models:
        for method in methods:
            if (model, method) not in values:
                continue
            versus = (paired_cells(units[(model, method)], units[(model, "GradCAM")])
                      if method != "GradCAM" and (model, "GradCAM") in units else ["—", "—"])
            table.append([model, method, format_mean_std(values[(model, method)], ".3f"),
                          *versus])
    return "\n".join([f"{explanation}, and each method − GradCAM on the same model (signed-rank "
                      "p, mean difference [95 %]):", "",
                      write_table(out, table_name, ["model", "method", label, "vs GradCAM: p",
                                                    "vs GradCAM: Δ [95 %]"], table)])


def faithfulness_section(out: Path, rows: list[dict[str, str]]) -> str:
    """Deletion and insertion AUC per model and method (``versus_gradcam``)."""
    text = [f"{units_text(rows)}; pixels replaced by a Gaussian blur of the image "
            f"(σ = {BLUR_SIGMA:g} of its side) in {FAITHFULNESS_STEPS} steps, most relevant "
            "first. Deletion AUC: lower = more faithful; insertion AUC: higher = more faithful.",
            ""]
    for curve in ("deletion", "insertion"):
        text.append(versus_gradcam(out, rows, f"faithfulness_{curve}", f"{curve}_auc",
                                   f"{curve} AUC", f"{curve.capitalize()} AUC"))
    return "\n".join(text)


def road_section(out: Path, rows: list[dict[str, str]]) -> str:
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


def overview(out: Path, rows: list[dict[str, str]]) -> list[str]:
    """One line per clean → fooled pair: does it keep predictions, does it fool GradCAM, how
    class-uniform is the change, and does MeanDiffGradCAM move less than GradCAM (paired over
    units); and the figure of that last ratio against the common-mode share."""
    pairs = list(dict.fromkeys((row["clean"], row["fooled"]) for row in rows))
    units = per_unit(rows, "clean", "fooled", "method", value="mse")
    table, points = [], []
    for clean, fooled in pairs:
        mine = [row for row in rows if (row["clean"], row["fooled"]) == (clean, fooled)]
        first = [row for row in mine if row["method"] == mine[0]["method"]]
        shares = [float(row["common_mode_share"]) for row in first]
        shares = [share for share in shares if not math.isnan(share)] or [math.nan]
        moved = {method: units.get((clean, fooled, method)) for method in COMPARED_PAIR}
        if not all(moved.values()):
            continue
        gradcam, meandiff = (mean_std(list(moved[m].values()))[0] for m in COMPARED_PAIR)
        sham = [mean_std([float(row[f"gradcam_sham_mse_{which}"]) for row in first])[0]
                for which in ("clean", "fooled")]
        agreement = sum(int(row["agree"]) for row in first) / len(first)
        table.append([fooled, mine[0]["attack_cam"], units_text(first, short=True),
                      f"{agreement:.1%}",
                      f"{sham[0]:.3f} → {sham[1]:.3f}", format_mean_std(shares, ".3f"),
                      f"{gradcam:.2e}", f"{meandiff:.2e}",
                      *paired_cells(moved[COMPARED_PAIR[1]], moved[COMPARED_PAIR[0]])])
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
            "the common-mode share of the change, how far GradCAM and MeanDiffGradCAM moved, and "
            "MeanDiffGradCAM − GradCAM paired over units (signed-rank p, mean difference "
            "[95 % interval]).", "",
            write_table(out, "susceptibility_overview", [
                "fooled", "attack CAM", "images", "agreement", "GradCAM MSE to SHAM",
                "common-mode share", "GradCAM moved", "MeanDiffGradCAM moved",
                "MeanDiff − GradCAM: p", "MeanDiff − GradCAM: Δ [95 %]"], table),
            "![MeanDiffGradCAM's movement over GradCAM's against the common-mode share]"
            "(resistance.png)\n"]


def susceptibility_section(out: Path, rows: list[dict[str, str]]) -> str:
    text = overview(out, rows)
    pairs = list(dict.fromkeys((row["backbone"], row["clean"], row["fooled"]) for row in rows))
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
            versus = (["best", "—", "—"] if method == best else
                      [f"{p:.1e}" + (" *" if p < SIGNIFICANCE else ""),
                       *paired_cells(units[(clean, fooled, method)],
                                     units[(clean, fooled, best)])])
            table.append([method, format_mean_std(mine), interval_cell(units[(clean, fooled,
                                                                               method)]),
                          *versus,
                          f"{mean_std(entropy_clean[(clean, fooled, method)])[0]:.2f}",
                          f"{mean_std(entropy_fooled[(clean, fooled, method)])[0]:.2f}"])
        table.sort(key=lambda row: float(row[1].split(" ")[0]))
        mine = [row for row in rows if (row["clean"], row["fooled"]) == (clean, fooled)]
        images = [row for row in mine if row["method"] == methods[0]]
        agreement = sum(int(row["agree"]) for row in images) / len(images)
        shares = [float(row["common_mode_share"]) for row in images
                  if not math.isnan(float(row["common_mode_share"]))]
        share = (f"; common-mode share of the change {format_mean_std(shares, '.3f')} (1 = the "
                 "same for every class, invisible to DiffGradCAM)" if shares else "")
        slug = f"susceptibility_{clean}_vs_{fooled}"
        text += [f"### {backbone}: {clean} vs {fooled}", "",
                 f"{units_text(mine)}; the two agree on the top-1 class for {agreement:.1%}"
                 f"{share}. Against the most resistant method: the papers' rank-sum p, the "
                 "paired signed-rank p (* = p < 0.05) and the mean difference "
                 "method − best [95 % bootstrap interval], over the units.", "",
                 write_table(out, slug, ["method", "MSE clean vs fooled", "over units [95 %]",
                                         "rank-sum p vs best", "signed-rank p vs best",
                                         "Δ vs best [95 %]", "entropy clean (nats)",
                                         "entropy fooled (nats)"], table)]
        box_plot(out / f"{slug}.png", {m: values[(clean, fooled, m)] for m in methods},
                 f"{backbone}: {clean} vs {fooled}", "MSE")
        text.append(f"![susceptibility box plot]({slug}.png)\n")
    # Every fooled checkpoint of a backbone against every measured CAM: which CAMs an attack on
    # one CAM moves (the rows name the CAM each attack supervised).
    moved = grouped(rows, "backbone", "fooled", "method", value="mse")
    for backbone in dict.fromkeys(row["backbone"] for row in rows):
        fooled = list(dict.fromkeys(row["fooled"] for row in rows if row["backbone"] == backbone))
        if len(fooled) < 2:
            continue
        attack_cams = {row["fooled"]: row["attack_cam"] for row in rows}
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


def attacks_section(out: Path, rows: list[dict[str, str]]) -> str:
    table = [[row["attack"], describe(ATTACKS.get(row["attack"], {})), row["steps"],
              f"{float(row['train_seconds']):.0f}", f"{float(row['agreement']):.1%}",
              f"{float(row['salience_mse']):.3f}"] for row in rows]
    return "\n".join([write_table(out, "attacks", [
        "attack", f"change from {ATTACK_BASE}", "steps", "train s", "validation agreement",
        "validation GradCAM MSE to SHAM"], table),
        "Each attack's measurement on the images is the `attack-…` line of the susceptibility "
        "overview and its own susceptibility table.\n"])


def describe(change: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in change.items()) or "none (the base)"


def runtime_section(out: Path, rows: list[dict[str, str]]) -> str:
    text = []
    for backbone, device in dict.fromkeys((row["backbone"], row["device"]) for row in rows):
        mine = [row for row in rows if (row["backbone"], row["device"]) == (backbone, device)]
        table = [[row["method"], f"{float(row['standalone_ms']):.1f}",
                  f"{float(row['marginal_ms']):.1f}"] for row in mine]
        text += [f"### {backbone} on {device} (batch {mine[0]['batch']}; whole panel "
                 f"{float(mine[0]['panel_ms']):.1f} ms per image)", "",
                 write_table(out, f"runtime_{backbone}_{device.replace(':', '')}",
                             ["method", "alone (ms/image)", "marginal in panel (ms/image)"],
                             table)]
    return "\n".join(text)


def modvid_section(out: Path, rows: list[dict[str, str]]) -> str:
    text = []
    for backbone, epsilon in dict.fromkeys((row["backbone"], row["epsilon"]) for row in rows):
        mine = [row for row in rows if (row["backbone"], row["epsilon"]) == (backbone, epsilon)]
        values = grouped(mine, "method", value="nissim")
        first = [row for row in mine if row["method"] == mine[0]["method"]]
        success = sum(int(row["attack_success"]) for row in first) / len(first)
        summaries = sorted(((method, mod_vid(nissims)) for (method,), nissims in values.items()),
                           key=lambda item: item[1].mod)
        table = [[method, f"{summary.mod:.4f}", f"{summary.vid:.2e}", f"{summary.vid_std:.4f}"]
                 for method, summary in summaries]
        text += [f"### {backbone}, ε = {float(epsilon) * 255:.3g}/255 ({len(first)} images; the "
                 f"attack changed the prediction of {success:.1%})", "",
                 write_table(out, f"modvid_{backbone}", ["method", "MOD", "VID", "VID std"],
                             table)]
    return "\n".join(text)


def training_section(out: Path, rows: list[dict[str, str]]) -> str:
    pointing = read(out, "pointing")
    recipes = sorted({(row["steps"], row.get("lr", "0.05")) for row in rows})
    text = [f"Runs of {', '.join(f'{steps} steps at lr {lr}' for steps, lr in recipes)}.", ""]
    auroc_in = grouped(rows, "holdout", "loss", value="in_set_auroc")
    auroc_out = grouped(rows, "holdout", "loss", value="out_of_set_auroc")
    table = [[holdout, loss, str(len(auroc_in[(holdout, loss)])),
              format_mean_std(auroc_in[(holdout, loss)], ".3f"),
              format_mean_std(auroc_out[(holdout, loss)], ".3f")]
             for holdout, loss in auroc_in]
    text.append(write_table(out, "training", ["held-out type", "loss", "runs", "in-set AUROC",
                                              "out-of-set AUROC"], table))
    # Paired against the baseline: runs of one (held-out type, seed) share their initial weights
    # and data order, so the unit is that pair, pooled over every held-out type.
    paired = []
    present = {row["loss"] for row in rows}
    losses = [loss for loss in OBJECTIVES if loss in present]  # the baseline first
    for split in ("in_set", "out_of_set"):
        runs = {loss: {f"{row['holdout']}/{row['seed']}": float(row[f"{split}_auroc"])
                       for row in rows if row["loss"] == loss} for loss in losses}
        for loss in losses[1:]:
            paired.append([split.replace("_", "-"), f"{loss} − {losses[0]}",
                           str(len(runs[loss].keys() & runs[losses[0]].keys())),
                           *paired_cells(runs[loss], runs[losses[0]])])
    text += [f"Each objective against {losses[0]}, paired by (held-out type, seed): the same "
             "initial weights and data order. Wilcoxon signed-rank p (* = p < 0.05) and the mean "
             "AUROC difference [95 % bootstrap interval over the pairs]:", "",
             write_table(out, "training_tests", ["AUROC", "comparison", "pairs",
                                                 "signed-rank p", "mean difference [95 %]"],
                         paired)]
    if pointing:
        hits = grouped(pointing, "loss", "method", value="hit_rate")
        losses = list(dict.fromkeys(row["loss"] for row in pointing))
        methods = list(dict.fromkeys(row["method"] for row in pointing))
        table = [[method, *(f"{mean_std(hits[(loss, method)])[0]:.1%}" for loss in losses)]
                 for method in methods]
        text += ["Pointing game (beyond the papers): how often each method's maximum falls on the "
                 "ground-truth pattern, in-set test images, mean over runs.", "",
                 write_table(out, "pointing", ["method", *losses], table)]
    return "\n".join(text)


@dataclass(frozen=True)
class Section:
    """A table's part of the report: its heading, what it measures, and its tables and plots."""

    heading: str
    intro: str
    body: Callable[[Path, list[dict[str, str]]], str]


# In report order; a section is written when its table has rows.
SECTIONS: dict[str, Section] = {
    "similarity": Section(
        "Similarity to GradCAM / GradCAM++ on clean models (DiffGradCAM paper, Table 3)", "",
        similarity_section),
    "susceptibility": Section(
        "Susceptibility to passive fooling (DiffGradCAM paper, Table 4)",
        "MSE between the maps of the clean and the fooled checkpoint on identical images, "
        "mean ± std (lower = more resistant); the most resistant method per pair, and how every "
        "other method compares with it, paired on the same images.", susceptibility_section),
    "faithfulness": Section(
        "Faithfulness: deletion and insertion (beyond the papers' tables)",
        "How fast the explained class's probability falls as the pixels each map ranks most "
        "relevant are removed (deletion), and rises as they are revealed on the blurred image "
        "(insertion); on every backbone's clean model and on every fooled checkpoint of --pairs.",
        faithfulness_section),
    "road": Section(
        "Faithfulness: ROAD, remove and debias (beyond the papers' tables)",
        "ROAD (Rong et al. 2022) removes pixels by imputing them from their neighbours, so the "
        "removal itself leaks less of the map's shape than a blur; on the same models and "
        "images as the deletion and insertion table.", road_section),
    "attacks": Section(
        "Which passive-fooling attacks DiffGradCAM resists",
        f"Each attack is the shipped Lite0 SHAM recipe ({ATTACK_BASE}, fooling/config.py) with "
        "one change, trained here; the recipes were chosen on the validation photos.",
        attacks_section),
    "runtime": Section(
        "Run time (DiffGradCAM paper, Table 1)",
        "Milliseconds per image: each method alone (one `explain` call computing only it) "
        "and its marginal cost inside the one-pass panel (the panel's time minus the panel's "
        "without it; it can be ≈ 0 or slightly negative within timing noise).", runtime_section),
    "modvid": Section(
        "Explanations under FGSM attack: MOD / VID (Generalizing Adversarial Explanations)",
        "NISSIM = (1 − SSIM)/2 between each method's map of the clean and of the FGSM-attacked "
        "image (both explaining the clean prediction); MOD = its mean, VID = its variance (std "
        "beside it). Higher = the explanation moves more under attack.", modvid_section),
    "training": Section(
        "Salience-guided training on the synthetic domain (Divisive Decisions, Tables 2–4)",
        "tiny_resnet trained from random weights on synthetic:binary (bona fide vs attack) with "
        "each objective; the attack type named `holdout` is never seen in training. AUROC mean "
        "± std over seeds: in-set (test split) and out-of-set (bona fide vs the held-out type).",
        training_section),
}


def section_text(out: Path, section: Section, rows: list[dict[str, str]]) -> str:
    intro = [section.intro, ""] if section.intro else []
    return "\n".join([f"## {section.heading}", "", *intro, section.body(out, rows)])


def build_report(out: Path, command: str) -> Path:
    """Rebuild every table and plot from the records and write ``report.md``; ``command`` is
    added to ``commands.txt``, the list of runs that wrote into this folder."""
    commands_file = out / "commands.txt"
    commands = commands_file.read_text().splitlines() if commands_file.exists() else []
    if command not in commands:
        commands.append(command)
        commands_file.write_text("\n".join(commands) + "\n")
    body = "\n".join(section_text(out, section, rows) for table, section in SECTIONS.items()
                     if (rows := read(out, table)))
    report = out / "report.md"
    runs = "\n".join(f"    {line}" for line in commands)
    report.write_text(f"# Evaluation report\n\nProduced by:\n\n{runs}\n\nPer-image records: "
                      f"[records/](records/). Tables are also written as CSV beside their "
                      f".md.\n\n{body}")
    return report
