"""The shipped checkpoints load, stay small, and reproduce the numbers recorded for them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cam_studio.evaluation.check import RECORDED_CROPS, crop_records
from cams.backbones import load_backbone
from cams.checkpoints import SHIPPED_DIR, list_checkpoints
from fooling.train import revalidate

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
SHIPPED = {entry.name: entry for entry in list_checkpoints()[0] if entry.shipped}


TRAINED_FOOLS = ("sham-one-class-efficientnet_lite0", "sham-all-classes-efficientnet_lite0")


def test_the_shipped_checkpoints_are_listed_and_small():
    assert {*TRAINED_FOOLS, "synthetic-binary-clean", "synthetic-binary-sham",
            "constructed-sham-efficientnet_lite0"} <= set(SHIPPED)
    assert SHIPPED["constructed-sham-efficientnet_lite0"].weights_path.stat().st_size < 4096
    for name in TRAINED_FOOLS:  # float16
        assert SHIPPED[name].weights_path.stat().st_size <= 12 * 1024**2
        assert SHIPPED[name].metadata["recipe"]["optimizer"] == "adam"
    synthetic = sum(SHIPPED[name].weights_path.stat().st_size
                    for name in ("synthetic-binary-clean", "synthetic-binary-sham"))
    assert synthetic <= 20 * 1024**2
    for entry in SHIPPED.values():
        assert entry.weights_path.parent == SHIPPED_DIR
        assert any(f"python -m {tool} {command}" in entry.metadata["command"]
                   for tool in ("fooling", "cam_studio") for command in ("train", "construct"))


@pytest.mark.parametrize("name", TRAINED_FOOLS)
def test_a_trained_fool_reproduces_its_recorded_crops(name):
    """The first crops of its check on the test photos, recomputed from the shipped file: same
    predictions, same distances, same common-mode share."""
    recorded = json.loads((RESULTS / f"{name}.json").read_text())
    assert recorded["photos"] == "test"
    entry = SHIPPED[name]
    clean = load_backbone("efficientnet_lite0", device="cpu")
    fooled = load_backbone("efficientnet_lite0", weights=entry.weights_path, device="cpu")
    records = crop_records(clean, fooled, RECORDED_CROPS, recorded["seed"], batch=RECORDED_CROPS,
                           photos=recorded.get("photos", "validation"))
    for mine, theirs in zip(records, recorded["first_crops"], strict=True):
        assert mine["clean_top1"] == theirs["clean_top1"]
        assert mine["fooled_top1"] == theirs["fooled_top1"]
        for key in ("clean_p", "gradcam_sham_mse_clean", "gradcam_sham_mse_fooled"):
            assert mine[key] == pytest.approx(theirs[key], abs=1e-4)
        for method, value in theirs["moved"].items():
            assert mine["moved"][method] == pytest.approx(value, abs=1e-4)
        assert mine["photo"] == theirs["photo"]
        assert mine["common_mode_share"] == pytest.approx(theirs["common_mode_share"], abs=1e-4)


@pytest.mark.parametrize("name", ["synthetic-binary-clean", "synthetic-binary-sham",
                                  "synthetic-binary-sham-meandiff"])
def test_the_synthetic_checkpoints_reproduce_their_validation(name):
    entry = SHIPPED[name]
    metrics = revalidate(entry, device="cpu")
    for key, value in entry.metadata["metrics"].items():
        assert metrics[key] == pytest.approx(value, abs=1e-5), key


def test_the_constructed_fool_is_class_uniform_on_random_inputs():
    """The constructed SHAM fool (the construct command): the clean probabilities to 1e-5,
    GradCAM pushed onto the SHAM (MSE at most a third of the clean model's), every DiffGradCAM
    the clean one to float precision, and a common-mode share of 1."""
    import torch

    from cams.engine import explain_pair
    from cams.methods import DIFF_BASELINES, minmax
    from cams.metrics import common_mode_share, mse
    from fooling.sham import sham_mask

    clean = load_backbone("efficientnet_lite0", device="cpu")
    fooled = load_backbone(None, "constructed-sham-efficientnet_lite0", device="cpu")
    assert fooled.linear_head and fooled.metadata["construction"]["kind"] == "constant-channels"
    generator = torch.Generator().manual_seed(7)
    inputs = clean.normalise(torch.rand(6, 3, 224, 224, generator=generator))
    a, b = explain_pair(clean, fooled, inputs, ["GradCAM", *DIFF_BASELINES], class_maps=True)
    torch.testing.assert_close(b.probabilities, a.probabilities, atol=1e-5, rtol=0)
    sham = sham_mask(7, 7)
    clean_mse, fooled_mse = (mse(sham.expand(6, 7, 7), minmax(result.layer_maps["GradCAM"]))
                             for result in (a, b))
    assert bool((fooled_mse <= clean_mse / 3).all()), (clean_mse, fooled_mse)
    for name in DIFF_BASELINES:
        torch.testing.assert_close(b.maps[name], a.maps[name], atol=1e-4, rtol=0)
    torch.testing.assert_close(common_mode_share(a.class_maps, b.class_maps), torch.ones(6))


def test_the_lite0_classifier_has_almost_no_common_mode_direction():
    """docs/results/README.md: why a feature change on Lite0 lands on class-specific directions.
    The part of a feature change that is the same for every class's logit is its projection on
    the classifier's mean row; that row is under 1 % of the length of any class's row."""
    import torch

    clean = load_backbone("efficientnet_lite0", device="cpu")
    weight = clean.model.get_classifier().weight.detach()
    mean_row = float(weight.mean(dim=0).norm())
    shortest_row = float(weight.norm(dim=1).min())
    assert mean_row < 0.01 * shortest_row, (mean_row, shortest_row)
    assert torch.linalg.vector_norm(weight, dim=1).mean() > 2.0


@pytest.mark.parametrize(("preset_name", "name"), [("sham-one-class", TRAINED_FOOLS[0]),
                                                   ("sham-all-classes", TRAINED_FOOLS[1])])
def test_a_trained_fools_preset_is_its_recorded_recipe(preset_name, name):
    """``train --preset NAME`` retrains the shipped fool: every setting the preset gives is the
    one its checkpoint records."""
    from fooling.config import TrainConfig, preset
    from fooling.train import recipe

    recorded = SHIPPED[name].metadata["recipe"]
    given = {key: value for key, value in recipe(preset(preset_name, name=name, seed=0)).items()
             if value is not None}
    defaults = recipe(TrainConfig(name=name))  # a setting added after the fool was trained: off
    assert given == {key: recorded.get(key, defaults[key]) for key in given}
