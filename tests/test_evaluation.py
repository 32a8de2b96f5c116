"""The evaluation suite: each table's numbers against an independent computation, resume, errors."""

from __future__ import annotations

import csv
import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats
from skimage.metrics import structural_similarity
from torch import nn

from cam_studio.benchmarks.reference import reference_map
from cam_studio.data.sources import samples
from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.records import RecordFile
from cam_studio.evaluation.report import build_report
from cam_studio.evaluation.run import run_all
from cam_studio.evaluation.summaries import p_value
from cam_studio.evaluation.tables.similarity import SimilarityRow
from cam_studio.evaluation.tables.training import TrainingRow
from cams.backbones import Backbone
from cams.checkpoints import CHECKPOINTS_ENV, save_checkpoint
from cams.errors import UserInputError
from fooling.attacks import fgsm


def csv_rows(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def rows(out, table):
    return csv_rows(out / "records" / f"{table}.csv")


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory):
    """A seeded random resnet18 as a registry checkpoint, plus a perturbed ("fooled") copy."""
    import timm
    directory = tmp_path_factory.mktemp("registry")
    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=10)
    save_checkpoint(model.state_dict(), {"backbone": "resnet18"}, "r18-clean", directory)
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.layer4.parameters():
            parameter.mul_(1 + 0.3 * torch.randn_like(parameter))
    save_checkpoint(model.state_dict(), {"backbone": "resnet18", "recipe": {"cam": "GradCAM"}},
                    "r18-fooled", directory)
    return directory


def test_similarity_and_susceptibility_match_grad_cam(tmp_path, resnet_weights, monkeypatch):
    monkeypatch.setenv(CHECKPOINTS_ENV, str(resnet_weights))
    config = EvaluationConfig(out=tmp_path, images="examples", limit=2, batch=2,
                              backbones=[], pairs=[("r18-clean", "r18-fooled")],
                              methods=["GradCAM", "MeanDiffGradCAM", "GradCAM++", "HiResCAM"],
                              tables=["susceptibility"], device="cpu")
    run_all(config)
    from cams.backbones import load_backbone
    clean = load_backbone("resnet18", resnet_weights / "r18-clean.safetensors", "cpu")
    fooled = load_backbone("resnet18", resnet_weights / "r18-fooled.safetensors", "cpu")
    inputs = torch.cat([clean.preprocess(s.image) for s in samples("examples", 2)])
    with torch.no_grad():
        targets = clean.model(inputs).argmax(1).tolist()
    recorded = {(row["image"], row["method"]): float(row["mse"]) for row in rows(tmp_path,
                                                                                 "susceptibility")}
    for method in ("GradCAM", "MeanDiffGradCAM", "GradCAM++", "HiResCAM"):
        a = reference_map(clean, inputs, method, targets)
        b = reference_map(fooled, inputs, method, targets)
        expected = ((a - b) ** 2).reshape(2, -1).mean(axis=1)
        for index, image in enumerate(["chelsea", "coffee"]):
            assert recorded[(image, method)] == pytest.approx(expected[index], abs=1e-4)
    # Similarity on the clean model, same way.
    config.tables, config.backbones = ["similarity"], ["resnet18"]
    monkeypatch.setattr("cam_studio.evaluation.run.load_backbone", lambda name, weights=None, device=None:
                        clean)
    run_all(config)
    similarity = {(r["image"], r["method"]): float(r["mse"]) for r in rows(tmp_path, "similarity")}
    grad, mean = (reference_map(clean, inputs, m, targets) for m in ("GradCAM", "MeanDiffGradCAM"))
    expected = ((grad - mean) ** 2).reshape(2, -1).mean(axis=1)
    assert similarity[("coffee", "MeanDiffGradCAM")] == pytest.approx(expected[1], abs=1e-5)
    report = build_report(tmp_path, "test").read_text()
    assert "Susceptibility" in report and "Similarity" in report
    assert (tmp_path / "susceptibility_r18-clean_vs_r18-fooled.png").stat().st_size > 0
    # The report's cells are the independent numbers: mean ± sample std of grad-cam's MSEs.
    cell = {row["method"]: row["resnet18"] for row in csv_rows(tmp_path / "similarity.csv")}
    assert cell["MeanDiffGradCAM"] == f"{expected.mean():.2e} ± {expected.std(ddof=1):.2e}"


