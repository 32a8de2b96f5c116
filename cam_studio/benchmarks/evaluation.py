"""Throughput of the similarity table against plain inference over the same images.

Both loops read the same images from the same source, preprocess them the same way and run in
batches; one runs the model's forward pass in inference mode, the other the whole similarity
table (the one-pass engine for GradCAM(++) and the six DiffGradCAM variants, the MSEs, and the
rows appended to disk). The runs alternate (forward, table, forward, table) and each side keeps
its faster run.
"""

from __future__ import annotations

import sys
import time

import torch

from cam_studio.benchmarks.measure import peak_rss_mb, scratch_folder, status_mb
from cam_studio.data.sources import samples
from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.records import RecordFile
from cam_studio.evaluation.run import batches, inputs_of, run_similarity
from cams.backbones import REGISTRY, Backbone, load_backbone


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
        out = scratch_folder("cams-throughput-")
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


def load_named(name: str, device: str | None) -> Backbone:
    """A backbone by name with its pretrained weights, or a registry checkpoint by name (e.g. the
    shipped synthetic ones)."""
    return load_backbone(name, device=device) if name in REGISTRY else load_backbone(
        None, name, device)


def similarity_memory(images: str = "synthetic:binary:50000",
                      backbone_name: str = "efficientnet_lite0", batch: int = 32,
                      device: str | None = None, samples_every: int = 5000) -> dict:
    """Resident memory while the similarity table runs over many images: it must stay flat
    (rows go to disk as they are computed; images are read one batch at a time).
    ``backbone_name`` may also name a registry checkpoint."""
    backbone = load_named(backbone_name, device)
    out = scratch_folder("cams-memory-")
    trace: list[tuple[int, float]] = [(0, status_mb("VmRSS"))]
    finished = [0]

    def progress(_what: str, done: int, _total: int | None) -> None:
        finished[0] = done
        if done // samples_every > trace[-1][0] // samples_every:
            trace.append((done, status_mb("VmRSS")))
            print(f"{done} images: {trace[-1][1]:.0f} MB resident", file=sys.stderr, flush=True)

    start = time.perf_counter()
    run_similarity(EvaluationConfig(out=out, images=images, batch=batch), backbone, progress)
    seconds = time.perf_counter() - start
    if trace[-1][0] != finished[0]:
        trace.append((finished[0], status_mb("VmRSS")))
    records = RecordFile(out / "records", "similarity")
    return {"images": images, "backbone": backbone_name, "batch": batch,
            "device": str(backbone.device), "seconds": seconds,
            "images_per_s": trace[-1][0] / seconds if trace[-1][0] else 0.0,
            "rss_mb_by_images": trace, "peak_rss_mb": peak_rss_mb(),
            "records_mb": records.path.stat().st_size / 2**20,
            "rows": sum(1 for _ in records.rows())}
