"""What every benchmark measures with: the machine's description, resident memory (from /proc),
fresh child processes for peak-memory figures, the weights to time with, and scratch folders
that go when the benchmark's process ends."""

from __future__ import annotations

import atexit
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from cams.backbones import weights_available_offline


def scratch_folder(prefix: str) -> Path:
    """A new folder in the system's temporary folder, removed when this process exits: a
    benchmark's inputs, spaces, checkpoints (26 of 104 MB for ``--checkpoints``) and outputs
    were left in /tmp before."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def machine_description(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"CPU, {torch.get_num_threads()} torch threads")
    return (f"{cpu}; {os.cpu_count()} cores; {where}; torch {torch.__version__}; "
            f"Python {platform.python_version()}")


def weights_for(name: str) -> str | None:
    """Real weights where they are available offline, else random ones (timing is the same;
    seeded, so that every process of one benchmark holds the same random model)."""
    torch.manual_seed(0)
    return None if weights_available_offline(name) else "random"


def child(task: str, name: str, device: str, output: str | None = None) -> dict:
    """Run one measured job in a fresh process and return what it reports (JSON on stdout)."""
    command = [sys.executable, "-m", "cam_studio.benchmarks.engine", task, name, device,
               *([output] if output else [])]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child {task} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def status_mb(field: str, pid: int | str = "self") -> float:
    """A memory line of ``/proc/PID/status`` (``VmRSS``: resident now, ``VmHWM``: peak) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise OSError(f"/proc/{pid}/status has no {field}")


def peak_rss_mb() -> float:
    """This process's peak resident set. VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts
    from its parent's resident size at fork, which would charge the benchmark's own memory to it."""
    try:
        return status_mb("VmHWM")
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
