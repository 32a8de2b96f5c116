"""Can the shipped fools get their predictions back without moving a map? A positive scale ``s_c``
on each classifier row and the bias ``b`` leave every normalised GradCAM as it was (ReLU(s·x) =
s·ReLU(x), and min–max normalisation divides s out; the bias never enters a map), so GradCAM's
distance to the SHAM cannot change. Fit ``log s`` and ``b`` (2000 numbers) by L-BFGS to the clean
model's softmax (cross-entropy to its probabilities) on 2048 augmented crops of the fools' own
training photos (``train-wide``, mosaics and mixes included), then run the pilots' check on the
48 validation crops (seed 1234). ``reg`` pulls ``log s`` to 0 and ``b`` to the fool's own.
``python docs/results/coverage-pilots/head_calibration.py`` prints one JSON line per fool and
``reg`` (head_calibration.json holds them); about 4 minutes on 2 CPU cores."""

from __future__ import annotations

import json

import torch

from cam_studio.data.photos import PhotoCrops, photo_set
from cam_studio.evaluation.check import crop_records, summarise
from cams.backbones import load_backbone
from cams.metrics import prediction_agreement

FOOLS = ("sham-all-classes-efficientnet_lite0", "sham-one-class-efficientnet_lite0")
REGS = (0.0, 0.01, 0.1)
TRAIN_CROPS, TRAIN_SEED = 2048, 7
CROPS, SEED = 48, 1234  # the pilots' check: --photos validation --crops 48 --seed 1234


def scored(clean, fooled) -> dict[str, float]:
    summary = summarise(crop_records(clean, fooled, CROPS, SEED, photos="validation"))
    return {key: round(summary[key], 4)
            for key in ("agreement_all", "agreement_confident", "sham_mse_ratio")}


def agreement(reference_logits: torch.Tensor, logits: torch.Tensor) -> float:
    return round(float(prediction_agreement(reference_logits, logits)["agreement"].float().mean()),
                 4)


def calibrated(scores: torch.Tensor, target: torch.Tensor, bias: torch.Tensor,
               reg: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``log s`` and ``b`` whose logits ``scores · s + b`` best match the softmax of ``target``."""
    log_scale = torch.zeros(scores.shape[1], requires_grad=True)
    new_bias = bias.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS([log_scale, new_bias], max_iter=300,
                                  line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        logits = scores * log_scale.exp() + new_bias
        value = (-(target.softmax(1) * logits.log_softmax(1)).sum(1).mean()
                 + reg * (log_scale.pow(2).mean() + (new_bias - bias).pow(2).mean()))
        value.backward()
        return value

    optimiser.step(loss)
    return log_scale.detach(), new_bias.detach()


def main() -> None:
    crops = PhotoCrops(photo_set("train-wide"), 224, TRAIN_SEED, length=TRAIN_CROPS)
    for name in FOOLS:
        fooled = load_backbone(None, name, "cpu")
        clean = load_backbone(fooled.name, device="cpu")
        pooled, clean_logits = [], []
        with torch.inference_mode():
            for first in range(0, TRAIN_CROPS, 16):
                images = clean.normalise(torch.stack(
                    [crops[index][0] for index in range(first, min(first + 16, TRAIN_CROPS))]))
                pooled.append(fooled.features(images).mean(dim=(2, 3)))
                clean_logits.append(clean.forward(images, needs_graph=False)[1])
        head = fooled.model.get_classifier()
        weight, bias = head.weight.detach().clone(), head.bias.detach().clone()
        scores = torch.cat(pooled) @ weight.T  # the fool's logits without the bias
        target = torch.cat(clean_logits)
        print(json.dumps({"fool": name, "reg": None, **scored(clean, fooled),
                          "train_agreement": agreement(target, scores + bias)}), flush=True)
        for reg in REGS:
            log_scale, new_bias = calibrated(scores, target, bias, reg)
            train_agreement = agreement(target, scores * log_scale.exp() + new_bias)
            with torch.no_grad():
                head.weight.copy_(weight * log_scale.exp()[:, None])
                head.bias.copy_(new_bias)
            print(json.dumps({"fool": name, "reg": reg, **scored(clean, fooled),
                              "train_agreement": train_agreement,
                              "scale_range": [round(float(log_scale.exp().min()), 3),
                                              round(float(log_scale.exp().max()), 3)]}), flush=True)
            with torch.no_grad():
                head.weight.copy_(weight)
                head.bias.copy_(bias)


if __name__ == "__main__":
    main()
