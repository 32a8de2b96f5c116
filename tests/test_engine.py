"""Engine invariants, computed by hand from the model's own weights; threads; differentiability."""

from __future__ import annotations

import math
import threading

import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from cams import explain, load_backbone
from cams.engine import layer_cams
from cams.errors import UserInputError
from cams.folding import folded
from cams.methods import DEFAULT_METHODS, METHOD_NAMES, METHODS, Kind, minmax

# Every method a CNN has but the two that run a pass per channel many times over (SS-CAM 35 per
# channel, IS-CAM 10: minutes for a ResNet's 512 channels; tests/test_conformance.py checks them).
ALL_BUT_SLOWEST = [name for name in METHOD_NAMES if METHODS[name].kind not in (
    Kind.SMOOTHED_SCORES, Kind.INTEGRATED_SCORES, Kind.ATTENTION)]


def hand_normalised(layer_map: torch.Tensor, size) -> torch.Tensor:
    """The display normalization (docs/equations.md), written out: bilinear upsample, then per-map min-max."""
    up = F.interpolate(layer_map[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    low = up.amin(dim=(1, 2), keepdim=True)
    high = up.amax(dim=(1, 2), keepdim=True)
    return (up - low) / (high - low)


def test_default_panel_has_every_method_but_scorecam(lite0, chelsea):
    result = explain(lite0, [chelsea])
    assert list(result.maps) == list(DEFAULT_METHODS)
    for name, heatmap in result.maps.items():
        assert heatmap.shape == (1, 224, 224), name
        assert float(heatmap.min()) == pytest.approx(0.0, abs=1e-6), name
        assert float(heatmap.max()) == pytest.approx(1.0, abs=1e-6), name
        assert 0.0 <= float(heatmap.min()) and float(heatmap.max()) <= 1.0, name
        assert not heatmap.requires_grad
    assert int(result.targets[0]) == 285 and int(result.false_classes[0]) == 282


def test_cam_and_difference_salience_by_hand_from_the_classifier(lite0, chelsea, coffee):
    inputs = torch.cat([lite0.preprocess(chelsea), lite0.preprocess(coffee)])
    result = explain(lite0, inputs, methods=["CAM", "TrueClassCAM", "FalseClassCAM",
                                             "DifferenceSalience"], false_class=[281, 968])
    with torch.no_grad():
        activations = lite0.model.forward_features(inputs)
        weight = lite0.model.classifier.weight
        logits = lite0.model(inputs)
    targets = logits.argmax(dim=1)
    t = torch.einsum("nk,nkhw->nhw", weight[targets], activations)
    f = torch.einsum("nk,nkhw->nhw", weight[torch.tensor([281, 968])], activations)
    expected = {"CAM": t, "TrueClassCAM": t, "FalseClassCAM": f, "DifferenceSalience": t - f}
    for name, layer_map in expected.items():
        torch.testing.assert_close(result.maps[name], hand_normalised(layer_map, (224, 224)),
                                   atol=1e-4, rtol=0)
    torch.testing.assert_close(result.logits, logits, atol=1e-4, rtol=1e-4)


def binary_backbone(tmp_path_factory):
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("binary") / "binary.safetensors"
    save_file(timm.create_model("resnet18", num_classes=2).state_dict(), path)
    return load_backbone("resnet18", weights=path, device="cpu")


def test_binary_head_mean_max_lse_coincide_and_equal_the_difference(tmp_path_factory, chelsea):
    backbone = binary_backbone(tmp_path_factory)
    inputs = F.interpolate(backbone.preprocess(chelsea), size=(128, 128), mode="bilinear")
    result = explain(backbone, inputs, methods=ALL_BUT_SLOWEST)
    for suffix in ("", "++"):
        mean = result.maps[f"MeanDiffGradCAM{suffix}"]
        torch.testing.assert_close(result.maps[f"MaxDiffGradCAM{suffix}"], mean)
        torch.testing.assert_close(result.maps[f"LSEDiffGradCAM{suffix}"], mean)
    # Binary: y_c − y_other has gradient (W_c − W_other)/Z, so GradCAM of it is ReLU(t − f).
    with torch.no_grad():
        activations = backbone.model.forward_features(inputs)
    weight = backbone.model.fc.weight
    c = int(result.targets[0])
    difference = torch.einsum("k,nkhw->nhw", weight[c] - weight[1 - c], activations)
    torch.testing.assert_close(result.maps["MeanDiffGradCAM"],
                               hand_normalised(F.relu(difference), (128, 128)), atol=1e-4, rtol=0)
    assert int(result.false_classes[0]) == 1 - c


def test_gradient_panel_computes_no_parameter_gradients_and_leaves_no_hooks(resnet_random, chelsea):
    model = resnet_random.model
    model.zero_grad(set_to_none=True)
    explain(resnet_random, [chelsea], methods=ALL_BUT_SLOWEST)  # the hooking ones among them
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks
               for m in model.modules())


def test_explicit_target_and_false_class(lite0, chelsea):
    result = explain(lite0, [chelsea], methods=["GradCAM"], target=281, false_class=285)
    assert int(result.targets[0]) == 281 and int(result.false_classes[0]) == 285
    other = explain(lite0, [chelsea], methods=["GradCAM"])
    assert float((result.maps["GradCAM"] - other.maps["GradCAM"]).abs().max()) > 0.05


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"target": 1000}, "target class 1000 is out of range"),
    ({"target": -1}, "out of range"),
    ({"false_class": 5000}, "false class 5000 is out of range"),
    ({"target": 3, "false_class": 3}, "must differ"),
    ({"methods": ["GradCAM", "FooCAM"]}, "unknown method 'FooCAM'"),
    ({"target": [1, 2, 3]}, "3 classes given for 1 images"),
])
def test_bad_requests_are_refused(lite0, chelsea, kwargs, message):
    with pytest.raises(UserInputError, match=message):
        explain(lite0, [chelsea], **kwargs)


