"""Shared fixtures: the real default backbone, small random-init CNNs, and real photos."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from PIL import Image
from skimage import data

from cams import load_backbone
from cams.checkpoints import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
# The engine's fixtures run on the CPU (as in CI); CAMS_TEST_DEVICE=cuda runs them on a GPU.
DEVICE = os.environ.get("CAMS_TEST_DEVICE", "cpu")


@pytest.fixture(scope="session")
def lite0():
    """The default backbone with its real ImageNet weights (on the CPU unless CAMS_TEST_DEVICE)."""
    return load_backbone("efficientnet_lite0", device=DEVICE)


@pytest.fixture(scope="session")
def resnet_random():
    """A small random-init ResNet (GAP → Linear head)."""
    torch.manual_seed(0)
    return load_backbone("resnet18", weights="random", device=DEVICE)


@pytest.fixture(scope="session")
def convnext_random():
    """A small random-init ConvNeXt: its head normalises after pooling (not GAP → Linear)."""
    torch.manual_seed(0)
    return load_backbone("convnext_atto", weights="random", device=DEVICE)


@pytest.fixture(scope="session")
def chelsea() -> Image.Image:
    return Image.fromarray(data.chelsea())


@pytest.fixture(scope="session")
def coffee() -> Image.Image:
    return Image.fromarray(data.coffee())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def registry(tmp_path_factory, lite0):
    """A checkpoint registry holding the clean lite0 weights in half precision, as "lite0-half"."""
    directory = tmp_path_factory.mktemp("checkpoints")
    save_checkpoint(lite0.model.state_dict(), {"backbone": "efficientnet_lite0"}, "lite0-half",
                    directory, half=True)
    return directory


@contextmanager
def running_app(registry: Path, *arguments: str):
    """``python app.py --port FREE *arguments`` with the test registry, until the block ends;
    yields its loopback URL."""
    port = free_port()
    env = {**os.environ, "CAMS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "CAMS_CHECKPOINTS": str(registry)}
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *arguments],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"app exited: {process.stdout.read()[-2000:]}")
            time.sleep(0.5)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def app_url(registry):
    with running_app(registry) as url:
        yield url
