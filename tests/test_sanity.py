"""The sanity checks: model-parameter randomisation (cascading and independent) and the random
logit, each against a hand computation (the blocks re-drawn by hand with the documented seeds,
Spearman by scipy, SSIM by scikit-image as Quantus calls it) and the randomised weights as a
weight source of the app and the command lines."""

from __future__ import annotations

import copy
import csv
import math

import numpy as np
import pytest
import torch
from scipy import stats
from skimage.metrics import structural_similarity

from cam_studio.data.sources import samples
from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.report import build_report
from cam_studio.evaluation.run import run_all
from cam_studio.evaluation.statistics import below_margin_p
from cam_studio.evaluation.tables.sanity import RANDOM_LOGIT, random_classes, sanity_rows
from cams.backbones import load_backbone, randomisable_blocks
from cams.engine import explain
from cams.errors import UserInputError
from cams.metrics import average_ranks, spearman, ssim
from cams.randomise import CASCADING, INDEPENDENT, block_names, blocks, randomise, randomised_name

METHODS = ["GradCAM", "EigenCAM", "CAM", "MeanDiffGradCAM"]


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)  # small inputs: the checks' maths, not the model, is tested here
    return load_backbone("resnet18", weights="random", device="cpu",
                         data_config={"input_size": (3, 96, 96)})


def by_hand(model, names, seed):
    """The documented randomisation, written out: each named block's modules reset in turn from
    the CPU generator seeded with seed·1000 + the block's index (bottom first)."""
    copied = copy.deepcopy(model).cpu()
    modules = dict(copied.named_modules())
    for index, (name, _) in enumerate(blocks(model)):
        if name in names:
            torch.manual_seed(seed * 1000 + index)
            for module in modules[name].modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
    return copied


def test_ranks_and_spearman_are_scipys():
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(4, 9, 9, generator=generator).mul(5).floor()  # many ties
    b = torch.rand(4, 9, 9, generator=generator)
    b[0] = 0.0  # a constant map: no ranks
    for row, ranks in zip(a.flatten(1), average_ranks(a.flatten(1))):
        assert np.allclose(ranks.numpy(), stats.rankdata(row.numpy()))
    ours = spearman(a, b)
    assert math.isnan(ours[0])
    for index in range(1, 4):
        expected = stats.spearmanr(a[index].flatten().numpy(), b[index].flatten().numpy())[0]
        assert float(ours[index]) == pytest.approx(expected, abs=1e-6)


def test_blocks_are_the_parameterised_children_top_first(resnet):
    # A Sequential of blocks is opened one level: a ResNet's stages are its residual blocks.
    assert block_names(resnet.model) == ["fc", "layer4.1", "layer4.0", "layer3.1", "layer3.0",
                                         "layer2.1", "layer2.0", "layer1.1", "layer1.0", "bn1",
                                         "conv1"]
    lite0 = randomisable_blocks("efficientnet_lite0")
    assert lite0[:4] == ["classifier", "bn2", "conv_head", "blocks.6"]
    assert lite0[-3:] == ["blocks.0", "bn1", "conv_stem"]


def test_randomise_redraws_exactly_the_tests_blocks_as_by_hand(resnet):
    model = resnet.model
    before = {name: value.clone() for name, value in model.state_dict().items()}
    cascade = randomise(model, "layer3.1", CASCADING, seed=2)
    alone = randomise(model, "layer3.1", INDEPENDENT, seed=2)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    expected_cascade = by_hand(model, ["fc", "layer4.1", "layer4.0", "layer3.1"], 2).state_dict()
    expected_alone = by_hand(model, ["layer3.1"], 2).state_dict()
    for name in before:
        assert torch.equal(cascade.state_dict()[name], expected_cascade[name]), name
        assert torch.equal(alone.state_dict()[name], expected_alone[name]), name
        changed = not torch.equal(cascade.state_dict()[name], before[name])
        if name.startswith(("layer1", "layer2", "layer3.0", "conv1")) and "num_batches" not in name:
            assert not changed, name
    # Block layer3.1 holds the same random weights in both tests.
    layer3 = {n: v for n, v in alone.state_dict().items() if n.startswith("layer3.1.")}
    assert all(torch.equal(cascade.state_dict()[n], v) for n, v in layer3.items())
    assert not torch.equal(cascade.state_dict()["fc.weight"], before["fc.weight"])
    assert torch.equal(alone.state_dict()["fc.weight"], before["fc.weight"])


def test_a_bad_block_or_name_says_what_to_give(resnet):
    with pytest.raises(UserInputError, match=r"no block 'head'.*one of fc, layer4"):
        randomise(resnet.model, "head")
    with pytest.raises(UserInputError, match=r"randomised\[-only\]:BLOCK\[:SEED\]"):
        load_backbone("resnet18", "randomised:fc:x")


