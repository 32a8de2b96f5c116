"""Comparing two checkpoints: tables checked against numpy / scipy on the returned maps."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from skimage import data

from cam_studio.tabs.comparison import TABLE_COLUMNS, compare_checkpoints
from cams import load_backbone
from cams.errors import UserInputError
from cams.methods import DIFF_BASELINES


@pytest.fixture(scope="module")
def perturbed_lite0():
    """A second checkpoint of the default backbone: the head's last conv nudged by noise."""
    backbone = load_backbone("efficientnet_lite0", device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        weight = backbone.model.conv_head.weight
        weight.add_(0.3 * weight.std() * torch.randn(weight.shape, generator=generator))
    return backbone


def rows_by(table, quantity):
    return {row[1]: row[2:] for row in table if row[0].startswith(quantity)}


def test_same_checkpoint_twice_is_identical(lite0, chelsea):
    comparison = compare_checkpoints([lite0, lite0], ["A", "B"], chelsea)
    table = comparison.table()
    assert all(values[2] == 0.0 for values in rows_by(table, "susceptibility").values())
    assert comparison.predictions_agree()
    assert table[-1][-1] == "agree"


def test_tables_match_an_independent_computation(lite0, perturbed_lite0, chelsea):
    from cams.methods import DEFAULT_METHODS
    comparison = compare_checkpoints([lite0, perturbed_lite0], ["clean", "nudged"], chelsea,
                                     [*DEFAULT_METHODS, "FinerCAM"])
    maps_a, maps_b = comparison.maps(0), comparison.maps(1)
    table = comparison.table()
    susceptibility = rows_by(table, "susceptibility")
    assert set(susceptibility) == set(maps_a)
    for name, values in susceptibility.items():
        assert values[2] == pytest.approx(float(np.mean((maps_a[name] - maps_b[name]) ** 2)),
                                          rel=1e-5, abs=1e-12)
    assert max(values[2] for values in susceptibility.values()) > 1e-4
    similarity = rows_by(table, "similarity")
    assert set(similarity) == set(DIFF_BASELINES)
    for name, baseline in DIFF_BASELINES.items():
        expected = [np.mean((m[name] - m[baseline]) ** 2) for m in (maps_a, maps_b)]
        assert similarity[name][:2] == pytest.approx(expected, rel=1e-5, abs=1e-12)
    entropy = rows_by(table, "CAM entropy")
    layer = comparison.results[1].layer_maps["GradCAM"][0].numpy().ravel()
    assert entropy["GradCAM"][1] == pytest.approx(stats.entropy(layer), rel=1e-5)


def test_b_explains_the_classes_of_a(lite0, perturbed_lite0, chelsea):
    comparison = compare_checkpoints([lite0, perturbed_lite0], ["A", "B"], chelsea,
                                     target=281, false_class=285)
    for result in comparison.results:
        assert int(result.targets[0]) == 281 and int(result.false_classes[0]) == 285
    assert [c for c, _, _ in comparison.top_k(0)][:1] == [285]
    assert len(comparison.top_k(1)) == 5


def test_csv_and_figure(lite0, chelsea):
    comparison = compare_checkpoints([lite0], ["A: clean"], chelsea,
                                     methods=["GradCAM", "MeanDiffGradCAM", "TrueClassCAM",
                                              "FalseClassCAM", "DifferenceSalience"])
    rows = list(csv.reader(io.StringIO(comparison.table_csv())))
    assert tuple(rows[0]) == TABLE_COLUMNS and len(rows) == 1 + 1 + 5 + 1
    picture = comparison.grid()
    assert picture.dtype == np.uint8 and picture.shape[2] == 3
    assert picture.shape[1] > picture.shape[0] > 2 * 224  # two rows: methods, then t / f / t − f


def test_checkpoints_of_different_tasks_are_refused(lite0, resnet_random, chelsea, tmp_path):
    import timm
    from safetensors.torch import save_file
    path = tmp_path / "two.safetensors"
    save_file(timm.create_model("efficientnet_lite0", num_classes=2).state_dict(), path)
    with pytest.raises(UserInputError, match="same task"):
        compare_checkpoints([lite0, load_backbone("efficientnet_lite0", weights=path)],
                            ["A", "B"], chelsea)


def test_common_mode_share_by_hand(lite0, perturbed_lite0, chelsea):
    """GAP → Linear, the same classifier W in A and B: Δ_j = W_j·ΔA / Z, the class-uniform part
    u = mean_j W_j·ΔA / Z and the rest s_c = (W_c − mean_j W_j)·ΔA / Z."""
    comparison = compare_checkpoints([lite0, perturbed_lite0], ["A", "B"], chelsea)
    share = next(row[4] for row in comparison.table() if row[0].startswith("common-mode"))
    inputs = lite0.preprocess(chelsea)
    with torch.no_grad():
        change = (perturbed_lite0.model.forward_features(inputs)
                  - lite0.model.forward_features(inputs))[0]
    weight = lite0.model.get_classifier().weight
    z = change.shape[-1] * change.shape[-2]
    uniform = torch.einsum("k,khw->hw", weight.mean(0), change) / z
    specific = torch.einsum("k,khw->hw", weight[comparison.target] - weight.mean(0), change) / z
    expected = float(uniform.square().sum() / (uniform.square().sum() + specific.square().sum()))
    assert 0 < share < 1 and share == pytest.approx(expected, rel=1e-3)
    same = compare_checkpoints([lite0, lite0], ["A", "B"], chelsea).table()
    assert next(row[4] for row in same if row[0].startswith("common-mode")) == "no change"


def test_the_lru_cache_computes_a_key_once_even_when_asked_at_once():
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from cam_studio.tabs.compare import LruCache
    cache, calls, lock = LruCache(2), [], threading.Lock()

    def compute(key):
        def work():
            with lock:
                calls.append(key)
            time.sleep(0.05)
            return object()
        return work

    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(lambda _: cache.get("a", compute("a")), range(8)))
    assert calls == ["a"] and all(value is values[0] for value in values)
    cache.get("b", compute("b"))
    cache.get("a", compute("a"))  # a is now the most recent: c evicts b
    cache.get("c", compute("c"))
    assert len(cache) == 2 and cache.get("a", compute("a")) is values[0]
    cache.get("b", compute("b"))
    assert calls == ["a", "b", "c", "b"]