class LinearPixels(nn.Module):
    """logits_j = mean over pixels of Σ_c W_jc x_c + b_j: its input gradient is known in closed form."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


def test_the_similarity_table_takes_the_target_as_a_choice(tmp_path, monkeypatch):
    """Every other gradient method with the three differences: the recorded MSE between
    "LayerCAM · MeanDiff" and LayerCAM is grad-cam's LayerCAM with the difference logit against
    its LayerCAM; the report tests Mean against Max and LSE within that family too."""
    from cams.backbones import load_backbone
    torch.manual_seed(0)
    backbone = load_backbone("resnet18", weights="random", device="cpu",
                             data_config={"input_size": (3, 128, 128)})
    monkeypatch.setattr("cam_studio.evaluation.run.load_backbone",
                        lambda name, weights=None, device=None: backbone)
    config = EvaluationConfig(out=tmp_path, images="examples", limit=2, batch=2,
                              backbones=["resnet18"], tables=["similarity"],
                              methods=["LayerCAM", "LayerCAM · MeanDiff", "LayerCAM · MaxDiff"])
    run_all(config)
    build_report(tmp_path, "the test's run")
    recorded = {(row["image"], row["method"]): (row["baseline"], float(row["mse"]))
                for row in rows(tmp_path, "similarity")}
    inputs = torch.cat([backbone.preprocess(s.image) for s in samples("examples", 2)])
    with torch.no_grad():
        targets = backbone.model(inputs).argmax(1).tolist()
    base = reference_map(backbone, inputs, "LayerCAM", targets)
    differed = reference_map(backbone, inputs, "LayerCAM · MeanDiff", targets)
    expected = ((differed - base) ** 2).reshape(2, -1).mean(axis=1)
    for index, image in enumerate(["chelsea", "coffee"]):
        baseline, mse = recorded[(image, "LayerCAM · MeanDiff")]
        assert baseline == "LayerCAM" and mse == pytest.approx(expected[index], abs=1e-4)
    tests = (tmp_path / "similarity_tests.md").read_text()
    assert "LayerCAM · MeanDiff − LayerCAM · MaxDiff" in tests


def test_fgsm_by_hand():
    torch.manual_seed(0)
    model = LinearPixels()
    backbone = Backbone(name="linear", model=model, data_config={
        "mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.3), "input_size": (3, 5, 5),
        "interpolation": "bilinear", "crop_pct": 1.0}, class_names=list("abcd"),
        weights_source="test", linear_head=True, feature_shape=(4, 5, 5))
    pixels = torch.rand(2, 3, 5, 5)
    mean = torch.tensor([0.5, 0.4, 0.3])[:, None, None]
    std = torch.tensor([0.2, 0.25, 0.3])[:, None, None]
    inputs = (pixels - mean) / std
    labels = torch.tensor([1, 3])
    epsilon = 2 / 255
    attacked = fgsm(backbone, inputs, labels, epsilon)
    # d CE / d x_norm[c, i, j] = Σ_j' (p_j' − onehot_j') W_j'c / Z; d x_norm / d pixel = 1 / std.
    with torch.no_grad():
        p = model(inputs).softmax(1)
    weight = model.conv.weight[:, :, 0, 0]  # 4×3
    delta = (p - torch.nn.functional.one_hot(labels, 4)) @ weight / 25  # N×3, per channel
    # CE is averaged over the batch: a positive factor, so the sign is unchanged.
    gradient_sign = torch.sign(delta / std[:, 0, 0])[:, :, None, None].expand(-1, -1, 5, 5)
    expected_pixels = (pixels + epsilon * gradient_sign).clamp(0, 1)
    assert torch.allclose(attacked * std + mean, expected_pixels, atol=1e-6)


def test_nissim_in_the_modvid_table_matches_scikit_image(tmp_path, monkeypatch):
    from cams.backbones import load_backbone
    torch.manual_seed(0)
    backbone = load_backbone("resnet18", weights="random", device="cpu")
    monkeypatch.setattr("cam_studio.evaluation.run.load_backbone", lambda name, weights=None, device=None:
                        backbone)
    config = EvaluationConfig(out=tmp_path, images="examples", limit=2, batch=2,
                              backbones=["resnet18"], methods=["GradCAM"], tables=["modvid"])
    run_all(config)
    recorded = {row["image"]: float(row["nissim"]) for row in rows(tmp_path, "modvid")}
    from cams.engine import explain
    inputs = torch.cat([backbone.preprocess(s.image) for s in samples("examples", 2)])
    clean = explain(backbone, inputs, ["GradCAM"])
    attacked = explain(backbone, fgsm(backbone, inputs, clean.targets, 2 / 255), ["GradCAM"],
                       clean.targets)
    for index, image in enumerate(["chelsea", "coffee"]):
        a = clean.maps["GradCAM"][index].double().numpy()
        b = attacked.maps["GradCAM"][index].double().numpy()
        expected = (1 - structural_similarity(a, b, data_range=1.0)) / 2
        assert recorded[image] == pytest.approx(expected, abs=1e-6)


def test_rank_sum_is_scipys():
    a, b = [0.1, 0.4, 0.35, 0.8, 0.2], [0.5, 0.9, 0.7, 0.65, 0.3, 0.95]
    assert p_value(a, b) == pytest.approx(stats.ranksums(a, b).pvalue)
    assert math.isnan(p_value([1.0], b))


def test_resume_after_an_interruption(tmp_path):
    folder = tmp_path / "records"
    records = RecordFile(folder, TrainingRow)
    records.append([TrainingRow("baseline", seed, "ring", 3, 0.05, 0.5, 0.25, 1.0)
                    for seed in (0, 1)])
    path = folder / "training.csv"
    with path.open("a") as handle:
        handle.write("contrast,0,ring,3,0.7")  # a write killed mid-line
    again = RecordFile(folder, TrainingRow)
    assert again.done == {("baseline", "0", "ring"), ("baseline", "1", "ring")}
    assert path.read_text().endswith("1.0\n")
    path.write_text("loss,seed,other\n")
    with pytest.raises(ValueError, match="other columns"):
        RecordFile(folder, TrainingRow)


def test_shards_of_killed_processes_count_as_done_and_merge_once(tmp_path):
    """What torchrun processes leave behind: rows in TABLE.rankR.csv, one cut short."""
    folder = tmp_path / "records"
    folder.mkdir()
    header = "backbone,image,method,baseline,mse\n"
    (folder / "similarity.csv").write_text(header + "m,a,MeanDiffGradCAM,GradCAM,0.5\n")
    (folder / "similarity.rank0.csv").write_text(header + "m,b,MeanDiffGradCAM,GradCAM,0.25\n")
    (folder / "similarity.rank1.csv").write_text(
        header + "m,c,MeanDiffGradCAM,GradCAM,0.125\n"
        "m,a,MeanDiffGradCAM,GradCAM,0.5\n"  # already in the table: must not come twice
        "m,d,MeanDiffGra")  # killed mid-line
    records = RecordFile(folder, SimilarityRow)  # one process: writes the table itself
    assert records.done == {("m", "a"), ("m", "b"), ("m", "c")}
    records.merge()
    assert sorted(path.name for path in folder.iterdir()) == ["similarity.csv"]
    merged = rows(tmp_path, "similarity")
    assert [(row["image"], float(row["mse"])) for row in merged] == [
        ("a", 0.5), ("b", 0.25), ("c", 0.125)]


def test_an_interrupted_similarity_run_computes_only_the_rest(tmp_path, monkeypatch):
    from cams.backbones import load_backbone
    torch.manual_seed(0)
    backbone = load_backbone("resnet18", weights="random", device="cpu")
    monkeypatch.setattr("cam_studio.evaluation.run.load_backbone", lambda name, weights=None, device=None:
                        backbone)
    calls = []
    import cam_studio.evaluation.tables.similarity as similarity_module
    real_explain = similarity_module.explain
    monkeypatch.setattr(similarity_module, "explain",
                        lambda b, inputs, *a, **k: calls.append(len(inputs)) or
                        real_explain(b, inputs, *a, **k))
    config = EvaluationConfig(out=tmp_path, images="examples", limit=2, batch=1,
                              backbones=["resnet18"], tables=["similarity"])
    run_all(config)
    first = rows(tmp_path, "similarity")
    config.limit = 4
    run_all(config)
    everything = rows(tmp_path, "similarity")
    assert calls == [1, 1, 1, 1]  # images 3 and 4 only, the second time
    assert everything[:len(first)] == first
    # one row per image and contrastive variant (six DiffGradCAMs, FinerCAM, and the five other
    # gradient methods with each of the three differences)
    assert len({row["image"] for row in everything}) == 4 and len(everything) == 4 * (7 + 15)


def test_training_table_auroc_and_pointing_by_hand(tmp_path):
    """Each run's recorded AUROC is scikit-learn's on its checkpoint's scores of the same images,
    and its pointing-game hit rate is grad-cam's GradCAM map's maximum inside the ground truth."""
    from sklearn.metrics import roc_auc_score

    from cam_studio.benchmarks.reference import reference_map
    from cam_studio.data.items import stack
    from cam_studio.data.synthetic import SyntheticDataset
    from cams.backbones import load_backbone
    config = EvaluationConfig(out=tmp_path, tables=["training"], seeds=1, training_steps=3,
                              limit=16, batch=4, device="cpu")
    run_all(config)
    table = rows(tmp_path, "training")
    assert [row["loss"] for row in table] == ["baseline", "difference", "perclass", "contrast"]
    pointing = {(row["loss"], row["method"]): float(row["hit_rate"])
                for row in rows(tmp_path, "pointing")}
    assert {method for _, method in pointing} >= {"GradCAM", "MeanDiffGradCAM", "EigenCAM"}
    for row in table:
        model = load_backbone("tiny_resnet", tmp_path / "training-checkpoints" /
                              f"eval-{row['loss']}-triangle-seed0.safetensors", "cpu")
        for split, column in (("test", "in_set_auroc"), ("outset", "out_of_set_auroc")):
            images, truth, masks = stack(SyntheticDataset("binary", split, 64, seed=1000,
                                                          holdout="triangle", length=16),
                                         list(range(16)))
            with torch.no_grad():
                scores = model.model(model.normalise(images)).softmax(1)[:, 1]
            assert float(row[column]) == pytest.approx(roc_auc_score(truth, scores), abs=1e-6)
            if split == "test":
                maps = reference_map(model, model.normalise(images), "GradCAM", truth.tolist())
                peaks = maps.reshape(16, -1).argmax(axis=1)
                hits = masks.reshape(16, -1)[torch.arange(16), torch.from_numpy(peaks)] > 0.5
                assert pointing[(row["loss"], "GradCAM")] == pytest.approx(
                    float(hits.float().mean()), abs=1 / 16)
    from cams.metrics import auroc
    scores, labels = torch.tensor([0.9, 0.2, 0.6, 0.6, 0.1]), torch.tensor([1, 0, 1, 0, 0])
    # Positive/negative pairs: (0.9 > all 3) = 3, (0.6 > 0.2, 0.1; = 0.6) = 2.5 → 5.5 / 6.
    assert auroc(scores, labels) == pytest.approx(5.5 / 6)


@pytest.mark.parametrize(("arguments", "message"), [
    (["--images", "/no/such/folder", "--tables", "similarity"], "no such folder"),
    (["--images", "EMPTY", "--tables", "similarity"], "no images found"),
    (["--pairs", "r18-clean:tiny", "--tables", "susceptibility"], "no checkpoint called 'tiny'"),
    (["--pairs", "oops", "--tables", "susceptibility"], "pass --pairs PAIRS (CLEAN:FOOLED"),
    (["--tables", "nonsense"], "unknown table"),
])
def test_bad_arguments_are_one_line(tmp_path, resnet_weights, arguments, message):
    (tmp_path / "empty").mkdir()
    arguments = [str(tmp_path / "empty") if a == "EMPTY" else a for a in arguments]
    result = subprocess.run([sys.executable, "-m", "cam_studio", "evaluate", "--out",
                             str(tmp_path / "out"), *arguments], capture_output=True, text=True,
                            env={**__import__("os").environ, CHECKPOINTS_ENV: str(resnet_weights),
                                 "CAMS_OFFLINE": "1"})
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_checkpoint_of_another_backbone_is_refused(resnet_weights, monkeypatch, tmp_path):
    monkeypatch.setenv(CHECKPOINTS_ENV, str(resnet_weights))
    save_checkpoint({"w": torch.zeros(1)}, {"backbone": "tiny_resnet"}, "other", resnet_weights)
    config = EvaluationConfig(out=tmp_path, pairs=[("other", "r18-fooled")],
                              tables=["susceptibility"])
    with pytest.raises(UserInputError, match="is for backbone tiny_resnet"):
        run_all(config)


def test_tables_that_train_models_are_opt_in_and_estimated_first():
    from cam_studio.evaluation.run import estimate_lines, planned_tables
    default = planned_tables(EvaluationConfig(pairs=[("clean", "sham-one-class-efficientnet_lite0")]))
    assert default == ["similarity", "susceptibility", "runtime", "modvid"]
    config = EvaluationConfig(tables=["training", "attacks"], seeds=2, training_steps=600,
                              holdouts=["ring", "cross"], attack_steps=400, images="examples")
    lines = estimate_lines(config, planned_tables(config))
    # 4 objectives × 2 seeds × 2 held-out types × 600 steps × 0.054 s; the seven attacks of
    # fooling/attacks.py × (400 steps × 0.5 s + 5 images × 0.3 s)
    assert lines == ["the attacks table takes about 24 min on a 2-core CPU (less on a GPU); it "
                     "resumes if interrupted",
                     "the training table takes about 9 min on a 2-core CPU (less on a GPU); it "
                     "resumes if interrupted"]


def test_estimates_scale_to_the_pairs_backbone():
    """The per-image seconds were measured on Lite0: the tiny synthetic pair's susceptibility on
    48 images (29 s here, ScoreCAM on its 96 channels included; estimated at 18 s) was estimated
    at 37 min, as a Lite0 pair's still is. Its estimate is now well under a tenth of that (its
    forward pass takes 0.03–0.05 of Lite0's on a quiet CPU; the bound leaves room for a busy one)."""
    from cam_studio.evaluation.tables import TABLES
    tiny = EvaluationConfig(images="synthetic:binary:48", tables=["susceptibility"],
                            pairs=[("synthetic-binary-clean", "synthetic-binary-sham")])
    lite0 = dataclasses.replace(tiny, pairs=[("clean", "sham-one-class-efficientnet_lite0")])
    estimate = TABLES["susceptibility"].seconds
    assert estimate(lite0) > 30 * 60
    assert estimate(tiny) < estimate(lite0) / 10


