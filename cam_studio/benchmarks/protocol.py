"""The paper's ImageNet protocol (docs/imagenet-protocol.md), end to end on a small ImageFolder:
``python -m benchmarks.protocol OUT [--processes 2]``.

Builds an ImageNet-shaped tree (1,000 class folders in timm's class order; crops of the bundled
photos filed under the clean EfficientNet-Lite0's top-1 class, standing in for ImageNet's
labels: 48 in train/, 16 in val/), then runs the protocol's two commands with ``torchrun`` on
EfficientNet-Lite0 (the one backbone with weights offline) and times them. Writes
``OUT/protocol.json``; the report is ``OUT/eval/report.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cam_studio.benchmarks.measure import scratch_folder
from cam_studio.data.items import as_pil
from cam_studio.data.photos import PhotoCrops, photo_set
from cams.backbones import load_backbone

ROOT = Path(__file__).resolve().parents[2]
IMAGES = {"train": ("train", 48), "val": ("validation", 16)}  # folder: (photo set, crops)


def build_imagefolder(root: Path) -> None:
    clean = load_backbone("efficientnet_lite0", device="cpu")
    for part, (photos, count) in IMAGES.items():
        for index in range(clean.num_classes):
            (root / part / f"class{index:04d}").mkdir(parents=True, exist_ok=True)
        crops = PhotoCrops(photo_set(photos), 256, seed=7, length=count, mosaics=False)
        for index in range(count):
            image = crops[index][0]
            with torch.no_grad():
                label = int(clean.model(clean.normalise(F.interpolate(
                    image[None], size=clean.input_size, mode="bilinear"))).argmax())
            as_pil(image).save(root / part / f"class{label:04d}" / f"{photos}-{index}.jpg")


def commands(out: Path, processes: int) -> list[list[str]]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={processes}"]
    return [
        [*launcher, "-m", "cam_studio", "train", "--name", "lite0-sham", "--backbone",
         "efficientnet_lite0", "--loss", "sham", "--data", str(out / "imagenet"), "--epochs", "1",
         "--batch-size", "16", "--lr", "0.002", "--val-size", "16", "--save-every", "500", "--registry",
         str(out / "checkpoints")],
        [*launcher, "-m", "cam_studio", "evaluate", "--images", str(out / "imagenet" / "val"),
         "--limit", "16", "--backbones", "efficientnet_lite0", "--pairs", "clean:lite0-sham",
         "--tables", "similarity,susceptibility", "--out", str(out / "eval")],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    build_imagefolder(args.out / "imagenet")
    timings = {"build_s": time.perf_counter() - started, "processes": args.processes}
    environment = {**os.environ, "CAMS_OFFLINE": "1",
                   "CAMS_CHECKPOINTS": str(args.out / "checkpoints"),
                   "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                   # torchrun leaves a torchelastic_* folder of logs per launch in TMPDIR
                   "TMPDIR": str(scratch_folder("cams-protocol-"))}
    for name, command in zip(("train_s", "evaluate_s"), commands(args.out, args.processes)):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=environment, check=True)
        timings[name] = time.perf_counter() - started
        timings[name.replace("_s", "_command")] = " ".join(command[1:])
    (args.out / "protocol.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(json.dumps(timings, indent=2))


if __name__ == "__main__":
    main()
