"""The objectives table against hand computations, and the losses' gradients reaching the
parameters."""

from __future__ import annotations

import math

import pytest
import torch

from cams.backbones import load_backbone
from cams.engine import true_false_maps
from fooling.objectives import (
    OBJECTIVES,
    LossWeights,
    centred_logit_distance,
    classification_term,
    relative_distance,
    salience_loss,
    sham_cam_target,
    sham_feature_target,
)
from fooling.sham import sham_mask

# One 2×2 image. norm(t) = [[0, .25], [.5, 1]], norm(f) = [[1, .5], [.25, 0]],
# norm(t − f) = norm([[-4, -1], [1, 4]]) = [[0, .375], [.625, 1]].
T = torch.tensor([[[0.0, 1.0], [2.0, 4.0]]])
F_ = torch.tensor([[[[4.0, 2.0], [1.0, 0.0]]]])  # one rival × one image
H = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
LOGITS = torch.tensor([[2.0, 0.0]])
LABELS = torch.tensor([0])
CE = math.log(1 + math.exp(-2))


@pytest.mark.parametrize(("loss", "beta", "gamma"), [
    ("baseline", (1 + 0.25**2 + 0.5**2) / 4, None),              # MSE(h, norm t)
    ("difference", (1 + 0.375**2 + 0.625**2) / 4, None),          # MSE(h, norm(t − f))
    ("perclass", (1 + 0.25**2 + 0.5**2) / 4, (1 + 0.5**2 + 0.75**2) / 4),  # + MSE(1 − h, norm f)
    ("contrast", (1 + 0.25**2 + 0.5**2) / 4, (0.25**2 + 0.25**2) / 4),     # + MSE(1 − norm t, norm f)
])
def test_terms_and_totals_by_hand(loss, beta, gamma):
    terms = OBJECTIVES[loss].terms(H, T, F_)
    assert float(terms["beta"]) == pytest.approx(beta)
    assert ("gamma" in terms) == (gamma is not None)
    total, parts = salience_loss(OBJECTIVES[loss], LOGITS, T, F_, H, labels=LABELS)
    if gamma is None:  # the defaults: α = β = 0.5 with two terms, 0.3 each with three
        expected = 0.5 * CE + 0.5 * beta
    else:
        assert float(terms["gamma"]) == pytest.approx(gamma)
        expected = 0.3 * CE + 0.3 * beta + 0.3 * gamma
    assert float(total) == pytest.approx(expected)
    assert parts["classification"] == pytest.approx(CE)


def test_weights_are_applied():
    total, _ = salience_loss(OBJECTIVES["baseline"], LOGITS, T, F_, H, LossWeights(2.0, 3.0),
                             labels=LABELS)
    assert float(total) == pytest.approx(2 * CE + 3 * (1 + 0.25**2 + 0.5**2) / 4)


def test_kl_to_the_clean_model_by_hand():
    clean = torch.tensor([[1.0, 0.0]])
    p = [math.exp(1) / (1 + math.exp(1)), 1 / (1 + math.exp(1))]
    expected = sum(pi * (math.log(pi) - math.log(0.5)) for pi in p)  # model: uniform
    assert float(classification_term(torch.zeros(1, 2), clean_logits=clean)) == pytest.approx(expected)
    assert float(classification_term(clean, clean_logits=clean)) == pytest.approx(0, abs=1e-7)


def test_centred_logit_distance_by_hand():
    """One class's score moved by d among C: d²(1 − 1/C); a shift shared by all classes: 0."""
    clean = torch.tensor([[2.0, -1.0, 0.5, 0.0], [0.3, 0.1, -0.2, 4.0]])
    moved = clean.clone()
    moved[0, 1] += 1.5
    distance = centred_logit_distance(moved + torch.tensor([[0.0], [7.0]]), clean)
    assert distance.tolist() == pytest.approx([1.5**2 * (1 - 1 / 4), 0.0], abs=1e-6)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return load_backbone("tiny_resnet", weights="random", device="cpu")


def test_true_and_false_maps_by_hand(tiny):
    """GAP → Linear head: GradCAM weights are W_c / Z, so the supervised GradCAM is
    t = ReLU(Σ_k W_ck A_k / Z); the false class of a 7-class task is the mean of the rivals'."""
    torch.manual_seed(1)
    inputs = torch.randn(3, 3, 64, 64)
    targets = torch.tensor([5, 0, 2])
    t, f, logits, activations = true_false_maps(tiny, inputs, "GradCAM", targets)
    weight = tiny.model.get_classifier().weight
    z = activations.shape[-1] * activations.shape[-2]
    by_hand = torch.einsum("nk,nkhw->nhw", weight[targets], activations) / z
    assert torch.allclose(t, by_hand.clamp_min(0), atol=1e-5)
    rivals = torch.stack([weight[[j for j in range(weight.shape[0]) if j != c]].mean(0)
                          for c in targets.tolist()])
    assert f.shape == (1, 3, 8, 8)
    assert torch.allclose(f[0], torch.einsum("nk,nkhw->nhw", rivals, activations).clamp_min(0) / z,
                          atol=1e-5)
    assert torch.allclose(logits, tiny.model(inputs), atol=1e-5)