def test_cam_is_refused_for_heads_that_are_not_average_pool_linear(convnext_random, chelsea):
    assert not convnext_random.linear_head
    assert "CAM" not in explain(convnext_random, [chelsea]).maps
    with pytest.raises(UserInputError, match="CAM needs a global-average-pool"):
        explain(convnext_random, [chelsea], methods=["CAM"])


# The default panel, and methods that hook the model for one call (their hooks must act on the
# calling thread's passes only, and one hooked pass run at a time).
THREADED = {"chelsea": None, "coffee": ["RefineCAM", "FullGrad", "GradCAM"]}


def test_threads_share_one_backbone_safely(lite0, chelsea, coffee):
    images = {"chelsea": chelsea, "coffee": coffee}
    sequential = {name: explain(lite0, [image], THREADED[name]).maps
                  for name, image in images.items()}
    results, errors = {}, []

    def work(name):
        try:
            for _ in range(3):
                results[name] = explain(lite0, [images[name]], THREADED[name]).maps
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(name,)) for name in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for name in images:
        for method, heatmap in sequential[name].items():
            torch.testing.assert_close(results[name][method], heatmap, atol=1e-5, rtol=0)


def test_batched_equals_one_by_one(lite0, chelsea, coffee):
    batch = explain(lite0, [chelsea, coffee])
    for index, image in enumerate([chelsea, coffee]):
        single = explain(lite0, [image])
        for method, heatmap in single.maps.items():
            torch.testing.assert_close(batch.maps[method][index:index + 1], heatmap,
                                       atol=1e-4, rtol=0)


def test_differentiable_mode_reaches_the_parameters(resnet_random, chelsea):
    model = resnet_random.model
    inputs = F.interpolate(resnet_random.preprocess(chelsea), size=(96, 96), mode="bilinear")
    result = explain(resnet_random, inputs, methods=["GradCAM", "LSEDiffGradCAM++",
                                                     "DifferenceSalience"], create_graph=True)
    loss = sum(layer_map.sum() for layer_map in result.layer_maps.values())
    conv_weight = model.layer4[0].downsample[0].weight  # below the target layer
    gradient, = torch.autograd.grad(loss, conv_weight)
    assert gradient.abs().sum() > 0
    # The graph-free run gives the same maps.
    plain = explain(resnet_random, inputs, methods=list(result.maps))
    for name, heatmap in plain.maps.items():
        torch.testing.assert_close(result.maps[name].detach(), heatmap, atol=1e-5, rtol=0)


def test_differentiable_mode_with_frozen_features_and_under_no_grad(resnet_random, chelsea):
    model = resnet_random.model
    inputs = F.interpolate(resnet_random.preprocess(chelsea), size=(96, 96), mode="bilinear")
    frozen = [p for name, p in model.named_parameters() if not name.startswith("fc.")]
    try:
        for parameter in frozen:
            parameter.requires_grad_(False)
        result = explain(resnet_random, inputs, methods=["GradCAM"], create_graph=True)
        gradient, = torch.autograd.grad(result.layer_maps["GradCAM"].sum(), model.fc.weight)
        assert gradient.abs().sum() > 0
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)
    with torch.no_grad():
        result = explain(resnet_random, inputs, methods=["GradCAM"], create_graph=True)
    assert result.layer_maps["GradCAM"].requires_grad


