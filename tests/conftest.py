"""Shared fixtures: the real default backbone, small random-init CNNs, and real photos."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from PIL import Image
from skimage import data

from cam_studio.benchmarks.serving import serving_app
from cams import load_backbone
from cams.allocator import reuse_freed_memory
from cams.checkpoints import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
# The engine's fixtures run on the CPU (as in CI); CAMS_TEST_DEVICE=cuda runs them on a GPU.
DEVICE = os.environ.get("CAMS_TEST_DEVICE", "cpu")
reuse_freed_memory()  # as the command lines do (cams.allocator): CPU work a quarter faster


@pytest.fixture(scope="session", autouse=True)
def _pytest_temporary_folder_first(tmp_path_factory):
    """pytest's folder is placed before a client moves this process's temporary folder into its
    scratch folder (``downloads``), so the folders of failed tests are kept after the run. The
    processes the tests start put their temporary files in it too (torchrun leaves a
    ``torchelastic_*`` folder per launch), and pytest removes it with its old runs."""
    system = tmp_path_factory.getbasetemp() / "system-temp"
    system.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(system))
        yield


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


@pytest.fixture(scope="session")
def registry(tmp_path_factory, lite0):
    """A checkpoint registry holding the clean lite0 weights in half precision, as "lite0-half"."""
    directory = tmp_path_factory.mktemp("checkpoints")
    save_checkpoint(lite0.model.state_dict(), {"backbone": "efficientnet_lite0"}, "lite0-half",
                    directory, half=True)
    return directory


@contextmanager
def running_app(registry: Path, *arguments: str):
    """The real app (``cam_studio.benchmarks.serving``) with the test registry, until the block
    ends; yields its loopback URL."""
    with serving_app(*arguments, environment={"CAMS_CHECKPOINTS": str(registry)}) as (url, _):
        yield url


@pytest.fixture(scope="session")
def app_url(registry):
    with running_app(registry) as url:
        yield url
