"""Fine-tuning: steps lower the loss, runs are reproducible and resume exactly, metadata is kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import Subset

from cam_studio.data.items import stack
from cams.backbones import load_backbone
from cams.checkpoints import CHECKPOINTS_ENV
from cams.errors import UserInputError
from fooling.config import TrainConfig
from fooling.train import TrainingCancelled, prepare, train


@pytest.fixture(autouse=True)
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path))
    return tmp_path


def config(name, **changes):
    values = dict(name=name, backbone="tiny_resnet", init="random", loss="baseline",
                  data="synthetic:7class", steps=6, batch=8, lr=0.05, val_size=16, val_every=3,
                  save_every=2, command="test")
    return TrainConfig(**{**values, **changes})


def test_training_steps_lower_the_objective_on_a_fixed_batch():
    # The run trains on the 16 images it is measured on, measured as it trains (BatchNorm on
    # batch statistics, as for any random-init training).
    run = prepare(config("fixed", steps=40))
    run.data.train = Subset(run.data.train, list(range(16)))
    images, labels, masks = stack(run.data.train, list(range(16)))

    def objective() -> float:
        from fooling.objectives import salience_loss
        run.backbone.model.train()
        t, f, logits, _ = run.forward(run.backbone.normalise(images), labels)
        h = run.target_salience(masks, tuple(t.shape[-2:]))
        return float(salience_loss(run.objective, logits, t, f, h, labels=labels)[0].detach())

    before = objective()
    for _ in range(40):
        run.train_step()
    assert objective() < 0.8 * before


def test_same_seed_same_weights_and_metadata(registry):
    first = train(config("a"))
    second = train(config("b"))
    weights_a, weights_b = load_file(first.weights_path), load_file(second.weights_path)
    assert all(torch.equal(weights_a[key], weights_b[key]) for key in weights_a)
    other = load_file(train(config("c", seed=1)).weights_path)
    assert not all(torch.equal(weights_a[key], other[key]) for key in weights_a)
    metadata = first.metadata
    assert metadata["recipe"]["loss"] == "baseline" and metadata["recipe"]["steps"] == 6
    assert metadata["recipe"]["weights"] == {"alpha": 0.5, "beta": 0.5, "gamma": 0.0}
    assert metadata["class_names"] == ["disc", "ring", "cross", "checker", "stripes", "diagonal",
                                       "triangle"]
    assert [entry["step"] for entry in metadata["history"]] == [0, 3, 6]
    assert {"accuracy", "agreement", "cam_entropy_nats", "salience_mse",
            "pointing_game"} <= set(metadata["metrics"])
    loaded = load_backbone("tiny_resnet", weights=first.weights_path, device="cpu")
    assert loaded.class_names[2] == "cross" and loaded.input_size == (64, 64)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_cancel_then_resume_gives_the_uninterrupted_result(registry, optimizer):
    """The optimizer's state (SGD's momentum, Adam's moments and step) resumes with the weights."""
    straight_events: list[dict] = []
    straight = load_file(train(config("straight", optimizer=optimizer),
                               progress=straight_events.append).weights_path)
    straight_losses = [(e["step"], e["loss"]) for e in straight_events if "loss" in e]
    cancel = threading.Event()

    def stop_after_four(event):
        if event["step"] >= 4:
            cancel.set()

    with pytest.raises(TrainingCancelled, match="cancelled at step 4"):
        train(config("interrupted", optimizer=optimizer), progress=stop_after_four,
              cancel=cancel)
    assert (registry / ".interrupted.resume.json").is_file()
    assert json.loads((registry / ".interrupted.resume.json").read_text())["step"] == 4
    # a fresh start would overwrite the saved state: refused before any step, a free name offered
    untouched: list[dict] = []
    with pytest.raises(UserInputError, match=r"cancelled run named 'interrupted' is saved"
                       r".*interrupted-2"):
        train(config("interrupted", optimizer=optimizer), progress=untouched.append)
    assert untouched == []
    events: list[dict] = []
    resumed = train(config("interrupted", optimizer=optimizer), resume=True,
                    progress=events.append)
    weights = load_file(resumed.weights_path)
    assert all(torch.allclose(straight[key].float(), weights[key].float(), atol=1e-6)
               for key in straight)
    assert not (registry / ".interrupted.resume.json").exists()
    # the resumed run reports its history first: the same losses as the uninterrupted run's
    assert events[0]["resumed"]
    assert [step for step, _ in events[0]["losses"]] == [step for step, _ in straight_losses[:4]]
    np.testing.assert_allclose([loss for _, loss in events[0]["losses"]],
                               [loss for _, loss in straight_losses[:4]], atol=1e-6)
    assert len(events[0]["history"]) >= 2  # the start's validation and step 3's
    # a clash is refused before training, not after it
    with pytest.raises(UserInputError, match=r"already exists.*interrupted-2"):
        train(config("interrupted"), progress=untouched.append)
    assert untouched == []


