"""The checkpoint registry: round trip, broken entries, and atomic writes under kill -9."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from cams.checkpoints import (
    CHECKPOINTS_ENV,
    STALE_TMP_S,
    find_checkpoint,
    list_checkpoints,
    save_checkpoint,
    tidy_registry,
)
from cams.errors import UserInputError


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path))
    return tmp_path


def test_round_trip(registry):
    state = {"weight": torch.randn(4, 3), "steps": torch.tensor(7)}
    entry = save_checkpoint(state, {"backbone": "tiny_resnet", "recipe": {"loss": "sham"}}, "run-1",
                            half=True)
    assert entry.weights_path == registry / "run-1.safetensors"
    loaded = load_file(entry.weights_path)
    assert loaded["weight"].dtype == torch.float16 and loaded["steps"].dtype == torch.int64
    assert torch.allclose(loaded["weight"].float(), state["weight"], atol=1e-2)
    record = json.loads((registry / "run-1.json").read_text())
    assert record["weights_sha256"] == hashlib.sha256(entry.weights_path.read_bytes()).hexdigest()
    assert record["dtype"] == "float16" and record["backbone"] == "tiny_resnet"
    assert find_checkpoint("run-1").label == "run-1 (sham loss)"
    assert [e.name for e in list_checkpoints("tiny_resnet")[0] if not e.shipped] == ["run-1"]
    assert list_checkpoints("resnet50")[0] == []
    with pytest.raises(UserInputError, match="already exists"):
        save_checkpoint(state, {"backbone": "tiny_resnet"}, "run-1")
    with pytest.raises(UserInputError, match="is for backbone tiny_resnet"):
        find_checkpoint("run-1", backbone="resnet50")
    with pytest.raises(UserInputError, match="not allowed"):
        save_checkpoint(state, {"backbone": "tiny_resnet"}, "../escape")


def test_broken_entries_are_skipped_and_reported(registry):
    save_checkpoint({"w": torch.ones(2)}, {"backbone": "b"}, "good")
    save_checkpoint({"w": torch.ones(2)}, {"backbone": "b"}, "truncated")
    (registry / "truncated.safetensors").write_bytes(b"\x00" * 10)
    save_checkpoint({"w": torch.ones(2)}, {"backbone": "b"}, "orphan")
    (registry / "orphan.safetensors").unlink()
    (registry / "garbage.json").write_text("{not json")
    entries, problems = list_checkpoints()
    assert [entry.name for entry in entries if not entry.shipped] == ["good"]
    joined = "\n".join(problems)
    assert "truncated.json: weights file truncated.safetensors has 10 bytes" in joined
    assert "orphan.json: weights file orphan.safetensors is missing" in joined
    assert "garbage.json: unreadable metadata" in joined


WRITER = """
import sys, torch
from cams.checkpoints import save_checkpoint
state = {f"t{i}": torch.full((1 << 20,), float(i)) for i in range(24)}  # 96 MB per save
for round in range(1000):
    save_checkpoint(state, {"backbone": "b", "round": round}, "busy", sys.argv[1],
                    overwrite=True)
    print(round, flush=True)
"""


def test_kill_during_writes_never_lists_a_half_written_checkpoint(registry):
    """kill -9 a process that rewrites one checkpoint over and over, at several moments: the
    listing must then hold either nothing or one checkpoint whose weights match its metadata (a
    kill between the weights' and the metadata's rename is reported as broken, not listed)."""
    for delay in (0.3, 0.9, 1.6, 2.4):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(registry)],
                                  stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        entries, problems = list_checkpoints()
        assert all("SHA-256" in problem or "weights without metadata" in problem
                   for problem in problems), problems
        for entry in [entry for entry in entries if not entry.shipped]:
            digest = hashlib.sha256(entry.weights_path.read_bytes()).hexdigest()
            assert digest == entry.metadata["weights_sha256"]
            assert len(load_file(entry.weights_path)) == 24
    leftovers = [path.name for path in registry.iterdir() if path.name.endswith(".tmp")]
    # A killed writer may leave a temporary file; it is never listed, and it is hidden.
    assert all(name.startswith(".") for name in leftovers)
    # The app's start tidies them once they are an hour old (a younger one may be a live save).
    assert tidy_registry(registry) == []
    removed = tidy_registry(registry, now=time.time() + STALE_TMP_S + 1)
    assert sorted(path.name for path in removed) == sorted(leftovers)
    assert not [path for path in registry.iterdir() if path.name.endswith(".tmp")]


def test_weights_without_metadata_are_listed_as_a_problem(registry):
    save_checkpoint({"w": torch.zeros(2)}, {"backbone": "resnet18"}, "kept")
    (registry / "kept.json").unlink()  # a save killed between its two renames, on a first save
    entries, problems = list_checkpoints()
    assert "kept" not in {entry.name for entry in entries}
    assert [problem for problem in problems if "kept.safetensors" in problem] == [
        f"{registry / 'kept.safetensors'}: weights without metadata (a save interrupted between "
        "its two files): save it again, or delete it"]


def test_the_state_dict_digest_is_sha256_of_names_and_bytes_and_follows_the_weights():
    import hashlib

    from torch import nn

    from cams.checkpoints import state_dict_sha256
    model = nn.Linear(3, 2)
    expected = hashlib.sha256()
    for name in ("weight", "bias"):
        expected.update(name.encode())
        expected.update(getattr(model, name).detach().numpy().tobytes())
    assert state_dict_sha256(model) == expected.hexdigest()
    with torch.no_grad():
        model.bias.add_(1)
    assert state_dict_sha256(model) != expected.hexdigest()  # (computed again, never cached)
