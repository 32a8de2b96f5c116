"""Is the SHAM CAM target (run13.sh) reachable without moving a prediction? On the clean Lite0's
features of the 48 validation crops the pilots are checked on (seed 1234), move each crop's
features to the target of its clean top-1 class c along c's classifier row alone, A* = clamp(A +
(t* − t)·w_c/‖w_c‖², 0, 6) (ReLU6's range), and measure what the check measures: top-1 agreement
with the clean model (all crops, and the confident ones, p ≥ 0.5) and GradCAM's MSE to the SHAM,
moved ÷ clean. For every class at once the same construction needs the direction ``d`` that
raises every logit alike (``W d = 1``: least squares with a 1e-3 ridge), added as ``μ·d`` with
``μ = strength · 99th percentile of |t| · (SHAM − mean SHAM)``, as the constructed fool does in
a channel of its own. Then the passive feature target of ``--blend-weight`` (run14.sh,
``fooling.objectives.sham_feature_target``): the features blended with a SHAM-shaped copy of
their spatial means at strength ρ (``target`` "blend", every class at once), or moved along the
top-1's row alone (``classes`` 1). ``python docs/results/coverage-pilots/target_feasibility.py``
prints one JSON line per case (target_feasibility.json holds them; ``classes`` 1: the image's
class, 1000: every class)."""

from __future__ import annotations

import json

import torch

from cam_studio.data.photos import PhotoCrops, photo_set
from cams.backbones import load_backbone
from cams.methods import weighted_activations
from fooling.objectives import sham_cam_target, sham_feature_target
from fooling.sham import DEFAULT_ENTROPY_NATS, sham_distance, sham_mask

CROPS, SEED = 48, 1234  # the pilots' check: --photos validation --crops 48 --seed 1234


@torch.no_grad()
def main() -> None:
    clean = load_backbone("efficientnet_lite0", device="cpu")
    crops = PhotoCrops(photo_set("validation"), clean.input_size[0], SEED, length=CROPS,
                       mosaics=False)
    images = torch.stack([crops[index][0] for index in range(CROPS)])
    features = clean.model.forward_features(clean.normalise(images))
    classifier = clean.model.get_classifier()
    logits = classifier(features.mean(dim=(2, 3)))
    top1, confident = logits.argmax(dim=1), logits.softmax(dim=1).amax(dim=1) >= 0.5
    rows = classifier.weight[top1]
    t = weighted_activations(features, rows)
    clean_distance = float(sham_distance(t.relu()).mean())

    def measured(target):
        """Which top-1 the moved features keep, and GradCAM's distance to the SHAM, moved ÷
        clean (GradCAM = ReLU(t) up to 1/Z at a GAP → Linear head; minmax-normalised)."""
        agree = classifier(target.mean(dim=(2, 3))).argmax(dim=1) == top1
        moved = float(sham_distance(weighted_activations(target, rows).relu()).mean())
        return agree, moved / clean_distance

    for strength in (0.5, 1.0, 2.0):
        moved = sham_cam_target(t, DEFAULT_ENTROPY_NATS, strength) - t
        agree, ratio = measured((features + moved[:, None] * (
            rows / rows.square().sum(1, keepdim=True))[:, :, None, None]).clamp(0, 6))
        print(json.dumps({"classes": 1, "strength": strength, "crops": CROPS,
                          "confident_crops": int(confident.sum()),
                          "agreement_all": float(agree.float().mean()),
                          "agreement_confident": float(agree[confident].float().mean()),
                          "sham_mse_ratio": ratio}))
    weight = classifier.weight
    direction = torch.linalg.solve(weight.T @ weight + 1e-3 * torch.eye(weight.shape[1]),
                                   weight.T @ torch.ones(weight.shape[0]))
    sham = sham_mask(*t.shape[-2:], DEFAULT_ENTROPY_NATS)
    extreme = t.flatten(1).abs().quantile(0.99, dim=1)[:, None, None]
    for strength in (1.0, 3.0):
        agree, ratio = measured((features + (strength * extreme * (sham - sham.mean()))[:, None]
                                 * direction[None, :, None, None]).clamp(0, 6))
        print(json.dumps({"classes": len(weight), "strength": strength, "crops": CROPS,
                          "direction_norm": float(direction.norm()),
                          "feature_mean": float(features.mean()),
                          "agreement_all": float(agree.float().mean()),
                          "sham_mse_ratio": ratio}))
    for strength, own in ((0.5, False), (0.7, False), (0.7, True), (1.0, True)):
        agree, ratio = measured(sham_feature_target(features, DEFAULT_ENTROPY_NATS, strength,
                                                    rows if own else None))
        print(json.dumps({"target": "blend", "classes": 1 if own else len(weight),
                          "strength": strength, "crops": CROPS,
                          "agreement_all": float(agree.float().mean()),
                          "agreement_confident": float(agree[confident].float().mean()),
                          "sham_mse_ratio": ratio}))


if __name__ == "__main__":
    main()