def test_a_repeated_comparison_comes_from_the_result_cache(tmp_path):
    """The same image and settings: the cached comparison (same maps object), a new opacity only
    redraws; another class or another image is computed afresh and differs."""
    from cam_studio.tabs.compare import BackboneCache, CompareRequest, LruCache, run_compare
    backbones, results = BackboneCache(), LruCache(4)

    def compare(example="chelsea", target=None, opacity=0.5, image=None):
        request = CompareRequest(image, example, target=target, methods=["GradCAM"],
                                 opacity=opacity)
        return run_compare(backbones, request, results=results)

    first = compare()
    assert compare().comparison is first.comparison
    assert compare().display == first.display  # drawn once per opacity
    faint = compare(opacity=0.2)
    assert faint.comparison is first.comparison and faint.display != first.display
    other_class = compare(target="1")
    assert other_class.comparison is not first.comparison
    assert other_class.comparison.target == 1 and first.comparison.target != 1
    photo = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(photo)
    uploaded = compare(image=str(photo))
    assert uploaded.comparison is not first.comparison
    assert compare(image=str(photo)).comparison is uploaded.comparison  # same bytes, same entry
    assert len(results) == 3  # opacity is not part of the key


def test_one_map_under_three_names_is_measured_once(lite0, chelsea):
    """At Lite0's GAP → Linear head GradCAM, HiResCAM and XGradCAM are one map (the gradient is
    the same at every position): their faithfulness is measured once, and it is what each of
    the three maps scores alone."""
    from cams.faithfulness import faithfulness_curves, road
    comparison = compare_checkpoints([lite0], ["A"], chelsea,
                                     ["GradCAM", "HiResCAM", "XGradCAM", "MeanDiffGradCAM"])
    stages: list[tuple] = []
    scores, = comparison.faithfulness(lambda *report: stages.append(report))
    assert stages[-1][0] == stages[-1][1] == 2 * (17 + 2 * 3 * 4)  # two maps measured
    assert scores["HiResCAM"] == scores["XGradCAM"] == scores["GradCAM"]
    assert scores["MeanDiffGradCAM"] != scores["GradCAM"]
    result = comparison.results[0]
    for name in ("HiResCAM", "XGradCAM"):
        alone = faithfulness_curves(lite0.model, result.inputs, result.maps[name], result.targets)
        combined = road(lite0.model, result.inputs, result.maps[name], result.targets).combined
        assert scores[name] == pytest.approx((float(alone.deletion_auc[0]),
                                              float(alone.insertion_auc[0]),
                                              float(combined[0])), abs=1e-4)


