"""Throughput of the similarity table against plain inference over the same images.

Both loops read the same images from the same source, preprocess them the same way and run in
batches; one runs the model's forward pass in inference mode, the other the whole similarity
table (the one-pass engine for GradCAM(++) and the six DiffGradCAM variants, the MSEs, and the
rows appended to disk). The runs alternate (forward, table, forward, table) and each side keeps
its faster run.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from cams.backbones import load_backbone
from evaluation.run import EvaluationConfig, batches, inputs_of, run_similarity
from evaluation.sources import samples


def similarity_throughput(images: str = "crops:64", backbone_name: str = "efficientnet_lite0",
                          batch: int = 16, device: str | None = None, rounds: int = 2) -> dict:
    backbone = load_backbone(backbone_name, device=device)
    count = sum(1 for _ in samples(images))

    def forward_pass() -> float:
        start = time.perf_counter()
        for group in batches(samples(images), batch):
            with torch.inference_mode():
                backbone.model(inputs_of(backbone, group))
        return time.perf_counter() - start

    def table() -> float:
        out = Path(tempfile.mkdtemp(prefix="cams-throughput-"))
        start = time.perf_counter()
        run_similarity(EvaluationConfig(out=out, images=images, batch=batch), backbone,
                       lambda *_: None)
        return time.perf_counter() - start

    forward_s, table_s = [], []
    for _ in range(rounds):
        forward_s.append(forward_pass())
        table_s.append(table())
    return {"images": images, "count": count, "backbone": backbone_name, "batch": batch,
            "device": str(backbone.device),
            "forward_images_per_s": count / min(forward_s),
            "similarity_images_per_s": count / min(table_s),
            "ratio": min(forward_s) / min(table_s)}
