"""torchrun on this CPU: two Gloo processes give what one process gives, and survive a kill.

Each test starts real ``torchrun`` runs (``python -m torch.distributed.run --standalone``) of the
same command lines a user types, on the shipped tiny synthetic checkpoints.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from safetensors.torch import load_file

from cam_studio.evaluation.tables.susceptibility import DEFAULT_METHODS as SUSCEPTIBILITY_METHODS
from fooling.train import resume_paths

ROOT = Path(__file__).resolve().parents[1]
PAIR = "synthetic-binary-clean:synthetic-binary-sham"
IMAGES = 24  # 12 per rank: six batches of two, enough to kill rank 1 half-way
EVALUATE = ["-m", "cam_studio", "evaluate", "--images", f"synthetic:binary:{IMAGES}", "--pairs", PAIR,
            "--tables", "susceptibility", "--batch-size", "2"]
TRAIN = ["-m", "cam_studio", "train", "--name", "ddp", "--backbone", "tiny_resnet",
         "--init", "synthetic-binary-clean", "--loss", "sham", "--data", "synthetic:binary",
         "--batch-size", "8", "--val-size", "16"]


def command(arguments: list[str], processes: int) -> list[str]:
    if processes == 1:
        return [sys.executable, *arguments]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={processes}", *arguments]


def environment(marker: str = "") -> dict[str, str]:
    return {**os.environ, "CAMS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CAMS_TEST_RUN": marker}


def run(arguments: list[str], processes: int) -> None:
    result = subprocess.run(command(arguments, processes), cwd=ROOT, env=environment(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def records(out: Path, table: str = "susceptibility") -> list[dict[str, str]]:
    with (out / "records" / f"{table}.csv").open() as handle:
        return list(csv.DictReader(handle))


def keyed(rows: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    return {(row["image"], row["method"]): row for row in rows}


@pytest.fixture(scope="module")
def single_process(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one") / "eval"
    run([*EVALUATE, "--out", str(out)], 1)
    return out


def test_two_processes_evaluate_what_one_process_evaluates(single_process, tmp_path):
    out = tmp_path / "eval"
    run([*EVALUATE, "--out", str(out)], 2)
    assert sorted(path.name for path in (out / "records").iterdir()) == ["susceptibility.csv"]
    one, two = records(single_process), records(out)
    # every image × every compared method a CNN has (FinerCAM and the anchors' maps too; not
    # LeGrad, for transformers)
    assert len(two) == len(one) == IMAGES * (len(SUSCEPTIBILITY_METHODS) - 1) == IMAGES * 24
    assert keyed(two) == keyed(one)  # every value, bit for bit
    table = "susceptibility_synthetic-binary-clean_vs_synthetic-binary-sham.md"
    assert (out / table).read_text() == (single_process / table).read_text()


def processes_of(marker: str, rank: str | None = None) -> list[int]:
    """The pids of this test's run (``CAMS_TEST_RUN=marker``): the launcher and its workers (torchrun
    starts each worker in a session of its own), or only the worker of ``rank``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            variables = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if f"CAMS_TEST_RUN={marker}".encode() in variables and (
                rank is None or f"RANK={rank}".encode() in variables):
            found.append(int(entry.name))
    return found


def kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(condition, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_killed_rank_is_resumed_without_duplicates(single_process, tmp_path):
    out, marker = tmp_path / "eval", uuid.uuid4().hex
    shard = out / "records" / "susceptibility.rank1.csv"
    launcher = subprocess.Popen(command([*EVALUATE, "--out", str(out)], 2), cwd=ROOT,
                                env=environment(marker), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        # Let rank 1 write a few batches (each one a single append of its images × the methods).
        wait_for(lambda: shard.exists() and shard.read_text().count("\n") > 1 + 3 * 24)
        kill(processes_of(marker, "1"))
        launcher.wait(timeout=120)
    finally:
        kill(processes_of(marker))
    assert launcher.returncode != 0  # torchrun saw its worker die
    written = keyed([row for path in sorted((out / "records").glob("*.csv"))
                     for row in csv.DictReader(path.open())])
    assert 3 * 24 <= len(written) < IMAGES * 24  # some work was done, not all of it

    run([*EVALUATE, "--out", str(out)], 2)
    final = records(out)
    assert max(Counter((row["image"], row["method"]) for row in final).values()) == 1
    assert keyed(final) == keyed(records(single_process))
    for key, row in written.items():  # the killed run's rows were kept, not recomputed
        assert keyed(final)[key] == row


def test_two_processes_train_the_weights_of_one_with_the_same_global_batch(tmp_path):
    run([*TRAIN, "--steps", "3", "--lr", "0.05", "--out", str(tmp_path / "one")], 1)
    run([*TRAIN, "--steps", "3", "--lr", "0.05", "--out", str(tmp_path / "two")], 2)
    one = load_file(str(tmp_path / "one" / "ddp.safetensors"))
    two = load_file(str(tmp_path / "two" / "ddp.safetensors"))
    assert one.keys() == two.keys()
    for key in one:
        assert (one[key].float() - two[key].float()).abs().max() <= 1e-5, key
    meta_one = json.loads((tmp_path / "one" / "ddp.json").read_text())
    meta_two = json.loads((tmp_path / "two" / "ddp.json").read_text())
    assert (meta_one["processes"], meta_two["processes"]) == (1, 2)
    assert meta_two["command"].startswith("torchrun --nproc_per_node=2")
    # Validation split over two processes, gathered: the same images, the same numbers.
    assert meta_two["metrics"]["images"] == meta_one["metrics"]["images"] == 16
    for name in ("accuracy", "auroc", "salience_mse", "cam_entropy_nats", "pointing_game"):
        assert meta_two["metrics"][name] == pytest.approx(meta_one["metrics"][name], abs=1e-5)


def test_a_two_process_run_resumes_in_one_process(tmp_path):
    # Few steps after the resume: SGD here is chaotic (a 1e-7 change of the weights at step 8
    # grows to 2e-3 by step 80), and two processes sum their gradients in another order.
    steps = ["--steps", "24", "--save-every", "2", "--lr", "0.01"]
    run([*TRAIN, *steps, "--out", str(tmp_path / "straight")], 1)

    out, marker = tmp_path / "resumed", uuid.uuid4().hex
    state = resume_paths_for(out)
    launcher = subprocess.Popen(command([*TRAIN, *steps, "--out", str(out)], 2), cwd=ROOT,
                                env=environment(marker), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: state.exists() and json.loads(state.read_text() or "{}").get("step", 0) >= 4)
        kill(processes_of(marker))  # the whole run, as a lost machine would
        launcher.wait(timeout=60)
    finally:
        kill(processes_of(marker))
    stopped_at = json.loads(state.read_text())["step"]
    assert 4 <= stopped_at < 24 and not (out / "ddp.safetensors").exists()

    run([*TRAIN, *steps, "--out", str(out), "--resume"], 1)
    straight = load_file(str(tmp_path / "straight" / "ddp.safetensors"))
    resumed = load_file(str(out / "ddp.safetensors"))
    for key in straight:
        assert (straight[key].float() - resumed[key].float()).abs().max() <= 1e-4, key


def resume_paths_for(folder: Path) -> Path:
    from fooling.config import TrainConfig
    return resume_paths(TrainConfig(name="ddp", directory=str(folder)))[1]