def test_the_table_offers_each_maps_deletion_and_insertion_auc(lite0, perturbed_lite0, chelsea):
    """Faithfulness rows: A's and B's deletion / insertion AUC and ROAD combined of each compared
    map, B − A beside them; the numbers are cams.metrics' for that map (and computed once)."""
    from cams.faithfulness import faithfulness_curves, road
    comparison = compare_checkpoints([lite0, perturbed_lite0], ["A", "B"], chelsea,
                                     ["GradCAM", "MeanDiffGradCAM", "DifferenceSalience"])
    assert not any(row[0].startswith("deletion") for row in comparison.table())
    stages: list[tuple] = []
    comparison.faithfulness(lambda *report: stages.append(report))  # the page's progress bar
    # Per checkpoint, both compared maps in the same 17 passes (2 map-passes each), then 2 × 3
    # imputations each (4 map-passes each).
    done = [done for done, _, _ in stages]
    total = 2 * 2 * (17 + 2 * 3 * 4)
    assert done[0] == 0 and done[-1] == total and done == sorted(done)
    assert {total for _, total, _ in stages} == {total} and "ROAD" in stages[0][2]
    rows = {(row[0].split()[0], row[1]): row[2:] for row in comparison.table(faithfulness=True)
            if row[0].startswith(("deletion", "insertion", "ROAD"))}
    assert {method for _, method in rows} == {"GradCAM", "MeanDiffGradCAM"}  # compared maps only
    for index, (backbone, result) in enumerate(zip(comparison.backbones, comparison.results)):
        curves = faithfulness_curves(backbone.model, result.inputs, result.maps["GradCAM"],
                                     result.targets)
        assert rows[("deletion", "GradCAM")][index] == pytest.approx(float(curves.deletion_auc[0]))
        assert rows[("insertion", "GradCAM")][index] == pytest.approx(
            float(curves.insertion_auc[0]))
        combined = road(backbone.model, result.inputs, result.maps["GradCAM"], result.targets)
        # (a batch of maps against one alone: the same up to the passes' rounding)
        assert rows[("ROAD", "GradCAM")][index] == pytest.approx(float(combined.combined[0]),
                                                                 abs=1e-6)
    a, b, difference = rows[("insertion", "MeanDiffGradCAM")]
    assert difference == pytest.approx(b - a)
    assert comparison.faithfulness() is comparison.faithfulness()


def test_signed_panels_in_a_diverging_colormap(lite0, chelsea):
    """The class panels drawn signed: TrueClassCAM's un-ReLU'd map over max |t|, 0 at the
    middle of matplotlib's RdBu_r (white), blended at the opacity; an unknown style is a
    one-line error."""
    import matplotlib
    import torch.nn.functional as F

    from cams.errors import UserInputError
    comparison = compare_checkpoints([lite0], ["A"], chelsea, ["GradCAM", "TrueClassCAM"])
    grid = comparison.grid(0.5, signed="diverging")
    picture = comparison.picture()
    height, width = picture.shape[:2]
    t = comparison.results[0].layer_maps["TrueClassCAM"][None]
    upsampled = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    shown = ((upsampled / upsampled.abs().max() + 1) / 2).numpy()
    colours = matplotlib.colormaps["RdBu_r"](np.linspace(0, 1, 256))[:, :3]
    expected = 0.5 * picture + 0.5 * colours[np.round(shown * 255).astype(int)]
    top = 30 + (height + 40) + 40  # title, the GradCAM row, the panel row's two-line label
    left = width + 4  # after the input
    panel = grid[top:top + height, left:left + width].astype(float) / 255
    assert np.abs(panel - expected).max() <= 2 / 255
    assert not np.array_equal(grid, comparison.grid(0.5)[:grid.shape[0]])
    with pytest.raises(UserInputError, match="signed maps 'rainbow'"):
        comparison.grid(signed="rainbow")


