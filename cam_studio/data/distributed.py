"""Running under ``torchrun``: which process handles which images, and PyTorch's process group.

It sits in the data layer as ``torch.utils.data.DistributedSampler`` does in PyTorch's: the
split of the work is a split of the data (item i is process ``i mod N``'s).

``torchrun --nproc_per_node N [--nnodes M ...] -m fooling train ...`` (or ``-m cams evaluate``)
starts N processes per machine with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set; ``join``
turns them into one process group: NCCL when the processes use GPUs (one GPU each, ``cuda:
LOCAL_RANK``), Gloo on CPUs. Started without torchrun, everything here is the one-process case
and touches no process group, so the single-process commands stay exactly as they are.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from cams.errors import UserInputError


@dataclass(frozen=True)
class Process:
    """This process's place among the ``world`` processes of a run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes shared files and reports progress."""
        return self.rank == 0

    def owns(self, index: int) -> bool:
        """Whether item ``index`` of a list shared by all processes is this process's to do
        (interleaved, like ``torch.utils.data.DistributedSampler``)."""
        return index % self.world == self.rank


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def current() -> Process:
    """This process (rank 0 of 1 when no process group has been joined)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Process()
    return Process(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def join(device: str | None, timeout: timedelta = timedelta(minutes=30)) -> str | None:
    """Join torchrun's process group (a no-op without torchrun); returns this process's device.

    ``device`` None or "cuda" on a GPU machine means this process's own GPU, ``cuda:LOCAL_RANK``;
    the backend is NCCL for GPUs and Gloo for CPUs.
    """
    if not launched_by_torchrun() or (dist.is_available() and dist.is_initialized()):
        return device
    if not dist.is_available():
        raise UserInputError("this PyTorch build has no torch.distributed: run without torchrun")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_gpu = (device is None and torch.cuda.is_available()) or (device or "").startswith("cuda")
    if use_gpu:
        if local_rank >= torch.cuda.device_count():
            raise UserInputError(f"process {local_rank} of this machine has no GPU of its own "
                                 f"({torch.cuda.device_count()} visible): give --nproc_per_node "
                                 "at most the number of GPUs, or --device cpu")
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if use_gpu else "gloo", timeout=timeout,
                            **({"device_id": torch.device(device)} if use_gpu else {}))
    return device or "cpu"


def leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if current().world > 1:
        dist.barrier()


def gather(value: Any) -> list[Any]:
    """Every process's ``value``, in rank order (just ``[value]`` in one process)."""
    if current().world == 1:
        return [value]
    values: list[Any] = [None] * current().world
    dist.all_gather_object(values, value)
    return values


def average(values: dict[str, float]) -> dict[str, float]:
    """The mean of each number over the processes (the numbers themselves in one process)."""
    if current().world == 1 or not values:
        return values
    keys = sorted(values)
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([float(values[key]) for key in keys], dtype=torch.float64,
                          device=device)
    dist.all_reduce(tensor)
    return dict(zip(keys, (tensor / current().world).tolist()))


def launch_command(arguments: list[str]) -> str:
    """The command line that started this run, with its torchrun prefix when it has one."""
    if not launched_by_torchrun():
        return shlex.join(["python", *arguments])
    per_node = os.environ.get("LOCAL_WORLD_SIZE", "1")
    nodes = int(os.environ["WORLD_SIZE"]) // max(1, int(per_node))
    return shlex.join(["torchrun", f"--nproc_per_node={per_node}", f"--nnodes={nodes}",
                       *arguments])