def test_faithfulness_table_matches_a_direct_computation(tmp_path, resnet_weights, monkeypatch):
    """The table's deletion / insertion AUC of one map, recomputed step by step with numpy and
    scipy's Gaussian filter (a second implementation of the same definition)."""
    from scipy import ndimage

    from cams.backbones import load_backbone
    from cams.engine import explain
    from cams.faithfulness import BLUR_SIGMA, FAITHFULNESS_STEPS
    monkeypatch.setenv(CHECKPOINTS_ENV, str(resnet_weights))
    config = EvaluationConfig(out=tmp_path, images="examples", limit=2, batch=2, backbones=[],
                              pairs=[("r18-clean", "r18-fooled")],
                              methods=["GradCAM", "MeanDiffGradCAM"], tables=["faithfulness"],
                              device="cpu")
    run_all(config)
    table = rows(tmp_path, "faithfulness")
    assert sorted((row["model"], row["method"]) for row in table) == [
        ("r18-fooled", "GradCAM")] * 2 + [("r18-fooled", "MeanDiffGradCAM")] * 2
    fooled = load_backbone("resnet18", resnet_weights / "r18-fooled.safetensors", "cpu")
    sample = next(iter(samples("examples", 1)))
    inputs = fooled.preprocess(sample.image)
    result = explain(fooled, inputs, ["GradCAM"])
    image = inputs[0].numpy().astype(np.float64)
    relevance = result.maps["GradCAM"][0].numpy()
    height, width = relevance.shape
    sigma = BLUR_SIGMA * max(height, width)
    blurred = np.stack([ndimage.gaussian_filter(channel, sigma, mode="nearest",
                                                radius=math.ceil(3 * sigma)) for channel in image])
    rank = np.empty(height * width, int)
    rank[np.argsort(-relevance.ravel(), kind="stable")] = np.arange(height * width)
    rank = rank.reshape(height, width)
    target = int(result.targets[0])
    curves = {"deletion": [], "insertion": []}
    for step in range(FAITHFULNESS_STEPS + 1):
        chosen = rank < round(step / FAITHFULNESS_STEPS * height * width)
        for curve, picture in (("deletion", np.where(chosen, blurred, image)),
                               ("insertion", np.where(chosen, image, blurred))):
            with torch.no_grad():
                logits = fooled.model(torch.from_numpy(picture[None]).float())
            curves[curve].append(float(logits.softmax(dim=1)[0, target]))
    recorded = next(row for row in table if row["image"] == sample.id
                    and row["method"] == "GradCAM")
    fractions = np.linspace(0, 1, FAITHFULNESS_STEPS + 1)
    for curve, values in curves.items():
        assert float(recorded[f"{curve}_auc"]) == pytest.approx(np.trapezoid(values, fractions),
                                                                abs=1e-4)
    assert "Faithfulness: deletion and insertion" in build_report(tmp_path, "test").read_text()
    # The report: mean ± sample std over the images, and MeanDiffGradCAM − GradCAM paired.
    deletion = {row["method"]: row for row in csv_rows(tmp_path / "faithfulness_deletion.csv")}
    values = {method: [float(row["deletion_auc"]) for row in table if row["method"] == method]
              for method in ("GradCAM", "MeanDiffGradCAM")}
    assert deletion["GradCAM"]["deletion AUC"] == (f"{np.mean(values['GradCAM']):.3f} ± "
                                                   f"{np.std(values['GradCAM'], ddof=1):.3f}")
    difference = np.subtract(values["MeanDiffGradCAM"], values["GradCAM"])
    low, high = stats.t.interval(0.95, len(difference) - 1, loc=difference.mean(),
                                 scale=stats.sem(difference))
    assert deletion["MeanDiffGradCAM"]["− GradCAM: Δ [95 % t]"] == (
        f"{difference.mean():+.2e} [{low:+.2e}, {high:+.2e}]")
    tost = max(stats.ttest_1samp(difference, -0.01, alternative="greater").pvalue,
               stats.ttest_1samp(difference, 0.01, alternative="less").pvalue)
    assert float(deletion["MeanDiffGradCAM"]["− GradCAM: within ±0.01, TOST p"]) == (
        pytest.approx(tost, rel=0.05))