def test_minmax_maps_constant_maps_to_zero():
    maps = torch.stack([torch.full((3, 3), 2.0), torch.arange(9.0).reshape(3, 3)])
    normalised = minmax(maps)
    assert float(normalised[0].abs().max()) == 0.0
    torch.testing.assert_close(normalised[1], torch.arange(9.0).reshape(3, 3) / 8)


def test_a_new_row_is_all_a_new_method_needs(resnet_random, chelsea):
    """A method the table does not have, given to the engine as a row: the engine computes it
    with no change (here |Σ_k G_k ⊙ A_k| of the Max difference, checked by hand: for a GAP →
    Linear head G = (W_c − W_rival) / Z at every position)."""
    from cams.engine import layer_cams
    from cams.methods import MAX_DIFF, Kind, Method

    row = Method("AbsHiResDiff", Kind.GRADIENT, lambda a, g: (g * a).sum(dim=-3).abs(),
                 "test row", gradient=MAX_DIFF)
    inputs = F.interpolate(resnet_random.preprocess(chelsea), size=(96, 96), mode="bilinear")
    result = layer_cams(resnet_random, inputs, [row, "GradCAM"])
    with torch.no_grad():
        activations = resnet_random.model.forward_features(inputs)
        logits = resnet_random.model(inputs)
    c = int(logits.argmax())
    rival = int(logits[0].clone().index_fill_(0, torch.tensor(c), float("-inf")).argmax())
    weight = resnet_random.model.fc.weight
    z = activations.shape[-1] * activations.shape[-2]
    expected = torch.einsum("k,nkhw->nhw", (weight[c] - weight[rival]) / z, activations).abs()
    torch.testing.assert_close(result.maps["AbsHiResDiff"], expected, atol=1e-5, rtol=1e-4)
    assert list(result.maps) == ["AbsHiResDiff", "GradCAM"]


def test_explain_takes_a_users_row_alone_or_beside_the_tables(resnet_random, chelsea):
    """The public API: ``explain`` (and ``explain_pair``) with a ``Method`` row of one's own,
    alone or with built-in names: its display map is the hand computation upsampled and min-max
    normalised, keyed by its name after the table's methods; a row that takes a table's name is
    refused in one line."""
    from cams import Kind, Method, explain, explain_pair
    from cams.errors import UserInputError
    from cams.methods import LOGIT

    # ReLU(Σ_k |G_k| ⊙ A_k): for a GAP → Linear head G_k = W_ck / Z at every position
    row = Method("ChannelSumCAM", Kind.GRADIENT, lambda a, g: F.relu((g.abs() * a).sum(dim=-3)),
                 "test row", gradient=LOGIT)
    inputs = F.interpolate(resnet_random.preprocess(chelsea), size=(96, 96), mode="bilinear")
    alone = explain(resnet_random, inputs, [row])
    with torch.no_grad():
        activations = resnet_random.model.forward_features(inputs)
        c = int(resnet_random.model(inputs).argmax())
    weight = resnet_random.model.fc.weight[c].abs() / (activations.shape[-1] * activations.shape[-2])
    summed = F.relu(torch.einsum("k,nkhw->nhw", weight, activations))[:, None]
    upsampled = F.interpolate(summed, size=(96, 96), mode="bilinear", align_corners=False)[:, 0]
    low, high = upsampled.amin(), upsampled.amax()
    torch.testing.assert_close(alone.maps["ChannelSumCAM"], (upsampled - low) / (high - low),
                               atol=1e-5, rtol=1e-4)
    both = explain(resnet_random, inputs, [row, "GradCAM"])
    assert list(both.maps) == ["GradCAM", "ChannelSumCAM"]
    torch.testing.assert_close(both.maps["ChannelSumCAM"], alone.maps["ChannelSumCAM"])
    a, b = explain_pair(resnet_random, resnet_random, inputs, [row])
    torch.testing.assert_close(a.maps["ChannelSumCAM"], b.maps["ChannelSumCAM"])
    impostor = Method("GradCAM", Kind.GRADIENT, row.layer_map, "not GradCAM", gradient=LOGIT)
    with pytest.raises(UserInputError, match="a name the method table already has"):
        explain(resnet_random, inputs, [impostor])


