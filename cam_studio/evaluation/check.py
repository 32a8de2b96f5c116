"""``python -m cam_studio check NAME``: does a SHAM-fooled checkpoint fool, and keep its predictions?

On random crops of a photo set (``imagedata.photos``; by default the test photos, which nothing
was trained or tuned on), against the clean model it started from: top-1 agreement on every crop
and on the crops the clean model is sure of (p ≥ 0.5), whether the clean top-1 stays in the
fooled top-5, each model's GradCAM distance to the SHAM (MSE at layer resolution, as the training
loss measures it), how far every CAM method moved between the two models (MSE of the display
maps, DiffGradCAM paper Table 4's susceptibility), and the common-mode share of the change (how
much of it is the same for every class, which DiffGradCAM cancels). The photo, not the crop, is
the independent unit of the intervals and paired tests. The acceptance thresholds are those of
the shipped checkpoint.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from cam_studio.data.photos import PhotoCrops, photo_set
from cam_studio.evaluation.statistics import holm, mean_std, paired_comparison, t_interval, unit_means
from cams.backbones import Backbone, load_backbone
from cams.engine import explain_pair
from cams.methods import METHODS
from cams.metrics import common_mode_share, prediction_agreement, susceptibility
from fooling.sham import sham_distance

# Every method the DiffGradCAM paper compares that is cheap enough for 200 crops (not ScoreCAM).
CHECKED_METHODS = tuple(name for name, method in METHODS.items()
                        if method.compared and method.default)
# What a reviewer accepts as a passive fool (issue 20, item 4; until 2026-12-01 the project
# asked for 90 % / 70 % / ×0.5): it keeps the decisions and takes GradCAM most of the way.
ACCEPTANCE = {"agreement_confident": 0.98, "agreement_all": 0.90, "clean_top1_in_top5": 0.95,
              "sham_mse_ratio": 0.4}  # the last one is a maximum
RECORDED_CROPS = 8  # per-crop numbers kept in the report, for the reproduction test
PHOTO_SET_SOURCES = {"test": "photos Gradio and OpenCV ship (cam_studio/data/photos.py: their "
                             "sources and licences): never trained on, never tuned on",
                     "test-v1": "the six Gradio photos that were the test set before 2026-12-01",
                     "validation": "scikit-image's chelsea, coffee, astronaut: never trained on, "
                                   "but recipes were chosen on them",
                     "train": "the photos the SHAM models were trained on",
                     "train-wide": "the wider photos the sham-adam fools were trained on"}


def crop_records(clean: Backbone, fooled: Backbone, crops: int, seed: int,
                 batch: int = 16, photos: str = "test") -> list[dict[str, Any]]:
    """Per crop of the photo set ``photos``: its photo, clean top-1 and its probability, fooled
    top-1 and top-5, each model's GradCAM MSE to the SHAM, the common-mode share of the change,
    and each method's MSE between the two models' maps."""
    dataset = PhotoCrops(photo_set(photos), clean.input_size[0], seed, length=crops,
                         mosaics=False)
    records = []
    for first in range(0, crops, batch):
        images = torch.stack([dataset[i][0] for i in range(first, min(first + batch, crops))])
        a, b = explain_pair(clean, fooled, clean.normalise(images), CHECKED_METHODS,
                            class_maps=True)
        shares = common_mode_share(a.class_maps, b.class_maps)
        sham_mse = [sham_distance(result.layer_maps["GradCAM"]) for result in (a, b)]
        moved = susceptibility(a.maps, b.maps)
        agreement = prediction_agreement(a.logits, b.logits)
        for i in range(len(images)):
            records.append({
                "photo": dataset.photo_name(first + i),
                "clean_top1": int(a.targets[i]), "clean_p": float(a.probabilities[i].max()),
                "fooled_top1": int(b.logits[i].argmax()),
                "clean_top1_in_fooled_top5": bool(agreement["reference_top1_in_top_k"][i]),
                "gradcam_sham_mse_clean": float(sham_mse[0][i]),
                "gradcam_sham_mse_fooled": float(sham_mse[1][i]),
                "common_mode_share": float(shares[i]),
                "moved": {name: float(values[i]) for name, values in moved.items()}})
    return records


PER_PHOTO = ("agreement", "clean_top1_in_fooled_top5", "gradcam_sham_mse_clean",
             "gradcam_sham_mse_fooled", "common_mode_share")


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The acceptance numbers over crops (as the thresholds were set), the same per photo (the
    independent unit), and each method's movement with its paired comparison to GradCAM over
    photos (the mean difference with its 95 % t interval, the signed-rank p, Holm over the
    methods)."""
    def mean(values: list[float]) -> float:
        return mean_std(values)[0]

    for record in records:
        record["agreement"] = record["clean_top1"] == record["fooled_top1"]
    agree = [r["agreement"] for r in records]
    confident = [a for a, r in zip(agree, records) if r["clean_p"] >= 0.5]
    photos = [r["photo"] for r in records]
    per_photo = {key: unit_means([r[key] for r in records], photos) for key in PER_PHOTO}
    moved = {name: unit_means([r["moved"][name] for r in records], photos)
             for name in CHECKED_METHODS}
    intervals = {name: t_interval(list(moved[name].values())) for name in CHECKED_METHODS}
    versus = {name: paired_comparison(list(moved[name].values()), list(moved["GradCAM"].values()))
              for name in CHECKED_METHODS if name != "GradCAM"}
    summary = {
        "crops": len(records), "confident_crops": len(confident), "photos": len(set(photos)),
        "agreement_all": mean(agree), "agreement_confident": mean(confident) if confident else None,
        "clean_top1_in_top5": mean([r["clean_top1_in_fooled_top5"] for r in records]),
        "gradcam_sham_mse_clean": mean([r["gradcam_sham_mse_clean"] for r in records]),
        "gradcam_sham_mse_fooled": mean([r["gradcam_sham_mse_fooled"] for r in records]),
        "per_photo": {photo: {key: per_photo[key][photo] for key in PER_PHOTO}
                      for photo in dict.fromkeys(photos)},
        "moved": {name: {"mean": mean_std([r["moved"][name] for r in records])[0],
                         "std": mean_std([r["moved"][name] for r in records])[1],
                         "photo_mean": mean(list(moved[name].values())),
                         "photo_interval": [intervals[name].low, intervals[name].high]}
                  for name in CHECKED_METHODS},
        "versus_gradcam": {name: {**asdict(comparison), "holm_p": adjusted}
                           for (name, comparison), adjusted in zip(
                               versus.items(), holm([c.p_value for c in versus.values()]))},
        "common_mode_share": dict(zip(("mean", "std"), mean_std(
            [r["common_mode_share"] for r in records if not math.isnan(r["common_mode_share"])]
            or [math.nan]))),
    }
    summary["sham_mse_ratio"] = summary["gradcam_sham_mse_fooled"] / summary["gradcam_sham_mse_clean"]
    summary["passed"] = judged(summary)
    return summary


