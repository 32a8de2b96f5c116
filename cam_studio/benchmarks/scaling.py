"""1 vs N processes on this machine: the same evaluation and training command lines, plain and
prefixed with ``torchrun --standalone --nproc_per_node N`` (``python -m cam_studio bench --scaling N``).

Each run is timed end to end as a user runs it (process start, imports and model loading
included), in a fresh output folder; the numbers go to BENCHMARKS.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cam_studio.benchmarks.measure import scratch_folder

ROOT = Path(__file__).resolve().parents[2]
EVALUATE = ["-m", "cam_studio", "evaluate", "--images", "synthetic:binary:192", "--pairs",
            "synthetic-binary-clean:synthetic-binary-sham", "--tables", "susceptibility",
            "--batch-size", "8"]
TRAIN = ["-m", "cam_studio", "train", "--name", "scaling", "--backbone", "tiny_resnet", "--init",
         "synthetic-binary-clean", "--loss", "sham", "--data", "synthetic:binary", "--steps", "150",
         "--batch-size", "64", "--lr", "0.01", "--val-size", "128"]


def timed_run(arguments: list[str], processes: int) -> float:
    out = str(scratch_folder("cams-scaling-"))
    launcher = ([sys.executable] if processes == 1 else
                [sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc_per_node={processes}"])
    target = ["--out", out]
    start = time.perf_counter()
    subprocess.run([*launcher, *arguments, *target], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "CAMS_OFFLINE": "1", "TMPDIR": out})  # torchrun's logs
    return time.perf_counter() - start


def scaling(processes: int = 2, rounds: int = 2) -> dict:
    """Seconds for each job with 1 and with ``processes`` processes (best of ``rounds``)."""
    results = {}
    for name, arguments in (("evaluate", EVALUATE), ("train", TRAIN)):
        times: dict[int, list[float]] = {1: [], processes: []}
        for _ in range(rounds):
            for count in times:
                times[count].append(timed_run(arguments, count))
        one, many = min(times[1]), min(times[processes])
        results[name] = {"command": " ".join(["python", *arguments]), "seconds_1": one,
                         f"seconds_{processes}": many, "speed_up": one / many}
    return {"processes": processes, "cores": os.cpu_count(), **results}
