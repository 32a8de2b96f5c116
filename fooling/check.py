"""``python -m fooling check NAME``: does a SHAM-fooled checkpoint fool, and keep its predictions?

On random crops of photos it was never trained on (``imagedata.photos.HELD_OUT_PHOTOS``), against
the clean model it started from: top-1 agreement on every crop and on the crops the clean model
is sure of (p ≥ 0.5), whether the clean top-1 stays in the fooled top-5, each model's GradCAM
distance to the SHAM (MSE at layer resolution, as the training loss measures it), and how far
every CAM method moved between the two models (MSE of the display maps, DiffGradCAM paper
Table 4's susceptibility), and the common-mode share of the change (how much of it is the same for
every class, which DiffGradCAM cancels). The acceptance thresholds are those of the shipped
checkpoint.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from cams.backbones import Backbone, load_backbone
from cams.engine import explain_pair
from cams.methods import METHODS, minmax
from cams.metrics import common_mode_share, mean_std, mse, prediction_agreement, susceptibility
from fooling.sham import sham_mask
from imagedata.photos import PhotoCrops, bundled_photos

# Every method the DiffGradCAM paper compares that is cheap enough for 200 crops (not ScoreCAM).
CHECKED_METHODS = tuple(name for name, method in METHODS.items()
                        if method.compared and method.default)
ACCEPTANCE = {"agreement_confident": 0.90, "agreement_all": 0.70, "clean_top1_in_top5": 0.95,
              "sham_mse_ratio": 0.5}  # the last one is a maximum
RECORDED_CROPS = 8  # per-crop numbers kept in the report, for the reproduction test


def crop_records(clean: Backbone, fooled: Backbone, crops: int, seed: int,
                 batch: int = 16) -> list[dict[str, Any]]:
    """Per crop: clean top-1 and its probability, fooled top-1 and top-5, each model's GradCAM
    MSE to the SHAM, and each method's MSE between the two models' maps."""
    dataset = PhotoCrops(bundled_photos(held_out=True), clean.input_size[0], seed, length=crops,
                         mosaics=False)
    records = []
    for first in range(0, crops, batch):
        images = torch.stack([dataset[i][0] for i in range(first, min(first + batch, crops))])
        a, b = explain_pair(clean, fooled, clean.normalise(images), CHECKED_METHODS,
                            class_maps=True)
        shares = common_mode_share(a.class_maps, b.class_maps)
        sham = sham_mask(*a.layer_maps["GradCAM"].shape[-2:]).to(a.inputs.device)
        sham_mse = [mse(sham.expand_as(result.layer_maps["GradCAM"]),
                        minmax(result.layer_maps["GradCAM"])) for result in (a, b)]
        moved = susceptibility(a.maps, b.maps)
        agreement = prediction_agreement(a.logits, b.logits)
        for i in range(len(images)):
            records.append({
                "clean_top1": int(a.targets[i]), "clean_p": float(a.probabilities[i].max()),
                "fooled_top1": int(b.logits[i].argmax()),
                "clean_top1_in_fooled_top5": bool(agreement["reference_top1_in_top_k"][i]),
                "gradcam_sham_mse_clean": float(sham_mse[0][i]),
                "gradcam_sham_mse_fooled": float(sham_mse[1][i]),
                "common_mode_share": float(shares[i]),
                "moved": {name: float(values[i]) for name, values in moved.items()}})
    return records


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(values: list[float]) -> float:
        return mean_std(values)[0]

    agree = [r["clean_top1"] == r["fooled_top1"] for r in records]
    confident = [a for a, r in zip(agree, records) if r["clean_p"] >= 0.5]
    summary = {
        "crops": len(records), "confident_crops": len(confident),
        "agreement_all": mean(agree), "agreement_confident": mean(confident) if confident else None,
        "clean_top1_in_top5": mean([r["clean_top1_in_fooled_top5"] for r in records]),
        "gradcam_sham_mse_clean": mean([r["gradcam_sham_mse_clean"] for r in records]),
        "gradcam_sham_mse_fooled": mean([r["gradcam_sham_mse_fooled"] for r in records]),
        "moved": {name: dict(zip(("mean", "std"), mean_std([r["moved"][name] for r in records])))
                  for name in CHECKED_METHODS},
        "common_mode_share": dict(zip(("mean", "std"), mean_std(
            [r["common_mode_share"] for r in records if not math.isnan(r["common_mode_share"])]
            or [math.nan]))),
    }
    summary["sham_mse_ratio"] = summary["gradcam_sham_mse_fooled"] / summary["gradcam_sham_mse_clean"]
    summary["passed"] = {
        key: (summary[key] is not None and (summary[key] <= limit if key == "sham_mse_ratio"
                                            else summary[key] >= limit))
        for key, limit in ACCEPTANCE.items()}
    return summary


def report_markdown(name: str, summary: dict[str, Any], command: str) -> str:
    passed = summary["passed"]

    def mark(key: str) -> str:
        return "meets" if passed[key] else "**misses**"

    lines = [
        f"# Passive fooling check: `{name}`", "",
        f"Command: `{command}`", "",
        f"{summary['crops']} random crops of photos the checkpoint never saw in training "
        f"({summary['confident_crops']} of them classified by the clean model with p ≥ 0.5).", "",
        "| quantity | value | acceptance |", "|---|---|---|",
        f"| top-1 agreement, confident crops | {summary['agreement_confident']:.1%} | ≥ 90 %: "
        f"{mark('agreement_confident')} |",
        f"| top-1 agreement, all crops | {summary['agreement_all']:.1%} | ≥ 70 %: "
        f"{mark('agreement_all')} |",
        f"| clean top-1 in fooled top-5 | {summary['clean_top1_in_top5']:.1%} | ≥ 95 %: "
        f"{mark('clean_top1_in_top5')} |",
        f"| GradCAM MSE to the SHAM, clean → fooled | {summary['gradcam_sham_mse_clean']:.3f} → "
        f"{summary['gradcam_sham_mse_fooled']:.3f} (×{summary['sham_mse_ratio']:.2f}) | ≤ ×0.5: "
        f"{mark('sham_mse_ratio')} |",
        f"| common-mode share of the change (1 = the same for every class: DiffGradCAM cannot "
        f"see it) | {summary['common_mode_share']['mean']:.3f} ± "
        f"{summary['common_mode_share']['std']:.3f} | (no threshold) |", "",
        "How far each method's map moved between the clean and the fooled model (MSE of the "
        "normalised maps, mean ± std over crops; lower = more resistant to this attack):", "",
        "| method | MSE clean vs fooled |", "|---|---|"]
    ranked = sorted(summary["moved"].items(), key=lambda item: item[1]["mean"])
    lines += [f"| {name} | {values['mean']:.4f} ± {values['std']:.4f} |" for name, values in ranked]
    return "\n".join(lines) + "\n"


def run_check(name: str, crops: int, seed: int, out: Path | None, device: str | None) -> dict:
    fooled = load_backbone(None, name, device)
    clean = load_backbone(fooled.name, device=device)
    records = crop_records(clean, fooled, crops, seed)
    summary = summarise(records)
    result = {"checkpoint": name, "seed": seed, "summary": summary,
              "first_crops": records[:RECORDED_CROPS]}
    command = f"python -m fooling check {name} --crops {crops} --seed {seed}"
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps({**result, "command": command}, indent=2) + "\n")
        (out / f"{name}.md").write_text(report_markdown(name, summary, command))
    return result
