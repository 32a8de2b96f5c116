"""Does the way back to the clean model bend past the pilots' front? Each shipped fool's weights
moved part way back to the clean model's, ``θ(λ) = θ₀ + λ·(θ_fool − θ₀)`` for every parameter and
buffer (batch-norm statistics included), as weight-space ensembling does after a fine-tune
(Wortsman et al. 2022, "Robust fine-tuning of zero-shot models"): λ = 1 is the fool, λ = 0 the
clean model. If the path bulges, some λ keeps more predictions at the same distance to the SHAM
than any training setting did; if it is straight, the line from (100 %, × 1) to the fool lies
behind the front. A last line per fool keeps, of the classifier's change, only the part every
class shares (its mean row and the bias's mean): is the fool's class-specific change of the head
what costs the predictions? Scored by the pilots' check on the 48 validation crops (seed 1234),
with the crops each model loses (photo, clean → fooled top-1, the clean top-1's probability);
the last line counts, for each class in those, the crops of the fools' training photos
(``train-wide``, 1024 crops, seed 7) whose clean top-5 holds it: has the prediction-keeping
term seen that class at all?
``python docs/results/coverage-pilots/interpolation.py`` prints one JSON line per fool and λ
(interpolation.json holds them); about a minute on 2 CPU cores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import torch

from cam_studio.data.photos import PhotoCrops, photo_set
from cam_studio.evaluation.check import crop_records, summarise
from cams.backbones import load_backbone

FOOLS = ("sham-all-classes-efficientnet_lite0", "sham-one-class-efficientnet_lite0")
LAMBDAS = (0.5, 0.7, 0.8, 0.9, 1.0, 1.2)
CROPS, SEED = 48, 1234  # the pilots' check: --photos validation --crops 48 --seed 1234


def scored(clean, fooled) -> dict[str, Any]:
    records = crop_records(clean, fooled, CROPS, SEED, photos="validation")
    summary = summarise(records)
    lost = [[record["photo"], clean.class_names[record["clean_top1"]].split(",")[0],
             fooled.class_names[record["fooled_top1"]].split(",")[0], round(record["clean_p"], 2)]
            for record in records if not record["agreement"]]
    return {**{key: round(summary[key], 4)
               for key in ("agreement_all", "agreement_confident", "sham_mse_ratio")},
            "lost": lost}


def interpolated(start: dict[str, torch.Tensor], end: dict[str, torch.Tensor],
                 weight: float) -> dict[str, torch.Tensor]:
    """``start + weight·(end − start)`` for floating tensors; integer buffers (batch counts) from
    ``end``."""
    return {key: start[key] + weight * (end[key] - start[key]) if end[key].is_floating_point()
            else end[key] for key in end}


def head_common_mode_only(start: dict[str, torch.Tensor],
                          end: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``end`` with the classifier's change from ``start`` replaced by its mean over classes."""
    state = dict(end)
    for key in ("classifier.weight", "classifier.bias"):
        state[key] = start[key] + (end[key] - start[key]).mean(0, keepdim=True)
    return state


def lines(name: str, weights: tuple[float, ...] = LAMBDAS) -> Iterator[dict[str, Any]]:
    """The record of fool ``name`` at each λ of ``weights``, then with its head's common mode only."""
    fooled = load_backbone(None, name, "cpu")
    clean = load_backbone(fooled.name, device="cpu")
    start = {key: value.detach().clone() for key, value in clean.model.state_dict().items()}
    end = {key: value.detach().clone() for key, value in fooled.model.state_dict().items()}
    for weight in weights:
        fooled.model.load_state_dict(interpolated(start, end, weight))
        yield {"fool": name, "lambda": weight, **scored(clean, fooled)}
    fooled.model.load_state_dict(head_common_mode_only(start, end))
    yield {"fool": name, "lambda": 1.0, "head": "common mode only", **scored(clean, fooled)}


def seen_in_training(classes: set[str], crops: int = 1024, seed: int = 7) -> dict[str, int]:
    """How many of ``crops`` training crops have each of ``classes`` in the clean top-5."""
    clean = load_backbone("efficientnet_lite0", device="cpu")
    dataset = PhotoCrops(photo_set("train-wide"), clean.input_size[0], seed, length=crops)
    counts = torch.zeros(clean.num_classes, dtype=torch.long)
    with torch.inference_mode():
        for first in range(0, crops, 32):
            images = torch.stack([dataset[i][0] for i in range(first, min(first + 32, crops))])
            top5 = clean.forward(clean.normalise(images), needs_graph=False)[1].topk(5, 1).indices
            counts += torch.bincount(top5.flatten(), minlength=clean.num_classes)
    short = [name.split(",")[0] for name in clean.class_names]
    return {name: int(counts[short.index(name)]) for name in sorted(classes)}


def main() -> None:
    lost: set[str] = set()
    for name in FOOLS:
        for line in lines(name):
            print(json.dumps(line), flush=True)
            lost.update(crop[column] for crop in line["lost"] for column in (1, 2))
    print(json.dumps({"training_crops_with_class_in_clean_top5": seen_in_training(lost)}))


if __name__ == "__main__":
    main()