@pytest.fixture(scope="module")
def tiny7(tmp_path_factory):
    """tiny_resnet with a 7-class head (random weights, as a checkpoint file)."""
    from safetensors.torch import save_file

    from cams.backbones import spec_for
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("seven") / "seven.safetensors"
    save_file(spec_for("tiny_resnet").create(num_classes=7).state_dict(), path)
    return load_backbone("tiny_resnet", path, device="cpu")


def test_class_cams_for_every_rival_choice_by_hand(tiny7):
    """Divisive Decisions' t and f are the un-ReLU'd class CAMs W_c·A (here / Z): the mean
    rival's, the strongest rival's, or each rival's (C − 1 maps, in class order)."""
    tiny = tiny7
    torch.manual_seed(2)
    inputs = torch.randn(2, 3, 64, 64)
    targets = torch.tensor([3, 0])
    weight = tiny.model.get_classifier().weight
    with torch.no_grad():
        activations = tiny.model.forward_features(inputs)
        logits = tiny.model(inputs)
    z = activations.shape[-1] * activations.shape[-2]
    cams = torch.einsum("ck,nkhw->cnhw", weight, activations) / z  # every class's CAM
    t, mean_f, _, _ = true_false_maps(tiny, inputs, "TrueClassCAM", targets, "mean")
    assert torch.allclose(t, cams[targets, [0, 1]], atol=1e-5) and bool((t < 0).any())
    expected = torch.stack([cams[[j for j in range(7) if j != c], n].mean(0)
                            for n, c in enumerate(targets.tolist())])
    assert torch.allclose(mean_f[0], expected, atol=1e-5)
    _, strongest, _, _ = true_false_maps(tiny, inputs, "TrueClassCAM", targets, "strongest")
    rival = logits.scatter(1, targets[:, None], float("-inf")).argmax(1)
    assert torch.allclose(strongest[0], cams[rival, [0, 1]], atol=1e-5)
    _, every, _, _ = true_false_maps(tiny, inputs, "TrueClassCAM", targets, "all")
    assert every.shape == (6, 2, 8, 8)
    for n, c in enumerate(targets.tolist()):
        assert torch.allclose(every[:, n], cams[[j for j in range(7) if j != c], n], atol=1e-5)


def test_pairwise_terms_average_over_the_rivals():
    two = torch.cat([F_, 2 * F_ - 1])  # a second rival
    one_each = [OBJECTIVES["contrast"].terms(H, T, rival[None])["gamma"] for rival in two]
    both = OBJECTIVES["contrast"].terms(H, T, two)["gamma"]
    assert float(both) == pytest.approx((float(one_each[0]) + float(one_each[1])) / 2)


@pytest.mark.parametrize("cam", ["FalseClassCAM", "DifferenceSalience"])
def test_maps_of_another_class_are_refused_as_t(tiny, cam):
    from cams.errors import UserInputError
    with pytest.raises(UserInputError, match="not a map of the true class"):
        true_false_maps(tiny, torch.randn(1, 3, 64, 64), cam, torch.tensor([0]))


@pytest.mark.parametrize("cam", ["GradCAM", "MeanDiffGradCAM++", "HiResCAM"])
def test_the_cam_term_alone_reaches_every_layer(tiny, cam):
    """With α = 0 the only gradient is through the CAM: it must reach the first convolution."""
    tiny.model.zero_grad()
    inputs = torch.randn(2, 3, 64, 64)
    t, f, logits, _ = true_false_maps(tiny, inputs, cam, torch.tensor([1, 3]))
    h = sham_mask(*t.shape[-2:]).expand_as(t)
    loss, _ = salience_loss(OBJECTIVES["baseline"], logits, t, f, h, LossWeights(0.0, 1.0),
                            labels=torch.tensor([1, 3]))
    loss.backward()
    first = next(tiny.model.parameters())
    assert first.grad is not None and torch.isfinite(first.grad).all()
    assert float(first.grad.abs().sum()) > 0


