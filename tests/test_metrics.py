"""Metrics against independent computations: numpy, scipy and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from skimage.metrics import structural_similarity

from cam_studio.evaluation.statistics import mod_vid, rank_sum
from cams.metrics import (
    baseline_similarity,
    cam_entropy_nats,
    entropies_nats,
    mse,
    mses,
    nissim,
    ssim,
)
from cams.render import overlays


@pytest.fixture
def maps():
    generator = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(6, 1, 40, 48, generator=generator), 5,
                                            stride=1, padding=2)[:, 0]
    return smooth[:3], smooth[3:]


def test_mse_is_the_per_map_mean_of_squares(maps):
    a, b = maps
    expected = ((a.numpy() - b.numpy()) ** 2).reshape(3, -1).mean(axis=1)
    np.testing.assert_allclose(mse(a, b).numpy(), expected, rtol=1e-6)


def test_entropy_of_the_sham_border_is_ln_28():
    border = torch.zeros(1, 7, 7)  # the 24-pixel outer ring plus 4 of the next ring: 28 on
    border[0, [0, 6], :] = 1
    border[0, :, [0, 6]] = 1
    border[0, 1, 1:3] = 1
    border[0, 5, 4:6] = 1
    assert int(border.sum()) == 28
    assert math.isclose(float(cam_entropy_nats(border)[0]), math.log(28), rel_tol=1e-6)
    assert math.isclose(math.log(28), 3.332, abs_tol=1e-3)


def test_entropy_matches_scipy_on_a_graded_map(maps):
    a, _ = maps
    layer = a[:, ::6, ::6] + 0.5  # strictly positive: p = L / ΣL on the map itself
    expected = [stats.entropy(m.flatten()) for m in layer.double().numpy()]
    np.testing.assert_allclose(cam_entropy_nats(layer).numpy(), expected, rtol=1e-5)


def test_entropy_of_a_uniform_map_is_ln_of_its_size():
    assert math.isclose(float(cam_entropy_nats(torch.full((1, 7, 7), 0.3))[0]), math.log(49),
                        rel_tol=1e-6)


def test_entropy_of_a_signed_map_uses_its_min_max_normalisation():
    signed = torch.tensor([[[-1.0, 0.0], [1.0, 3.0]]])  # min-max: 0, 0.25, 0.5, 1
    assert math.isclose(float(cam_entropy_nats(signed)[0]),
                        stats.entropy([0.0, 0.25, 0.5, 1.0]), rel_tol=1e-6)


def test_entropy_of_an_empty_map_is_zero():
    assert float(cam_entropy_nats(torch.zeros(1, 7, 7))[0]) == 0.0


def test_rank_sum_is_scipys():
    x = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.05])
    y = torch.tensor([0.9, 0.7, 0.95, 0.6, 0.85, 0.99])
    expected = stats.ranksums(x.numpy(), y.numpy())
    result = rank_sum(x, y)
    assert math.isclose(result.p_value, expected.pvalue) and result.p_value < 0.05
    assert math.isclose(result.statistic, expected.statistic)


def test_ssim_matches_scikit_image(maps):
    a, b = maps
    expected = [structural_similarity(x, y, data_range=1.0) for x, y in
                zip(a.double().numpy(), b.double().numpy())]
    np.testing.assert_allclose(ssim(a, b).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_nissim_range_and_identity(maps):
    a, b = maps
    assert torch.allclose(nissim(a, a), torch.zeros(3), atol=1e-6)
    values = nissim(a, b)
    assert bool(((values >= 0) & (values <= 1)).all())
    expected = [(1 - structural_similarity(x, y, data_range=1.0)) / 2 for x, y in
                zip(a.double().numpy(), b.double().numpy())]
    np.testing.assert_allclose(values.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_mod_and_vid_are_mean_and_variance_of_nissim(maps):
    a, b = maps
    values = np.array([(1 - structural_similarity(x, y, data_range=1.0)) / 2 for x, y in
                       zip(a.double().numpy(), b.double().numpy())])
    result = mod_vid(nissim(a, b))
    assert math.isclose(result.mod, values.mean(), rel_tol=1e-5)
    assert math.isclose(result.vid, values.var(), rel_tol=1e-4)
    assert math.isclose(result.vid_std, values.std(), rel_tol=1e-4) and result.count == 3


def test_many_maps_at_once_are_each_maps_own_mse_and_entropy(maps):
    """``mses`` and ``entropies_nats`` compute maps of one shape as one stack: each value is
    numpy's mean of squares and scipy's entropy of that map alone (a map of another shape too)."""
    a, b = maps
    odd = torch.rand(3, 7, 7, generator=torch.Generator().manual_seed(1))
    got = mses({"one": (a, b), "two": (b, a.flip(1)), "odd": (odd, odd.flip(2))})
    for name, (x, y) in {"one": (a, b), "two": (b, a.flip(1)), "odd": (odd, odd.flip(2))}.items():
        expected = ((x.numpy() - y.numpy()) ** 2).reshape(3, -1).mean(axis=1)
        np.testing.assert_allclose(got[name].numpy(), expected, rtol=1e-5)
    entropies = entropies_nats({"one": a, "two": b})
    for name, x in {"one": a, "two": b}.items():
        expected = [stats.entropy(m.ravel()) for m in x.double().numpy()]
        np.testing.assert_allclose(entropies[name].numpy(), expected, rtol=1e-5)


def test_overlays_blend_each_map_with_the_colour_maps_colours_by_hand():
    """Each pixel: (1 − opacity)·image + opacity·colour(level), level = round(255·clip(map)),
    the colours taken from matplotlib here, rounded to the nearest integer."""
    import matplotlib
    generator = np.random.default_rng(0)
    image = generator.random((9, 11, 3)).astype(np.float32)
    heatmaps = [generator.random((9, 11)).astype(np.float32) * 1.4 - 0.2 for _ in range(3)]
    got = overlays(image, heatmaps, 0.3, "viridis")
    table = matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3]
    for picture, heatmap in zip(got, heatmaps, strict=True):
        level = np.round(np.clip(heatmap, 0, 1) * 255).astype(int)
        expected = 255 * (0.7 * image + 0.3 * table[level])
        assert np.abs(picture - expected).max() <= 0.5 + 1e-3


def test_baseline_similarity_pairs_each_variant_with_its_baseline(maps):
    a, b = maps
    result = baseline_similarity({"GradCAM": a, "MeanDiffGradCAM": b, "GradCAM++": b,
                                  "MaxDiffGradCAM++": b})
    assert set(result) == {"MeanDiffGradCAM", "MaxDiffGradCAM++"}
    torch.testing.assert_close(result["MeanDiffGradCAM"], mse(b, a))
    assert float(result["MaxDiffGradCAM++"].abs().max()) == 0.0


def test_unit_means_average_within_each_unit():
    from cam_studio.evaluation.statistics import unit_means
    assert unit_means([1, 2, 3, 10], ["a", "b", "a", "b"]) == {"a": 2.0, "b": 6.0}


def test_paired_comparison_is_scipys_signed_rank_with_a_t_interval():
    from cam_studio.evaluation.statistics import paired_comparison, t_interval
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 1.0, 6)
    b = a - 0.3 + rng.normal(0, 0.2, 6)
    result = paired_comparison(a.tolist(), b.tolist())
    assert result.p_value == pytest.approx(stats.wilcoxon(a - b).pvalue)
    assert result.mean_difference == pytest.approx(float(np.mean(a - b)))
    low, high = stats.t.interval(0.95, 5, loc=np.mean(a - b), scale=stats.sem(a - b))
    assert (result.low, result.high) == (pytest.approx(low), pytest.approx(high))
    assert result.units == 6
    assert math.isnan(paired_comparison([1.0, 2.0], [1.0, 2.0]).p_value)  # no difference
    single = t_interval([0.5])
    assert single.mean == 0.5 and math.isnan(single.low)


def test_holm_by_hand():
    from cam_studio.evaluation.statistics import holm
    # sorted 0.005, 0.01, 0.03, 0.04 of m = 4: ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 → monotone
    adjusted = holm([0.01, 0.04, 0.03, math.nan, 0.005])
    assert adjusted[:3] + adjusted[4:] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[3])
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_equivalence_is_two_one_sided_t_tests():
    from cam_studio.evaluation.statistics import equivalence_p
    differences = np.random.default_rng(3).normal(0.002, 0.01, 12)
    expected = max(stats.ttest_1samp(differences, -0.02, alternative="greater").pvalue,
                   stats.ttest_1samp(differences, 0.02, alternative="less").pvalue)
    assert equivalence_p(differences.tolist(), 0.02) == pytest.approx(expected)
    assert equivalence_p((differences + 0.05).tolist(), 0.02) > 0.5  # outside the margin


def test_deletion_and_insertion_by_hand():
    """A 2×2 one-channel image, a linear two-class model, a zero baseline, one pixel per step."""
    from cams.faithfulness import faithfulness_curves
    weights = torch.tensor([[1.0, -1.0], [2.0, 0.5]])
    image = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])

    def model(x):
        score = (x[:, 0] * weights).flatten(1).sum(dim=1)
        return torch.stack([score, torch.zeros_like(score)], dim=1)

    relevance = torch.tensor([[[0.9, 0.1], [0.5, 0.7]]])  # order: (0,0), (1,1), (1,0), (0,1)
    curves = faithfulness_curves(model, image, relevance, torch.tensor([0]), steps=4,
                                 baseline=torch.zeros(1))
    # contributions 1, -2, 6, 2: removing (0,0), (1,1), (1,0), (0,1) in turn
    deletion = torch.sigmoid(torch.tensor([7.0, 6.0, 4.0, -2.0, 0.0]))
    insertion = torch.sigmoid(torch.tensor([0.0, 1.0, 3.0, 9.0, 7.0]))
    torch.testing.assert_close(curves.deletion[0], deletion)
    torch.testing.assert_close(curves.insertion[0], insertion)
    trapezoid = lambda y: float(0.25 * (y[0] / 2 + y[1:-1].sum() + y[-1] / 2))  # noqa: E731
    assert float(curves.deletion_auc[0]) == pytest.approx(trapezoid(deletion))
    assert float(curves.insertion_auc[0]) == pytest.approx(trapezoid(insertion))
    # One image, two maps (the second ranks (0,1), (1,0), (1,1), (0,0)), one target for both;
    # the ends (nothing and everything removed) are one pass for both maps.
    both = faithfulness_curves(model, image, torch.cat([relevance, 1 - relevance]),
                               torch.tensor([0]), steps=4, baseline=torch.zeros(1))
    torch.testing.assert_close(both.deletion, torch.stack(
        [deletion, torch.sigmoid(torch.tensor([7.0, 9.0, 3.0, 1.0, 0.0]))]))
    torch.testing.assert_close(both.insertion, torch.stack(
        [insertion, torch.sigmoid(torch.tensor([0.0, -2.0, 4.0, 6.0, 7.0]))]))


def test_the_blurred_baseline_is_scipys_gaussian_filter():
    from scipy import ndimage

    from cams.faithfulness import BLUR_SIGMA, faithfulness_baseline
    image = torch.rand(1, 3, 40, 32, generator=torch.Generator().manual_seed(0),
                       dtype=torch.float64)
    sigma = BLUR_SIGMA * 40
    expected = np.stack([ndimage.gaussian_filter(channel, sigma, mode="nearest",
                                                 radius=math.ceil(3 * sigma))
                         for channel in image[0].numpy()])
    np.testing.assert_allclose(faithfulness_baseline(image, "blur")[0].numpy(), expected,
                               atol=1e-10)
    mean = faithfulness_baseline(image, "mean")
    torch.testing.assert_close(mean[0, :, 5, 7], image[0].mean(dim=(1, 2)))


def test_gradcam_deletes_faster_and_inserts_faster_than_its_reverse(lite0, chelsea):
    """A real map is more faithful than the same map ranked backwards (Lite0, chelsea)."""
    from cams.engine import explain
    from cams.faithfulness import faithfulness_curves
    result = explain(lite0, [chelsea], ["GradCAM"])
    gradcam = result.maps["GradCAM"]
    curves = {name: faithfulness_curves(lite0.model, result.inputs, relevance, result.targets,
                                        steps=8)
              for name, relevance in (("map", gradcam), ("reverse", 1 - gradcam))}
    assert float(curves["map"].deletion_auc[0]) < float(curves["reverse"].deletion_auc[0])
    assert float(curves["map"].insertion_auc[0]) > float(curves["reverse"].insertion_auc[0])
    start = curves["map"].deletion[0, 0]
    torch.testing.assert_close(start, result.probabilities[0, result.targets[0]])


def test_road_imputation_is_pytorch_grad_cams_without_noise():
    """ROAD's noisy linear imputer (grad-cam 1.5.7, noise 0) on a random image and mask, the
    borders and corners included; with noise, only the removed pixels change."""
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    from cams.faithfulness import road_impute
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(3, 12, 10, generator=generator)
    removed = torch.rand(12, 10, generator=generator) < 0.4
    removed[0, 0] = removed[-1, -1] = True
    expected = NoisyLinearImputer(noise=0.0)(image, (~removed).float())
    filled = road_impute(image, removed)
    torch.testing.assert_close(filled, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(filled[:, ~removed], image[:, ~removed])
    noisy = road_impute(image, removed, noise=0.01, generator=generator)
    assert torch.equal(noisy[:, ~removed], image[:, ~removed])
    assert 0 < float((noisy - filled)[:, removed].abs().max()) < 0.1


@pytest.mark.parametrize("most_relevant_first", [True, False])
def test_road_scores_are_pytorch_grad_cams_without_noise(resnet_random, most_relevant_first):
    """ROADMostRelevantFirst / ROADLeastRelevantFirst of grad-cam 1.5.7 (its imputer with noise
    0, the softmax probability of the class): the same changes, per image and percentile."""
    from pytorch_grad_cam.metrics.perturbation_confidence import (
        PerturbationConfidenceMetric,
        RemoveLeastRelevantFirst,
        RemoveMostRelevantFirst,
    )
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    from cams.faithfulness import road_scores
    generator = torch.Generator().manual_seed(5)
    inputs = torch.randn(2, 3, 48, 48, generator=generator)
    maps = torch.rand(2, 48, 48, generator=generator)
    model = resnet_random.model.eval()
    targets = torch.tensor([1, 7])
    mine = road_scores(model, inputs, maps, targets, most_relevant_first, (20, 70), noise=0.0)
    removal = RemoveMostRelevantFirst if most_relevant_first else RemoveLeastRelevantFirst
    for column, percentile in enumerate((20, 70)):
        metric = PerturbationConfidenceMetric(removal(percentile, NoisyLinearImputer(noise=0.0)))
        theirs = metric(inputs, maps.numpy(), [ClassifierOutputSoftmaxTarget(int(c))
                                               for c in targets], model)
        np.testing.assert_allclose(mine[:, column].numpy(), theirs, atol=1e-5)


def test_road_combined_by_hand():
    """pytorch-grad-cam's ROADCombined: the mean over percentiles of (LeRF − MoRF) / 2."""
    from cams.faithfulness import RoadScores
    scores = RoadScores(morf=torch.tensor([[-0.4, -0.2, 0.0], [0.1, 0.1, 0.1]]),
                        lerf=torch.tensor([[0.0, 0.2, -0.3], [0.1, 0.1, 0.1]]))
    # image 0: (0.4 / 2 + 0.4 / 2 − 0.3 / 2) / 3 = 0.0833…; image 1: no difference
    torch.testing.assert_close(scores.combined, torch.tensor([0.25 / 3, 0.0]))
