"""Images steered towards every class (cam_studio.data.steered, ``--steered``): each is moved
towards its class by the model, they are made once and cached, every class comes in turn, and a
run mixes them into half of every batch."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch.nn import functional as F

from cam_studio.data.photos import PhotoCrops, photo_set
from cam_studio.data.steered import Interleaved, steer, steered_images
from cams.backbones import load_backbone
from cams.checkpoints import CHECKPOINTS_ENV
from cams.errors import UserInputError
from fooling.config import TrainConfig
from fooling.train import prepare


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path / "registry"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    backbone = load_backbone("tiny_resnet", "random", "cpu")
    backbone.model.eval()
    return backbone


def crops(count: int) -> PhotoCrops:
    return PhotoCrops(photo_set("train"), 32, seed=3, length=count)


def test_steering_raises_each_images_target_class_and_stays_an_image(model):
    images = torch.stack([crops(6)[i][0] for i in range(6)])
    targets = torch.arange(6) % model.num_classes
    moved = steer(model.model, model.normalise, images, targets, steps=5)

    def cross_entropy(pixels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return F.cross_entropy(model.model(model.normalise(pixels)), targets,
                                   reduction="none")

    assert (cross_entropy(moved) < cross_entropy(images)).all()
    assert moved.min() >= 0 and moved.max() <= 1
    assert not any(parameter.grad is not None and parameter.grad.abs().sum() > 0
                   for parameter in model.model.parameters())  # the model is not changed


def test_every_class_in_turn_made_once_then_read_from_the_cache(model, cache):
    classes = 5  # (of the model's outputs, the first five)
    count = 2 * classes + 1

    def made(key: str) -> torch.Tensor:
        return steered_images(model.model, model.normalise, crops(count), classes, count,
                              seed=0, steps=2, key=key)

    first = made("tiny")
    assert first.dtype == torch.uint8 and first.shape == (count, 3, 32, 32)
    [path] = (cache / "steered").glob("*.safetensors")
    targets = load_file(str(path))["targets"]
    # each class once before any twice: the first `classes` targets are a permutation
    assert sorted(targets[:classes].tolist()) == list(range(classes))
    assert targets[classes:].tolist() == targets[:classes + 1].tolist()
    stamp = path.stat().st_mtime_ns
    assert torch.equal(made("tiny"), first) and path.stat().st_mtime_ns == stamp
    assert made("another model").shape == first.shape
    assert len(list((cache / "steered").glob("*.safetensors"))) == 2


def test_interleaved_alternates_its_two_sources():
    first = crops(4)
    second = (torch.rand(3, 3, 32, 32) * 255).to(torch.uint8)
    mixed = Interleaved(first, second)
    assert len(mixed) == 8
    assert torch.equal(mixed[2][0], first[1][0])
    assert torch.equal(mixed[7][0], second[0].float() / 255)  # pair 3 → image 3 mod 3
    assert mixed[7][1] == -1


def test_a_run_mixes_steered_images_into_half_of_every_batch():
    config = TrainConfig(name="steered", backbone="tiny_resnet", init="random", loss="sham",
                         data="photos", objective="kl", size=32, batch=4, steps=2, val_size=4,
                         steered=6, steer_steps=1, command="test")
    run = prepare(config, distributed=False)
    assert isinstance(run.data.train, Interleaved) and len(run.data.train.second) == 6
    assert run.train_step()["loss"] > 0
    with pytest.raises(UserInputError, match="unlabelled"):
        prepare(TrainConfig(**{**config.__dict__, "name": "labelled",
                               "data": "synthetic:7class"}), distributed=False)
    with pytest.raises(UserInputError, match="at least one step"):
        prepare(TrainConfig(**{**config.__dict__, "name": "none", "steer_steps": 0}),
                distributed=False)