def test_the_sham_row_is_the_baseline_with_the_sham_as_h():
    """Passive fooling is a row, not a special case: the baseline's terms and weights, with h the
    SHAM of the layer whatever the data's maps are."""
    sham, baseline = OBJECTIVES["sham"], OBJECTIVES["baseline"]
    assert sham.terms is baseline.terms and sham.weights == baseline.weights
    assert not sham.needs_maps and all(o.needs_maps for o in OBJECTIVES.values() if o is not sham)
    masks = torch.rand(2, 56, 56)
    h = sham.salience(masks, (7, 7), 3.35)
    assert h.shape == (2, 7, 7) and torch.equal(h[0], sham_mask(7, 7)) and torch.equal(h[1], h[0])
    # The data's maps, area-averaged to the layer and min-max normalised.
    data = baseline.salience(masks, (7, 7), 3.35)
    pooled = masks.reshape(2, 7, 8, 7, 8).mean(dim=(2, 4))
    low = pooled.flatten(1).amin(1)[:, None, None]
    high = pooled.flatten(1).amax(1)[:, None, None]
    torch.testing.assert_close(data, (pooled - low) / (high - low))


def test_the_sham_cam_target_by_hand():
    """t* = mean t + strength·(max t − min t)·(SHAM − mean SHAM), computed here with numpy; its
    spatial mean (the class's logit at a GAP → Linear head) is t's."""
    import numpy as np
    t = torch.randn(2, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    target = sham_cam_target(t, 3.35, 0.5)
    sham = sham_mask(5, 5, 3.35).double().numpy()
    for got, values in zip(target.numpy(), t.numpy(), strict=True):
        np.testing.assert_allclose(got, values.mean() + 0.5 * (values.max() - values.min())
                                   * (sham - sham.mean()), rtol=1e-12)
        assert got.mean() == pytest.approx(values.mean(), abs=1e-12)


def test_the_passive_feature_target_by_hand():
    """(1 − ρ)·A + ρ·mean(A)·SHAM/mean(SHAM), computed here with numpy: every channel keeps its
    spatial mean, so a GAP → Linear head's logits are unchanged, and at ρ = 1 the normalised
    class CAM of every class whose logit is above its bias is the SHAM itself."""
    import numpy as np
    generator = torch.Generator().manual_seed(0)
    features = torch.rand(2, 6, 5, 5, generator=generator, dtype=torch.float64) * 6
    sham = sham_mask(5, 5, 3.35).double().numpy()
    for strength in (0.3, 1.0):
        target = sham_feature_target(features, 3.35, strength)
        for got, values in zip(target.numpy(), features.numpy(), strict=True):
            means = values.mean(axis=(1, 2), keepdims=True)
            np.testing.assert_allclose(got, (1 - strength) * values
                                       + strength * means * sham / sham.mean(), rtol=1e-12)
            np.testing.assert_allclose(got.mean(axis=(1, 2)), values.mean(axis=(1, 2)),
                                       rtol=1e-12)
    rows = torch.rand(3, 6, generator=generator, dtype=torch.float64)  # positive rows: z > b
    cams = torch.einsum("ck,nkhw->nchw", rows, sham_feature_target(features, 3.35, 1.0))
    low = cams.flatten(2).amin(2)[..., None, None]
    high = cams.flatten(2).amax(2)[..., None, None]
    np.testing.assert_allclose(((cams - low) / (high - low)).numpy(),
                               np.broadcast_to(sham, (2, 3, 5, 5)), atol=1e-12)


def test_the_own_class_feature_target_by_hand():
    """Along the image's class row only: A + ρ·(mean(t)·SHAM/mean(SHAM) − t)·w/‖w‖², clamped to
    [0, 6], computed here with numpy; without the clamp the class's CAM is (1 − ρ)·t +
    ρ·mean(t)·SHAM/mean(SHAM), and a direction orthogonal to the row does not move."""
    import numpy as np
    generator = torch.Generator().manual_seed(1)
    features = 2 + torch.rand(2, 4, 5, 5, generator=generator, dtype=torch.float64)
    rows = torch.rand(2, 4, generator=generator, dtype=torch.float64)
    sham = sham_mask(5, 5, 3.35).double().numpy()
    target = sham_feature_target(features, 3.35, 0.1, rows).numpy()
    for got, values, row in zip(target, features.numpy(), rows.numpy(), strict=True):
        t = np.tensordot(row, values, axes=1)
        moved = 0.1 * (t.mean() * sham / sham.mean() - t)
        expected = np.clip(values + moved[None] * (row / (row @ row))[:, None, None], 0, 6)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        assert expected.min() > 0 and expected.max() < 6  # no clamp at this strength
        np.testing.assert_allclose(np.tensordot(row, got, axes=1),
                                   0.9 * t + 0.1 * t.mean() * sham / sham.mean(), rtol=1e-10)
        orthogonal = np.array([row[1], -row[0], 0.0, 0.0])
        np.testing.assert_allclose(np.tensordot(orthogonal, got, axes=1),
                                   np.tensordot(orthogonal, values, axes=1), atol=1e-12)


def test_relative_distance_is_one_at_the_start_and_zero_at_the_target():
    start, target = torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2)
    assert relative_distance(start, target, start).tolist() == [1.0]
    assert relative_distance(target, target, start).tolist() == [0.0]
    assert relative_distance(start + 0.5, target, start).tolist() == [0.25]
