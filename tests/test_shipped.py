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


def test_the_shipped_checkpoints_are_listed_and_small():
    assert {"sham-efficientnet_lite0", "synthetic-binary-clean", "synthetic-binary-sham",
            "constructed-sham-efficientnet_lite0"} <= set(SHIPPED)
    assert SHIPPED["constructed-sham-efficientnet_lite0"].weights_path.stat().st_size < 4096
    assert SHIPPED["sham-efficientnet_lite0"].weights_path.stat().st_size <= 12 * 1024**2
    synthetic = sum(SHIPPED[name].weights_path.stat().st_size
                    for name in ("synthetic-binary-clean", "synthetic-binary-sham"))
    assert synthetic <= 20 * 1024**2
    for entry in SHIPPED.values():
        assert entry.weights_path.parent == SHIPPED_DIR
        assert ("python -m fooling train" in entry.metadata["command"]
                or "python -m fooling construct" in entry.metadata["command"])


@pytest.mark.parametrize("record", ["sham-efficientnet_lite0.json",
                                    "validation/sham-efficientnet_lite0.json"])
def test_the_fooled_lite0_reproduces_its_recorded_crops(record):
    """The first crops of the acceptance check, recomputed: same predictions, same distances, on
    the test photos and on the validation photos the recipe was chosen on."""
    recorded = json.loads((RESULTS / record).read_text())
    entry = SHIPPED["sham-efficientnet_lite0"]
    clean = load_backbone("efficientnet_lite0", device="cpu")
    fooled = load_backbone("efficientnet_lite0", weights=entry.weights_path, device="cpu")
    records = crop_records(clean, fooled, RECORDED_CROPS, recorded["seed"], batch=RECORDED_CROPS,
                           photos=recorded.get("photos", "validation"))
    for mine, theirs in zip(records, recorded["first_crops"], strict=True):
        assert mine["clean_top1"] == theirs["clean_top1"]
        assert mine["fooled_top1"] == theirs["fooled_top1"]
        for key in ("clean_p", "gradcam_sham_mse_clean", "gradcam_sham_mse_fooled"):
            assert mine[key] == pytest.approx(theirs[key], abs=1e-4)
        for name, value in theirs["moved"].items():
            assert mine["moved"][name] == pytest.approx(value, abs=1e-4)
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