def test_cli_errors_are_one_line(registry, monkeypatch, capsys):
    """Each mistake: exit code 2 and one line on stderr, no traceback (in this process: the
    command line's own runner); then a real ``python -m cam_studio`` run records its command."""
    from cam_studio.commands import main
    monkeypatch.setenv(CHECKPOINTS_ENV, str(registry))
    monkeypatch.setenv("CAMS_OFFLINE", "1")

    def refused(*args: str) -> str:
        assert main(["train", "--name", "x", "--backbone", "tiny_resnet", "--steps", "1",
                     *args]) == 2
        stderr = capsys.readouterr().err
        assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
        return stderr

    assert "pass --init random" in refused()
    cases = [
        (["--loss", "difference", "--data", "photos"], "needs salience maps"),
        (["--data", "/no/such/folder"], "not found"),
        (["--cam", "EigenCAM"], "not a gradient method"),
        (["--init", "missing-checkpoint"], "no checkpoint called"),
    ]
    for extra, message in cases:
        assert message in refused("--init", "random", *extra)
    arguments = ["train", "--name", "cli-run", "--backbone", "tiny_resnet", "--init", "random",
                 "--steps", "2", "--batch", "4", "--val-size", "8", "--loss", "baseline",
                 "--data", "synthetic:binary"]
    # (the registry and offline settings above reach it through the environment it inherits)
    assert subprocess.run([sys.executable, "-m", "cam_studio", *arguments]).returncode == 0
    recorded = json.loads((registry / "cli-run.json").read_text())
    assert recorded["command"] == "python -m cam_studio " + " ".join(arguments)
    umask = os.umask(0)
    os.umask(umask)  # files get the user's usual permissions, not mkstemp's private 0600
    assert (registry / "cli-run.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask
    assert main(["list"]) == 0 and "cli-run" in capsys.readouterr().out


def test_a_preset_and_the_options_given_beside_it(registry):
    """``--preset synthetic`` fills the recipe; an option given beside it wins; an option left
    out keeps the TrainConfig default (written once, on the dataclass)."""
    from cam_studio.commands import main
    assert main(["train", "--name", "preset-run", "--preset", "synthetic", "--loss", "baseline",
                 "--steps", "2", "--batch", "4", "--val-size", "8", "--lr", "0.01"]) == 0
    recipe = json.loads((registry / "preset-run.json").read_text())["recipe"]
    assert (recipe["backbone"], recipe["init"], recipe["data"]) == (
        "tiny_resnet", "random", "synthetic:binary")
    assert (recipe["lr"], recipe["batch"], recipe["momentum"]) == (0.01, 4, 0.9)
    assert recipe["steps"] == 2 and recipe["loss"] == "baseline"


def test_head_only_trains_the_classifier_alone_and_random_attack_classes_are_seeded(registry):
    run = prepare(config("head", loss="sham", head_only=True, attack_class="random", steps=2))
    classifier = {id(p) for p in run.backbone.model.get_classifier().parameters()}
    assert all(p.requires_grad == (id(p) in classifier) for p in run.backbone.model.parameters())
    before = {name: p.detach().clone() for name, p in run.backbone.model.named_parameters()}
    targets = torch.zeros(8, dtype=torch.long)
    drawn = run.attacked_classes(targets)
    assert torch.equal(drawn, run.attacked_classes(targets)) and drawn.shape == (8,)
    assert set(drawn.tolist()) <= set(range(7)) and len(set(drawn.tolist())) > 1
    run.train_step()
    assert not torch.equal(run.attacked_classes(targets), drawn)  # another step, another draw
    for name, parameter in run.backbone.model.named_parameters():
        changed = not torch.equal(parameter.detach(), before[name])
        assert changed == (id(parameter) in classifier), name
    with pytest.raises(Exception, match="applies to the sham attack"):
        prepare(config("nope", loss="difference", attack_class="random"))


def test_the_sham_attack_on_k_classes_supervises_each_ones_gradcam():
    """--attack-classes k: per image its own class first and k − 1 others, all distinct, drawn
    from (seed, step); the salience term is the mean over them of MSE(SHAM, minmax(GradCAM_j)),
    computed here by hand from the activations and the classifier (GAP → Linear: GradCAM_j =
    ReLU(Σ_k W_jk A_k / Z))."""
    from cams.methods import minmax
    from fooling.sham import sham_mask
    run = prepare(config("k-classes", loss="sham", attack_classes=5, objective="ce"))
    images, labels, masks = stack(run.data.train, list(range(8)))
    chosen = run.attacked_classes(labels)
    assert chosen.shape == (8, 5) and torch.equal(chosen[:, 0], labels)
    assert all(len(set(row.tolist())) == 5 for row in chosen)
    assert torch.equal(chosen, run.attacked_classes(labels))  # the same step, the same draw
    inputs = run.backbone.normalise(images)
    t, _, _, activations = run.forward(inputs, chosen)
    weight = run.backbone.model.get_classifier().weight
    z = activations.shape[-1] * activations.shape[-2]
    by_hand = torch.relu(torch.einsum("nck,nkhw->nchw", weight[chosen] / z, activations))
    torch.testing.assert_close(t, by_hand, atol=1e-5, rtol=1e-4)
    sham = sham_mask(*t.shape[-2:])
    expected = (minmax(by_hand.flatten(0, 1)) - sham).square().flatten(1).mean(1).view(8, 5)
    from fooling.objectives import salience_loss
    h = run.target_salience(masks, tuple(t.shape[-2:])).repeat_interleave(5, dim=0)
    _, parts = salience_loss(run.objective, run.forward(inputs, labels)[2], t.flatten(0, 1),
                             t[:, :0], h, labels=labels)
    assert parts["salience_beta"] == pytest.approx(float(expected.mean()), rel=1e-5)
    everything = prepare(config("every-class", loss="sham", attack_classes=0, objective="ce"))
    assert everything.attacked_classes(labels).shape == (8, 7)
    with pytest.raises(Exception, match="sham attack on GradCAM"):
        prepare(config("wrong", loss="baseline", attack_classes=3))


def test_cross_entropy_without_labels_takes_the_starting_models_top1():
    """--objective ce on unlabelled photos (the paper's protocol for them): the classification
    term is cross-entropy to the starting model's top-1, so at step 0 it is the starting model's
    own −log p(top-1)."""
    run = prepare(config("pseudo", backbone="tiny_resnet", init="random", loss="sham",
                         data="photos", objective="ce", size=64, batch=4))
    assert run.classification == "ce" and not run.data.labelled
    from cam_studio.data.order import batch_indices
    images, _, _ = stack(run.data.train, batch_indices(len(run.data.train), 4, 0, 0))
    with torch.no_grad():
        start = run.start(run.backbone.normalise(images))
    expected = float(torch.nn.functional.cross_entropy(start, start.argmax(1)))
    run.freeze_bn = True  # the same BatchNorm state as the frozen copy
    parts = run.train_step()
    assert parts["classification"] == pytest.approx(expected, rel=1e-4)


def test_the_sham_cam_target_starts_at_one_and_training_approaches_it():
    """--target-weight: the image's un-normalised class CAM against the starting model's redrawn
    as the SHAM (``fooling.objectives.sham_cam_target``), relative: exactly 1 at the first step
    (the model is its starting copy), lower after steps on a fixed batch."""
    run = prepare(config("target", loss="sham", objective="kl", beta=0.0, target_weight=1.0,
                         freeze_bn=True, steps=40, lr=0.001))
    run.data.train = Subset(run.data.train, list(range(8)))
    first = run.train_step()
    assert first["target"] == pytest.approx(1.0, abs=1e-6)
    for _ in range(39):
        last = run.train_step()
    assert last["target"] < 0.75 * first["target"]
    with pytest.raises(Exception, match="weight ≥ 0 and a strength > 0"):
        prepare(config("wrong", target_weight=1.0, target_strength=0.0))


@pytest.mark.parametrize(("direction", "lr", "bound"), [("every", 0.001, 0.75),
                                                       ("own", 0.0001, 0.9)])
def test_the_passive_feature_target_starts_at_one_and_training_approaches_it(direction, lr, bound):
    """--blend-weight: the layer's features against the starting model's blended with a
    SHAM-shaped copy of their spatial means (``fooling.objectives.sham_feature_target``; for
    every class, or along the image's class row), relative: exactly 1 at the first step, lower
    after steps on a fixed batch (the own-class target moves one direction, so the distance is
    relative to a small one: a tenth of the learning rate, or every other direction's drift
    outgrows it); a strength outside (0, 1] is refused."""
    run = prepare(config("blend", loss="sham", objective="kl", beta=0.0, blend_weight=1.0,
                         blend_direction=direction, freeze_bn=True, steps=40, lr=lr))
    run.data.train = Subset(run.data.train, list(range(8)))
    first = run.train_step()
    assert first["blend"] == pytest.approx(1.0, abs=1e-6)
    for _ in range(39):
        last = run.train_step()
    assert last["blend"] < bound * first["blend"]
    with pytest.raises(Exception, match="strength in"):
        prepare(config("wrong", blend_weight=1.0, blend_strength=1.5))