def test_every_classs_gradcam_at_a_linear_head_is_the_engines_gradcam(resnet_random, chelsea):
    """linear_head_gradcams (one product for every class, no VJP) against layer_cams' GradCAM
    of each class (one VJP each): the same maps, and differentiable in the classifier."""
    from cams.engine import layer_cams, linear_head_gradcams
    inputs = F.interpolate(resnet_random.preprocess(chelsea), size=(96, 96), mode="bilinear")
    classes = torch.tensor([[3, 285, 999, 3]])
    activations, _ = resnet_random.forward(inputs, needs_graph=False)
    maps = linear_head_gradcams(resnet_random, activations, classes)
    assert maps.shape == (1, 4, *activations.shape[-2:])
    for column, c in enumerate(classes[0].tolist()):
        expected = layer_cams(resnet_random, inputs, ["GradCAM"], c).maps["GradCAM"][0].detach()
        torch.testing.assert_close(maps[0, column], expected, atol=1e-6, rtol=1e-5)
    maps.sum().backward()
    assert resnet_random.model.fc.weight.grad is not None
    resnet_random.model.fc.weight.grad = None


def shifted_classifier(backbone, row_change):
    """A copy of ``backbone`` whose classifier weights W become W + row_change (C×K)."""
    import copy
    other = copy.deepcopy(backbone)
    with torch.no_grad():
        other.model.get_classifier().weight.add_(row_change)
    return other


def test_diffgradcam_sees_through_a_class_uniform_change_and_gradcam_does_not(resnet_random,
                                                                              chelsea):
    """B = A with W + 1·rᵀ: every logit moves by the same r·pool(A), so the probabilities stay;
    every class's CAM moves by the same Σ r_k A_k / Z. The DiffGradCAM weights w_c − b(w_¬c)
    cancel it exactly; GradCAM's do not (docs/equations.md, common-mode share)."""
    from cams.engine import explain_pair
    from cams.methods import DIFF_BASELINES
    from cams.metrics import common_mode_share, mse
    weight = resnet_random.model.get_classifier().weight
    generator = torch.Generator().manual_seed(0)
    r = 20 * weight.abs().max() * torch.rand(weight.shape[1], generator=generator)
    uniform = shifted_classifier(resnet_random, r.expand_as(weight))
    inputs = F.interpolate(resnet_random.preprocess(chelsea), size=(128, 128), mode="bilinear")
    a, b = explain_pair(resnet_random, uniform, inputs, [*DIFF_BASELINES, "GradCAM"],
                        class_maps=True)
    torch.testing.assert_close(a.probabilities, b.probabilities, atol=1e-5, rtol=0)
    for name in DIFF_BASELINES:  # FinerCAM's weighted differences cancel it too
        torch.testing.assert_close(a.maps[name], b.maps[name], atol=1e-5, rtol=0)
    assert float(mse(a.maps["GradCAM"], b.maps["GradCAM"])[0]) > 1e-3
    assert float(common_mode_share(a.class_maps, b.class_maps)[0]) == pytest.approx(1, abs=1e-5)
    # A change of the explained class's weights alone is class-specific: it moves MeanDiffGradCAM.
    c = int(a.targets[0])
    specific = shifted_classifier(resnet_random, torch.zeros_like(weight).index_copy(
        0, torch.tensor([c]), r[None]))
    a, b = explain_pair(resnet_random, specific, inputs, class_maps=True)
    assert float(mse(a.maps["MeanDiffGradCAM"], b.maps["MeanDiffGradCAM"])[0]) > 1e-3
    # Δ_j = 0 for j ≠ c, so u = Δ_c / C and s_c = Δ_c (1 − 1/C): share = 1 / (1 + (C − 1)²).
    classes = weight.shape[0]
    expected = 1 / (1 + (classes - 1) ** 2)
    assert float(common_mode_share(a.class_maps, b.class_maps)[0]) == pytest.approx(expected,
                                                                                     rel=1e-3)