@pytest.mark.parametrize("colormap", ["cividis", "viridis"])
def test_a_colour_map_of_choice_and_the_large_grid(lite0, chelsea, colormap):
    """GradCAM's panel in the chosen colour map is matplotlib's colours of the min-max map,
    blended at the opacity (a hand computation); large mode puts two methods per row at
    twice the caption size; an unknown colour map is a one-line error."""
    import matplotlib

    from cams.errors import UserInputError
    comparison = compare_checkpoints([lite0], ["A"], chelsea, ["GradCAM", "HiResCAM",
                                                              "MeanDiffGradCAM"])
    grid = comparison.grid(0.5, colormap=colormap)
    picture = comparison.picture()
    height, width = picture.shape[:2]
    colours = matplotlib.colormaps[colormap](np.linspace(0, 1, 256))[:, :3]
    heatmap = comparison.maps(0)["GradCAM"]
    expected = 0.5 * picture + 0.5 * colours[np.round(np.clip(heatmap, 0, 1) * 255).astype(int)]
    top, left = 30 + 40, width + 4  # the title and a two-line label; after the input
    panel = grid[top:top + height, left:left + width].astype(float) / 255
    assert np.abs(panel - expected).max() <= 2 / 255
    large = comparison.grid(0.5, colormap=colormap, large=True)
    title, label = 10 + 35, 8 + 28 * 2  # 30 px title, 24 px captions
    assert large.shape[0] == title + 2 * (height + label)  # 3 methods: 2 rows of 2
    with pytest.raises(UserInputError, match="unknown colour map 'rainbow'"):
        comparison.grid(colormap="rainbow")


def test_the_verdict_says_what_the_comparison_measured(lite0, chelsea):
    """The verdict's numbers are the comparison's, recomputed by hand here (numpy: the MSE of
    the maps, of GradCAM's min-max layer map to the SHAM mask); the constructed fool (a
    class-uniform change) is seen through, a class-specific change (another model's head) is
    not, and A alone asks for a B."""
    from cam_studio.tabs.verdict import verdict, verdict_markdown
    from fooling.sham import sham_mask

    constructed = load_backbone("efficientnet_lite0", "constructed-sham-efficientnet_lite0",
                                device="cpu")
    comparison = compare_checkpoints([lite0, constructed], ["A: clean", "B: constructed"],
                                     chelsea)
    result = verdict(comparison)
    a, b = comparison.maps(0), comparison.maps(1)
    for name in ("GradCAM", "MeanDiffGradCAM", "MaxDiffGradCAM", "LSEDiffGradCAM"):
        moved = float(np.mean((a[name] - b[name]) ** 2))
        assert (result.gradcam_moved if name == "GradCAM" else result.moved[name]) == \
            pytest.approx(moved, rel=1e-4, abs=1e-9)
    for index, distance in enumerate(result.sham_distance):
        layer = comparison.results[index].layer_maps["GradCAM"][0].numpy()
        scaled = (layer - layer.min()) / (layer.max() - layer.min())
        mask = sham_mask(*layer.shape).numpy()
        assert distance == pytest.approx(float(np.mean((scaled - mask) ** 2)), rel=1e-4)
    assert result.kept and result.sham_ratio < 0.1 and result.share > 0.99
    text = verdict_markdown(result)
    assert "The prediction stayed" in text and "sees through" in text
    assert f"{result.sham_distance[0]:.3f} → {result.sham_distance[1]:.3f}" in text

    torch.manual_seed(0)
    other = load_backbone("efficientnet_lite0", device="cpu")
    with torch.no_grad():  # a class-specific change: one class's head row scaled
        other.model.classifier.weight[285] *= 3
    specific = verdict(compare_checkpoints([lite0, other], ["A", "B"], chelsea))
    assert specific.share < 0.5 and "sees through" not in verdict_markdown(specific)
    assert "pick a checkpoint B" in verdict_markdown(verdict(compare_checkpoints(
        [lite0], ["A"], chelsea)))


