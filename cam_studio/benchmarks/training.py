"""``python -m cam_studio bench --training``: the cost of a SHAM training step against a plain one.

Per backbone, on one fixed batch: a plain step (forward, cross-entropy, backward, SGD) and a SHAM
step (the engine's differentiable GradCAM of the true class and the mean rival, the Baseline loss
with h = SHAM, backward, SGD), BatchNorm frozen as when fooling a pretrained model. The steps are
timed in interleaved pairs; the ratio is the median of the pairs' ratios. A GAP → Linear head
needs no double back-propagation below the head (the CAM's gradient is the classifier's row); a
head that normalises after pooling (ConvNeXt) does.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F

from cam_studio.benchmarks.measure import machine_description, weights_for
from cam_studio.data.items import NO_MASK
from cam_studio.evaluation.timing import timed
from cams.backbones import load_backbone, resolve_device
from cams.engine import true_false_maps
from fooling.objectives import OBJECTIVES, salience_loss
from fooling.sham import DEFAULT_ENTROPY_NATS

CASES = (("efficientnet_lite0", 16, 224), ("tiny_resnet", 32, 64), ("convnext_atto", 8, 224))


def bench_step(name: str, batch: int, size: int, repeats: int, device: torch.device) -> dict:
    weights = weights_for(name)
    backbone = load_backbone(name, weights=weights, device=device)
    model = backbone.model.eval()  # BatchNorm frozen
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)
    inputs = torch.randn(batch, 3, size, size, device=device).contiguous(
        memory_format=backbone.memory_format)
    labels = torch.randint(backbone.num_classes, (batch,), device=device)

    def plain() -> None:
        loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    sham = OBJECTIVES["sham"]

    def sham_step() -> None:
        t, f, logits, _ = true_false_maps(backbone, inputs, "GradCAM", labels)
        no_maps = torch.full((batch, size, size), NO_MASK, device=device)  # the SHAM needs none
        h = sham.salience(no_maps, tuple(t.shape[-2:]), DEFAULT_ENTROPY_NATS)
        loss, _ = salience_loss(sham, logits, t, f, h, labels=labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    plain(), sham_step()  # warm-up
    plain_ms, sham_ms = [], []
    for _ in range(repeats):
        plain_ms.append(timed(plain, device))
        sham_ms.append(timed(sham_step, device))
    return {"backbone": name, "weights": "pretrained" if weights is None else "random init",
            "linear_head": backbone.linear_head, "batch": batch, "size": size,
            "plain_step_ms": statistics.median(plain_ms), "sham_step_ms": statistics.median(sham_ms),
            "sham_over_plain": statistics.median(s / p for s, p in zip(sham_ms, plain_ms)),
            "sham_images_per_s": batch / statistics.median(sham_ms) * 1000, "repeats": repeats}


def markdown(results: dict) -> str:
    lines = [f"Machine: {results['machine']}", "",
             "| backbone | head | batch × px | plain step | SHAM step | SHAM / plain | SHAM images/s |",
             "|---|---|---|---|---|---|---|"]
    for row in results["steps"]:
        head = "GAP → Linear" if row["linear_head"] else "pool → norm → Linear (double backprop)"
        lines.append(f"| {row['backbone']} ({row['weights']}) | {head} | {row['batch']} × "
                     f"{row['size']} | {row['plain_step_ms']:.0f} ms | {row['sham_step_ms']:.0f} ms"
                     f" | {row['sham_over_plain']:.2f}× | {row['sham_images_per_s']:.1f} |")
    return "\n".join(lines)


def run_bench(repeats: int, device_name: str | None, output: Path | None) -> int:
    device = resolve_device(device_name)
    results = {"machine": machine_description(device),
               "steps": [bench_step(name, batch, size, repeats, device)
                         for name, batch, size in CASES]}
    print(markdown(results))
    if output is not None:
        output.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {output}")
    return 0