def test_meandiff_changes_by_c_over_c_minus_one_times_the_class_specific_part(convnext_random,
                                                                             chelsea):
    """For any head (ConvNeXt normalises after pooling): MeanDiffGradCAM's un-ReLU'd map is
    C/(C−1)·(t − L_mean), so between two checkpoints it changes by C/(C−1)·s_c, with
    s_c = Δ_c − u the class-specific part of the change (docs/equations.md)."""
    import copy

    from cams.engine import explain_pair, layer_cams
    from cams.methods import MEAN_DIFF, METHODS
    other = copy.deepcopy(convnext_random)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in other.model.stages[-1].parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    inputs = F.interpolate(convnext_random.preprocess(chelsea), size=(128, 128), mode="bilinear")
    a, b = explain_pair(convnext_random, other, inputs, ["GradCAM"], class_maps=True)
    row = METHODS["TrueClassCAM"].explaining(MEAN_DIFF)  # MeanDiffGradCAM's map before its ReLU
    before, after = (layer_cams(backbone, inputs, [row], a.targets).maps[row.name]
                     for backbone in (convnext_random, other))
    classes = convnext_random.num_classes
    uniform = b.class_maps["mean"] - a.class_maps["mean"]
    specific = (b.class_maps["target"] - a.class_maps["target"]) - uniform
    torch.testing.assert_close(after - before, classes / (classes - 1) * specific,
                               atol=1e-5, rtol=1e-4)
    assert float(specific.abs().max()) > 1e-3  # the check is not vacuous


def test_maps_made_at_the_input_resolution_count_the_layers_positions_for_entropy(lite0, chelsea):
    """FullGrad and RefineCAM make their maps at 224×224; their layer maps (entropy's input) are
    those averaged onto Lite0's 7×7 grid, so that every map's entropy is over 49 positions."""
    from cams.metrics import cam_entropy_nats
    result = explain(lite0, [chelsea], ["GradCAM", "FullGrad", "RefineCAM"])
    for name in ("FullGrad", "RefineCAM"):
        assert tuple(result.layer_maps[name].shape) == (1, 7, 7)
        assert float(cam_entropy_nats(result.layer_maps[name])[0]) <= math.log(49) + 1e-6
    # by hand: the mean of each 32×32 block of the full-resolution map, before normalisation
    full = layer_cams(lite0, result.inputs, ["RefineCAM"]).maps["RefineCAM"]
    blocks = full.reshape(1, 7, 32, 7, 32).mean(dim=(2, 4))
    torch.testing.assert_close(result.layer_maps["RefineCAM"], blocks, atol=1e-6, rtol=1e-5)


def test_folded_batch_norms_are_the_hand_formula_and_the_model_to_1e_5(lite0):
    """``cams.folding``: conv → bn becomes one conv with w·γ/√(σ²+ε) and (b − μ)·γ/√(σ²+ε) + β
    (computed here by hand); Lite0 folded keeps no batch norm and gives the same features."""
    torch.manual_seed(0)
    small = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    norm = small[1]
    norm.running_mean.uniform_(-1, 1), norm.running_var.uniform_(0.5, 2)
    norm.weight.data.uniform_(0.5, 2), norm.bias.data.uniform_(-1, 1)
    probe = torch.rand(1, 3, 8, 8)
    copied = folded(small, probe)
    scale = norm.weight / (norm.running_var + norm.eps).sqrt()
    assert torch.allclose(copied[0].weight, small[0].weight * scale[:, None, None, None])
    assert torch.allclose(copied[0].bias, (small[0].bias - norm.running_mean) * scale + norm.bias)
    assert isinstance(copied[1], torch.nn.Identity)
    model = lite0.model
    inputs = torch.rand(2, 3, 224, 224, device=next(model.parameters()).device)
    copied = folded(model, inputs)
    assert copied is not model and folded(model) is copied  # made once
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in copied.modules())
    with torch.no_grad():
        expected, got = model.forward_features(inputs), copied.forward_features(inputs)
    assert float((expected - got).abs().max()) < 1e-4 * float(expected.abs().max())


def test_folding_follows_training_and_refuses_a_model_it_would_change():
    """A model in training mode is used as it is; after a step the copy is made again from the
    new weights; a model whose batch norm is listed after a conv it does not follow is not
    folded (the probe disagrees)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Flatten(), torch.nn.LazyLinear(2))
    probe = torch.rand(2, 3, 8, 8)
    model(probe)
    assert folded(model.train(), probe) is model
    model.eval()
    before = folded(model, probe)
    with torch.no_grad():
        model[0].weight.add_(1.0)  # a step changes the weights in place
    after = folded(model, probe)
    assert after is not before and torch.allclose(after(probe), model(probe), atol=1e-5)

    class Misleading(torch.nn.Module):  # lists conv then norm, applies the norm first
        def __init__(self):
            super().__init__()
            self.conv, self.norm = torch.nn.Conv2d(3, 3, 1), torch.nn.BatchNorm2d(3)

        def forward(self, x):
            return self.conv(self.norm(x))

    odd = Misleading().eval()
    odd.norm.running_mean.fill_(0.5)
    assert folded(odd, probe) is odd