def test_loaded_models_are_bounded_by_bytes_and_take_their_results_with_them():
    """The model cache holds at most its byte budget (the newest model always); a model it drops
    takes the cached comparisons computed with it (the page's wiring), so nothing pins it."""
    import gc
    import weakref

    from cam_studio.tabs.compare import (
        BackboneCache,
        CompareRequest,
        LruCache,
        model_bytes,
        run_compare,
    )
    from cams.backbones import load_backbone
    model = load_backbone("tiny_resnet", "random", "cpu")
    # Its parameters and buffers, twice: it has batch norms, so its first explanation makes a
    # copy with them folded (cams.folding), which lives as long as the model.
    assert any(isinstance(module, torch.nn.BatchNorm2d) for module in model.model.modules())
    one = 2 * sum(tensor.nbytes for tensor in model.model.state_dict().values())
    assert model_bytes(model) == one
    results = LruCache(8)
    cache = BackboneCache(capacity=8, budget=int(2.5 * one), on_evict=lambda backbone: results.discard(
        lambda entry: any(held is backbone for held in entry.backbones)))

    def compare(size):  # another input size: another loaded model (the page's own-model box)
        request = CompareRequest(example="chelsea", backbone="tiny_resnet", checkpoint_a="random",
                                 methods=["GradCAM"], input_size=size)
        return run_compare(cache, request, results=results)

    first = weakref.ref(compare(64).comparison.backbones[0])
    compare(72)
    compare(80)
    assert len(cache) == 2 and cache.bytes == 2 * one  # the first model left for the third
    assert len(results) == 2  # and its comparison went with it
    gc.collect()
    assert first() is None  # nothing pins it


def test_each_mse_is_computed_once_per_comparison(lite0, perturbed_lite0, chelsea, monkeypatch):
    """Captions, table, verdict and the grid at two opacities share one computation of the
    map-vs-baseline and A-vs-B MSEs (they were computed for each of them before)."""
    import cam_studio.tabs.comparison as module
    from cam_studio.tabs.verdict import verdict
    calls = {"baseline": 0, "a_vs_b": 0}
    real_baseline, real_a_vs_b = module.baseline_similarity, module.susceptibility

    def counted(name, real):
        def wrapper(*arguments):
            calls[name] += 1
            return real(*arguments)
        return wrapper

    monkeypatch.setattr(module, "baseline_similarity", counted("baseline", real_baseline))
    monkeypatch.setattr(module, "susceptibility", counted("a_vs_b", real_a_vs_b))
    comparison = compare_checkpoints([lite0, perturbed_lite0], ["A", "B"], chelsea,
                                     ["GradCAM", "MeanDiffGradCAM"])
    comparison.grid(0.5), comparison.grid(0.2), comparison.table(), verdict(comparison)
    assert calls == {"baseline": 2, "a_vs_b": 1}  # once per checkpoint, once for the pair
    rows = {(row[0], row[1]): row for row in comparison.table()}
    assert rows[("susceptibility: MSE A vs B", "GradCAM")][4] == pytest.approx(float(
        ((comparison.results[0].maps["GradCAM"] - comparison.results[1].maps["GradCAM"]) ** 2
         ).mean()), rel=1e-5)


def test_an_explanation_and_a_comparison_show_themselves_in_a_notebook(lite0, perturbed_lite0,
                                                                       chelsea, coffee):
    """``_repr_html_``: each image's maps as an inline PNG (decodable, one panel per map beside
    the input, at most four images), and a comparison's grid with its table."""
    import base64
    import io
    import re

    from PIL import Image as PILImage

    from cam_studio.tabs.comparison import TABLE_COLUMNS, compare_checkpoints
    from cams import explain
    inputs = torch.cat([lite0.preprocess(chelsea), lite0.preprocess(coffee)])
    result = explain(lite0, inputs, methods=["GradCAM", "MeanDiffGradCAM"])
    shown = result._repr_html_()
    pictures = re.findall(r'src="data:image/png;base64,([^"]+)"', shown)
    assert len(pictures) == 2 and 'alt="maps of image 0: GradCAM, MeanDiffGradCAM"' in shown
    grid = PILImage.open(io.BytesIO(base64.b64decode(pictures[0])))
    assert grid.width >= 3 * 224  # the input and two maps side by side
    comparison = compare_checkpoints([lite0, perturbed_lite0], ["A", "B"], chelsea, ["GradCAM"])
    page = comparison._repr_html_()
    assert page.count("<img") == 1 and all(f"<th>{name}</th>" in page for name in TABLE_COLUMNS)
    moved = next(row for row in comparison.table() if row[0].startswith("susceptibility"))
    assert f"<td>{moved[4]:.4g}</td>" in page