def test_randomised_weights_load_as_a_weight_source(lite0):
    clean = lite0
    loaded = load_backbone("efficientnet_lite0", randomised_name("blocks.6", CASCADING, 1),
                           device="cpu")
    assert loaded.metadata["randomised"] == {
        "block": "blocks.6", "test": CASCADING, "seed": 1,
        "blocks": ["classifier", "bn2", "conv_head", "blocks.6"]}
    assert "randomised from the top down to blocks.6" in loaded.weights_source
    expected = by_hand(clean.model, loaded.metadata["randomised"]["blocks"], 1).state_dict()
    assert all(torch.equal(value.cpu(), expected[name]) for name, value in
               loaded.model.state_dict().items())
    only = load_backbone("efficientnet_lite0", "randomised-only:conv_stem", device="cpu")
    assert only.metadata["randomised"]["blocks"] == ["conv_stem"]


def test_the_tables_similarities_match_a_hand_computation(resnet):
    batch = list(samples("examples", 2))
    rows = sanity_rows(resnet, METHODS, 0, batch)
    inputs = torch.cat([resnet.preprocess(sample.image) for sample in batch])
    trained = explain(resnet, inputs, METHODS)
    names = block_names(resnet.model)
    for test, block, blocks_drawn in [(CASCADING, "layer4.0", names[:3]),
                                      (INDEPENDENT, "layer2.1", ["layer2.1"])]:
        model = copy.copy(resnet)
        model.model = by_hand(resnet.model, blocks_drawn, 0).eval()
        changed = explain(model, inputs, METHODS, trained.targets, trained.false_classes)
        for method in METHODS:
            for index, sample in enumerate(batch):
                row = next(r for r in rows if (r.test, r.block, r.method, r.image)
                           == (test, block, method, sample.id))
                a = trained.maps[method][index].double().numpy()
                b = changed.maps[method][index].double().numpy()
                if a.std() > 0 and b.std() > 0:
                    assert row.spearman == pytest.approx(
                        stats.spearmanr(a.ravel(), b.ravel())[0], abs=1e-5)
                # Quantus's ssim: scikit-image with the data range of the two maps (1 here).
                assert row.ssim == pytest.approx(structural_similarity(
                    a, b, data_range=float(max(a.max(), b.max()) - min(a.min(), b.min())) or 1.0),
                    abs=1e-5)
                assert row.mse == pytest.approx(float(((a - b) ** 2).mean()), abs=1e-6)
    # EigenCAM never reads the classifier: re-drawing it leaves EigenCAM's map as it was.
    top = [r for r in rows if r.test == CASCADING and r.block == "fc" and r.method == "EigenCAM"]
    assert all(r.spearman == pytest.approx(1.0) and r.mse == pytest.approx(0.0) for r in top)


def test_the_random_logit_is_another_class_fixed_by_seed_and_image(resnet):
    targets = torch.tensor([3, 0, 9])
    images = ["a", "b", "c"]
    first = random_classes(images, targets, 10, seed=0)
    assert (first != targets).all()
    assert torch.equal(first, random_classes(images, targets, 10, seed=0))
    assert torch.equal(first[1:], random_classes(images[1:], targets[1:], 10, seed=0))
    counts = torch.bincount(random_classes([str(i) for i in range(2000)],
                                           torch.zeros(2000, dtype=torch.long), 10, 1), minlength=10)
    assert counts[0] == 0 and counts[1:].min() > 150  # uniform over the 9 others
    batch = list(samples("examples", 2))
    rows = [r for r in sanity_rows(resnet, ["GradCAM"], 0, batch) if r.test == RANDOM_LOGIT]
    inputs = torch.cat([resnet.preprocess(sample.image) for sample in batch])
    trained = explain(resnet, inputs, ["GradCAM"])
    other = explain(resnet, inputs, ["GradCAM"], torch.tensor([r.explained for r in rows]))
    expected = ssim(trained.maps["GradCAM"], other.maps["GradCAM"])
    assert [r.ssim for r in rows] == pytest.approx(expected.tolist(), abs=1e-6)


def test_below_margin_is_scipys_one_sided_t_test():
    values = [0.1, 0.35, 0.2, 0.55, 0.3]
    expected = stats.ttest_1samp(values, 0.5, alternative="less").pvalue
    assert below_margin_p(values, 0.5) == pytest.approx(expected)
    assert math.isnan(below_margin_p([0.1], 0.5))


def test_the_sanity_table_runs_and_reports(tmp_path, monkeypatch, resnet):
    monkeypatch.setattr("cam_studio.evaluation.run.load_backbone",
                        lambda name, weights=None, device=None: resnet)
    config = EvaluationConfig(out=tmp_path, images="examples", limit=3, batch=2,
                              backbones=["resnet18"], methods=["GradCAM", "EigenCAM"],
                              tables=["sanity"], sanity_seeds=2)
    run_all(config)
    build_report(tmp_path, "the test's run")
    with (tmp_path / "records" / "sanity.csv").open() as handle:
        recorded = list(csv.DictReader(handle))
    stages = 2 * len(block_names(resnet.model)) + 1
    assert len(recorded) == 2 * 3 * 2 * stages  # seeds × images × methods × comparisons
    report = (tmp_path / "report.md").read_text()
    assert "Sanity checks" in report and "| EigenCAM | top block re-drawn (fc)" in report
    tests = (tmp_path / "sanity_tests_resnet18.md").read_text()
    eigen_top = next(line for line in tests.splitlines()
                     if line.startswith("| EigenCAM | top block"))
    assert eigen_top.endswith("| fail |") and "1.00 [1.00, 1.00]" in eigen_top
