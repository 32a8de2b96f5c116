"""Shared fixtures: the real default backbone, small random-init CNNs, and real photos."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from skimage import data

from cams import load_backbone


@pytest.fixture(scope="session")
def lite0():
    """The default backbone with its real ImageNet weights, on the CPU."""
    return load_backbone("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="session")
def resnet_random():
    """A small random-init ResNet (GAP → Linear head)."""
    torch.manual_seed(0)
    return load_backbone("resnet18", weights="random", device="cpu")


@pytest.fixture(scope="session")
def convnext_random():
    """A small random-init ConvNeXt: its head normalises after pooling (not GAP → Linear)."""
    torch.manual_seed(0)
    return load_backbone("convnext_atto", weights="random", device="cpu")


@pytest.fixture(scope="session")
def chelsea() -> Image.Image:
    return Image.fromarray(data.chelsea())


@pytest.fixture(scope="session")
def coffee() -> Image.Image:
    return Image.fromarray(data.coffee())