def test_b_randomised_from_a_block_is_a_sanity_check_with_its_own_verdict(lite0, chelsea):
    """B = A with its top blocks re-drawn: the picker offers it, and the verdict and the table
    give each map's Spearman ρ to A's (scipy's, here) instead of a fooling verdict."""
    from cam_studio.tabs.compare import checkpoint_choices
    from cam_studio.tabs.verdict import verdict, verdict_markdown
    values = [value for _, value in checkpoint_choices("efficientnet_lite0", allow_none=True)]
    assert "randomised:classifier" in values and "randomised:conv_stem" in values
    assert "randomised:classifier" not in [v for _, v in checkpoint_choices("efficientnet_lite0")]
    randomised = lite0.randomised("classifier")
    comparison = compare_checkpoints([lite0, randomised], ["A", "B"], chelsea,
                                     ["GradCAM", "EigenCAM"])
    a, b = comparison.maps(0), comparison.maps(1)
    expected = {name: stats.spearmanr(a[name].ravel(), b[name].ravel())[0] for name in a}
    assert comparison.a_vs_b_spearman == pytest.approx(expected, abs=1e-5)
    assert expected["EigenCAM"] == pytest.approx(1.0)  # EigenCAM never reads the classifier
    text = verdict_markdown(verdict(comparison))
    assert "A sanity check, not a fool" in text and "top 1 block (classifier)" in text
    assert "Maps that stayed" in text and "EigenCAM 1.00" in text and "SHAM" not in text
    rows = [row for row in comparison.table() if row[0].startswith("sanity: Spearman")]
    assert [row[1] for row in rows] == ["GradCAM", "EigenCAM"]


def test_the_target_as_a_choice_in_a_comparison_and_its_link():
    """Ticking targets adds each ticked gradient method's map of them (the papers' variants by
    their names), with its MSE to its own method in the table; a link carries the targets; a
    bad target is one line."""
    from cam_studio.tabs.compare import (
        BackboneCache,
        CompareRequest,
        UserInputError,
        link_query,
        link_request,
        run_compare,
    )
    request = CompareRequest(methods=("GradCAM", "LayerCAM", "EigenCAM"),
                             targets=("MeanDiff",))
    assert request.chosen_methods == ("GradCAM", "LayerCAM", "EigenCAM", "MeanDiffGradCAM",
                                      "LayerCAM · MeanDiff")
    response = run_compare(BackboneCache(), request)
    maps = response.comparison.maps(0)
    assert list(maps) == ["GradCAM", "EigenCAM", "MeanDiffGradCAM", "LayerCAM",
                          "LayerCAM · MeanDiff"]  # the table's order, then the targeted maps
    similarity = {row[1]: row[2] for row in response.table
                  if row[0] == "similarity: MSE to baseline"}
    expected = float(((maps["LayerCAM · MeanDiff"] - maps["LayerCAM"]) ** 2).mean())
    assert similarity["LayerCAM · MeanDiff"] == pytest.approx(expected, rel=1e-5)
    assert link_request(dict(pair.split("=") for pair in link_query(request, None)[1:]
                             .replace("%2C", ",").split("&"))).targets == ("MeanDiff",)
    with pytest.raises(UserInputError, match="no target 'Median'"):
        CompareRequest(targets=("Median",))


def test_ticked_methods_the_model_does_not_have_are_left_out_and_named():
    """On a CNN with a GAP → Linear head LeGrad (for transformers) is left out, not refused, and
    the page's line says so; RefineCAM and SmoothGradCAM++ are computed."""
    from cam_studio.tabs.compare import BackboneCache, CompareRequest, run_compare
    request = CompareRequest(example="chelsea", backbone="tiny_resnet", checkpoint_a="random",
                             methods=("GradCAM", "RefineCAM", "SmoothGradCAM++", "LeGrad"),
                             input_size=64)
    response = run_compare(BackboneCache(), request)
    assert response.comparison.methods == ["GradCAM", "SmoothGradCAM++", "RefineCAM"]
    assert response.left_out_line == ("Left out for tiny_resnet: LeGrad, which needs a vision "
                                      "transformer (attention over tokens).")