def judged(summary: dict[str, Any]) -> dict[str, bool]:
    """Each acceptance criterion (``ACCEPTANCE``) met or not."""
    return {key: (summary[key] is not None and (summary[key] <= limit if key == "sham_mse_ratio"
                                                else summary[key] >= limit))
            for key, limit in ACCEPTANCE.items()}


def report_markdown(name: str, summary: dict[str, Any], command: str, photos: str) -> str:
    """The check's report; the criteria are judged now, so an old record reads by today's."""
    passed = judged(summary)

    def mark(key: str) -> str:
        return "meets" if passed[key] else "**misses**"

    lines = [
        f"# Passive fooling check: `{name}`", "",
        f"Command: `{command}`", "",
        f"{summary['crops']} random crops of the {summary['photos']} {photos} photos "
        f"({PHOTO_SET_SOURCES[photos]}; {summary['confident_crops']} crops classified by the "
        "clean model with p ≥ 0.5).", "",
        "| quantity | value | acceptance |", "|---|---|---|",
        f"| top-1 agreement, confident crops | {summary['agreement_confident']:.1%} | "
        f"≥ {ACCEPTANCE['agreement_confident']:.0%}: {mark('agreement_confident')} |",
        f"| top-1 agreement, all crops | {summary['agreement_all']:.1%} | "
        f"≥ {ACCEPTANCE['agreement_all']:.0%}: {mark('agreement_all')} |",
        f"| clean top-1 in fooled top-5 | {summary['clean_top1_in_top5']:.1%} | "
        f"≥ {ACCEPTANCE['clean_top1_in_top5']:.0%}: {mark('clean_top1_in_top5')} |",
        f"| GradCAM MSE to the SHAM, clean → fooled | {summary['gradcam_sham_mse_clean']:.3f} → "
        f"{summary['gradcam_sham_mse_fooled']:.3f} (×{summary['sham_mse_ratio']:.2f}) | "
        f"≤ ×{ACCEPTANCE['sham_mse_ratio']}: {mark('sham_mse_ratio')} |",
        f"| common-mode share of the change (1 = the same for every class: DiffGradCAM cannot "
        f"see it) | {summary['common_mode_share']['mean']:.3f} ± "
        f"{summary['common_mode_share']['std']:.3f} | (no threshold) |", "",
        "Per photo (the independent unit; means over its crops):", "",
        "| photo | agreement | clean top-1 in top-5 | GradCAM MSE to SHAM, clean → fooled "
        "| common-mode share |", "|---|---|---|---|---|"]
    lines += [f"| {photo} | {v['agreement']:.1%} | {v['clean_top1_in_fooled_top5']:.1%} | "
              f"{v['gradcam_sham_mse_clean']:.3f} → {v['gradcam_sham_mse_fooled']:.3f} | "
              f"{v['common_mode_share']:.3f} |" for photo, v in summary["per_photo"].items()]
    lines += [
        "", "How far each method's map moved between the clean and the fooled model (MSE of the "
        "normalised maps; lower = more resistant to this attack): mean ± std over crops, the mean "
        "over photos with its 95 % t interval, and the method − GradCAM over photos (the mean "
        "difference [95 % t], the Wilcoxon signed-rank p and Holm's adjustment over the "
        "methods).", "",
        "| method | MSE over crops | over photos [95 %] | − GradCAM: Δ [95 %] | p | Holm p |",
        "|---|---|---|---|---|---|"]
    ranked = sorted(summary["moved"].items(), key=lambda item: item[1]["mean"])
    comparisons = summary["versus_gradcam"]
    for method, values in ranked:
        low, high = values["photo_interval"]
        versus = comparisons.get(method)
        paired = (f"{versus['mean_difference']:+.4f} [{versus['low']:+.4f}, {versus['high']:+.4f}]"
                  f" | {versus['p_value']:.2g} | {versus['holm_p']:.2g}" if versus else "— | — | —")
        lines.append(f"| {method} | {values['mean']:.4f} ± {values['std']:.4f} | "
                     f"{values['photo_mean']:.4f} [{low:.4f}, {high:.4f}] | {paired} |")
    return "\n".join(lines) + "\n"


def run_check(name: str, crops: int, seed: int, out: Path | None, device: str | None,
              photos: str = "test") -> dict:
    fooled = load_backbone(None, name, device)
    clean = load_backbone(fooled.name, device=device)
    records = crop_records(clean, fooled, crops, seed, photos=photos)
    summary = summarise(records)
    result = {"checkpoint": name, "seed": seed, "photos": photos, "summary": summary,
              "first_crops": records[:RECORDED_CROPS]}
    command = f"python -m cam_studio check {name} --crops {crops} --seed {seed} --photos {photos}"
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps({**result, "command": command}, indent=2) + "\n")
        (out / f"{name}.md").write_text(report_markdown(name, summary, command, photos))
    return result