def test_road_table_is_grad_cams_road_of_grad_cams_map(tmp_path, resnet_weights, monkeypatch):
    """With the noise off, each recorded MoRF / LeRF / combined is grad-cam 1.5.7's own ROAD
    (its imputer, its perturbation metric) of grad-cam's own GradCAM map, averaged over the
    table's percentiles; the report shows their means."""
    from pytorch_grad_cam.metrics.perturbation_confidence import (
        PerturbationConfidenceMetric,
        RemoveLeastRelevantFirst,
        RemoveMostRelevantFirst,
    )
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    from cams.backbones import load_backbone
    from cams.faithfulness import ROAD_QUICK_PERCENTILES
    monkeypatch.setenv(CHECKPOINTS_ENV, str(resnet_weights))
    config = EvaluationConfig(out=tmp_path, images="examples", limit=1, batch=1, backbones=[],
                              pairs=[("r18-clean", "r18-fooled")], methods=["GradCAM"],
                              tables=["road"], device="cpu", road_noise=0.0)
    run_all(config)
    recorded, = rows(tmp_path, "road")
    fooled = load_backbone("resnet18", resnet_weights / "r18-fooled.safetensors", "cpu")
    sample = next(iter(samples("examples", 1)))
    inputs = fooled.preprocess(sample.image)
    with torch.no_grad():
        target = int(fooled.model(inputs).argmax())
    theirs = reference_map(fooled, inputs, "GradCAM", [target])
    expected = {}
    for column, removal in (("morf", RemoveMostRelevantFirst), ("lerf", RemoveLeastRelevantFirst)):
        changes = [PerturbationConfidenceMetric(removal(p, NoisyLinearImputer(noise=0.0)))(
            inputs, theirs, [ClassifierOutputSoftmaxTarget(target)], fooled.model)[0]
            for p in ROAD_QUICK_PERCENTILES]
        expected[column] = float(np.mean(changes))
    assert recorded["model"] == "r18-fooled" and recorded["image"] == sample.id
    assert float(recorded["morf"]) == pytest.approx(expected["morf"], abs=1e-4)
    assert float(recorded["lerf"]) == pytest.approx(expected["lerf"], abs=1e-4)
    assert float(recorded["combined"]) == pytest.approx(
        (expected["lerf"] - expected["morf"]) / 2, abs=1e-4)
    assert "Faithfulness: ROAD" in build_report(tmp_path, "test").read_text()
    cell, = csv_rows(tmp_path / "road_combined.csv")
    assert cell["ROAD combined"].startswith(f"{float(recorded['combined']):.3f} ± ")
