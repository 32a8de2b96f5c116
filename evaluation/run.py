"""The evaluation's per-image work: each table's rows, appended to ``OUT/records/`` as computed.

Tables (the papers' quantitative claims):
- ``similarity`` (DiffGradCAM paper, Table 3 / RQ2): MSE of each DiffGradCAM(++) map to GradCAM(++).
- ``susceptibility`` (Table 4 / RQ3): per method, MSE between a clean and a fooled checkpoint's
  maps of the same image, their CAM entropies, and whether the two agree on the prediction.
- ``runtime`` (Table 1): per method, ms per image alone and as marginal cost inside the panel.
- ``modvid`` (Generalizing Adversarial Explanations): NISSIM between each method's map of an image
  and of its FGSM-attacked copy, and whether the attack changed the prediction.
- ``training`` (Divisive Decisions, Tables 2–4): salience-guided training on the synthetic domain,
  in-set and out-of-set AUROC, and each CAM method's pointing-game hit rate.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from cams.backbones import Backbone, load_backbone
from cams.bench import timed
from cams.distributed import barrier, current
from cams.engine import DEFAULT_METHODS, explain, select_methods
from cams.errors import UserInputError
from cams.methods import DIFF_BASELINES, METHOD_NAMES
from cams.metrics import auroc, cam_entropy_nats, mse, nissim, pointing_game
from evaluation.records import RecordFile, merge_all
from evaluation.sources import Sample, samples

TABLES = ("similarity", "susceptibility", "runtime", "modvid", "training")
SUSCEPTIBILITY_METHODS = ("GradCAM", "GradCAM++", "EigenCAM", "HiResCAM", "XGradCAM", "ScoreCAM",
                          *DIFF_BASELINES)
SIMILARITY_METHODS = tuple(dict.fromkeys([*DIFF_BASELINES.values(), *DIFF_BASELINES]))
TRAINING_LOSSES = ("baseline", "difference", "perclass", "contrast")
Progress = Callable[[str, int, int | None], None]  # (what, done, total)


@dataclass
class EvaluationConfig:
    out: Path
    images: str = "examples"
    backbones: list[str] = field(default_factory=lambda: ["efficientnet_lite0"])
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (clean, fooled) registry names
    methods: list[str] | None = None  # None: each table's own list
    tables: list[str] = field(default_factory=lambda: list(TABLES))
    limit: int | None = None
    epsilon: float = 2 / 255
    seeds: int = 3
    holdouts: list[str] = field(default_factory=lambda: ["triangle"])
    training_steps: int = 600
    batch: int = 8
    device: str | None = None


def batches(source: Iterator[Sample], size: int) -> Iterator[list[Sample]]:
    batch: list[Sample] = []
    for sample in source:
        batch.append(sample)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def inputs_of(backbone: Backbone, batch: list[Sample]) -> Tensor:
    return torch.cat([backbone.preprocess(sample.image) for sample in batch]).to(
        backbone.device, memory_format=backbone.memory_format)


def chosen(config: EvaluationConfig, table_methods: tuple[str, ...], backbone: Backbone) -> list[str]:
    wanted = [name for name in table_methods if config.methods is None or name in config.methods]
    return select_methods(backbone, wanted)


def pending(records: RecordFile, config: EvaluationConfig, key: tuple[str, ...]) -> Iterator[Sample]:
    """This process's images whose rows are not in ``records`` yet (``key`` + the image id).

    Under torchrun, image i of the source is process ``i mod world``'s: the split depends on the
    source alone, so every image has one owner whatever each process has seen of the records.
    """
    process = current()
    for index, sample in enumerate(samples(config.images, config.limit)):
        if process.owns(index) and (*key, sample.id) not in records.done:
            yield sample


def records_of(config: EvaluationConfig, table: str) -> RecordFile:
    return RecordFile(config.out / "records", table)


def resolve_weights(name: str, backbone: str) -> str | None:
    if name == "clean":
        return None
    from fooling.registry import find_checkpoint
    return str(find_checkpoint(name, backbone).weights_path)


def checkpoint_backbone(name: str) -> str:
    from fooling.registry import find_checkpoint
    return find_checkpoint(name).backbone


# --- Similarity ---------------------------------------------------------------------------------

def run_similarity(config: EvaluationConfig, backbone: Backbone, progress: Progress) -> None:
    records = records_of(config, "similarity")
    methods = chosen(config, SIMILARITY_METHODS, backbone)
    done = 0
    for batch in batches(pending(records, config, (backbone.name,)), config.batch):
        result = explain(backbone, inputs_of(backbone, batch), methods)
        rows = []
        for name, baseline in DIFF_BASELINES.items():
            if name in result.maps and baseline in result.maps:
                values = mse(result.maps[name], result.maps[baseline]).tolist()
                rows += [{"backbone": backbone.name, "image": sample.id, "method": name,
                          "baseline": baseline, "mse": value}
                         for sample, value in zip(batch, values)]
        records.append(rows)
        done += len(batch)
        progress(f"similarity {backbone.name}", done, None)


# --- Susceptibility -----------------------------------------------------------------------------

def run_susceptibility(config: EvaluationConfig, clean_name: str, fooled_name: str,
                       progress: Progress) -> None:
    backbone_name = checkpoint_backbone(fooled_name)
    from fooling.registry import find_checkpoint
    attack_cam = find_checkpoint(fooled_name).metadata.get("recipe", {}).get("cam", "GradCAM")
    clean = load_backbone(backbone_name, resolve_weights(clean_name, backbone_name), config.device)
    fooled = load_backbone(backbone_name, resolve_weights(fooled_name, backbone_name),
                           config.device)
    if clean.num_classes != fooled.num_classes:
        raise UserInputError(f"--pairs {clean_name}:{fooled_name}: the checkpoints have "
                             f"{clean.num_classes} and {fooled.num_classes} classes")
    records = records_of(config, "susceptibility")
    methods = chosen(config, SUSCEPTIBILITY_METHODS, clean)
    done = 0
    for batch in batches(pending(records, config, (clean_name, fooled_name)), config.batch):
        inputs = inputs_of(clean, batch)
        a = explain(clean, inputs, methods)
        b = explain(fooled, inputs, methods, a.targets, a.false_classes)
        agree = (a.logits.argmax(1) == b.logits.argmax(1)).tolist()
        rows = []
        for name in methods:
            values = mse(a.maps[name], b.maps[name]).tolist()
            entropy_a = cam_entropy_nats(a.layer_maps[name]).tolist()
            entropy_b = cam_entropy_nats(b.layer_maps[name]).tolist()
            rows += [{"backbone": backbone_name, "clean": clean_name, "fooled": fooled_name,
                      "attack_cam": attack_cam, "image": sample.id, "method": name, "mse": value,
                      "entropy_clean": ea, "entropy_fooled": eb, "agree": int(same)}
                     for sample, value, ea, eb, same in zip(batch, values, entropy_a, entropy_b,
                                                            agree)]
        records.append(rows)
        done += len(batch)
        progress(f"susceptibility {clean_name} vs {fooled_name}", done, None)


# --- Run time -----------------------------------------------------------------------------------

def run_runtime(config: EvaluationConfig, backbone: Backbone, progress: Progress,
                repeats: int = 5) -> None:
    """Per method: ms per image alone (one ``explain`` call with that method) and its marginal
    cost inside the panel (the panel's time minus the panel's without it)."""
    device = str(backbone.device)
    records = records_of(config, "runtime")
    if (backbone.name, device) in records.done:
        return
    batch = list(samples(config.images, config.batch))
    inputs = inputs_of(backbone, batch)
    panel = select_methods(backbone, [name for name in DEFAULT_METHODS
                                      if config.methods is None or name in config.methods])
    measured = chosen(config, tuple(METHOD_NAMES), backbone)

    def median_ms(methods: list[str], times: int) -> float:
        explain(backbone, inputs, methods)  # warm-up
        return statistics.median(timed(lambda: explain(backbone, inputs, methods),
                                       backbone.device) for _ in range(times)) / len(batch)

    panel_ms = median_ms(panel, repeats)
    rows = []
    for index, name in enumerate(measured):
        times = 1 if name == "ScoreCAM" else repeats
        standalone = median_ms([name], times)
        rest = [other for other in panel if other != name]
        marginal = panel_ms - median_ms(rest, repeats) if name in panel and rest else standalone
        rows.append({"backbone": backbone.name, "device": device, "method": name,
                     "batch": len(batch), "standalone_ms": standalone, "marginal_ms": marginal,
                     "panel_ms": panel_ms})
        progress(f"runtime {backbone.name}", index + 1, len(measured))
    records.append(rows)


# --- FGSM, NISSIM, MOD / VID --------------------------------------------------------------------

def fgsm(backbone: Backbone, inputs: Tensor, labels: Tensor, epsilon: float) -> Tensor:
    """Fast Gradient Sign Method (Goodfellow et al. 2015) in pixel space: ``x' = clip(x + ε ·
    sign(∇_x CE(f(x), y)), 0, 1)``, with ``x`` the RGB image in [0, 1] and ``y`` the clean
    prediction; returns the attacked image normalised again for the model."""
    mean = torch.tensor(backbone.data_config["mean"], device=inputs.device)[:, None, None]
    std = torch.tensor(backbone.data_config["std"], device=inputs.device)[:, None, None]
    pixels = (inputs * std + mean).detach().requires_grad_()
    with torch.enable_grad():
        loss = F.cross_entropy(backbone.model((pixels - mean) / std), labels)
        gradient, = torch.autograd.grad(loss, pixels)
    attacked = (pixels + epsilon * gradient.sign()).clamp(0, 1).detach()
    return ((attacked - mean) / std).contiguous(memory_format=backbone.memory_format)


def run_modvid(config: EvaluationConfig, backbone: Backbone, progress: Progress) -> None:
    records = records_of(config, "modvid")
    methods = chosen(config, tuple(name for name in METHOD_NAMES if name != "ScoreCAM"), backbone)
    epsilon = f"{config.epsilon:.6g}"
    done = 0
    for batch in batches(pending(records, config, (backbone.name, epsilon)), config.batch):
        inputs = inputs_of(backbone, batch)
        clean = explain(backbone, inputs, methods)
        attacked_inputs = fgsm(backbone, inputs, clean.targets, config.epsilon)
        # Both maps explain the clean prediction, so a change is the explanation's, not the class's.
        attacked = explain(backbone, attacked_inputs, methods, clean.targets, clean.false_classes)
        success = (attacked.logits.argmax(1) != clean.targets).tolist()
        rows = []
        for name in methods:
            values = nissim(clean.maps[name], attacked.maps[name]).tolist()
            rows += [{"backbone": backbone.name, "epsilon": epsilon, "image": sample.id,
                      "method": name, "nissim": value, "attack_success": int(flipped)}
                     for sample, value, flipped in zip(batch, values, success)]
        records.append(rows)
        done += len(batch)
        progress(f"MOD/VID {backbone.name}", done, None)


# --- Salience-guided training on the synthetic domain -------------------------------------------

def run_training(config: EvaluationConfig, progress: Progress) -> None:
    """Baseline vs Difference vs Per-class vs Contrast Salience on synthetic:binary, ``seeds``
    runs each per held-out attack type: in-set (test split) and out-of-set (the held-out type)
    AUROC, and each gradient CAM's pointing-game hit rate on the in-set test images."""
    from fooling.data import SyntheticDataset
    from fooling.train import TrainConfig, train

    runs, pointing = records_of(config, "training"), records_of(config, "pointing")
    jobs = [(loss, seed, holdout) for holdout in config.holdouts for loss in TRAINING_LOSSES
            for seed in range(config.seeds)]
    for index, (loss, seed, holdout) in enumerate(jobs):
        if not current().owns(index) or (loss, str(seed), holdout) in runs.done:
            continue
        name = f"eval-{loss}-{holdout}-seed{seed}"
        entry = train(TrainConfig(
            name=name, backbone="tiny_resnet", init="random", loss=loss, data="synthetic:binary",
            holdout=holdout, steps=config.training_steps, batch=32, lr=0.05, seed=seed,
            val_size=64, directory=str(config.out / "training-checkpoints"),
            device=config.device, command="python -m cams evaluate (training table)"),
            distributed=False)  # one whole run per process: the runs are what is shared out
        model = load_backbone("tiny_resnet", weights=entry.weights_path, device=config.device)
        scores = {}
        for split in ("test", "outset"):
            dataset = SyntheticDataset("binary", split, 64, seed=1000, holdout=holdout,
                                       length=config.limit or 512)
            scores[split] = evaluate_split(model, dataset, config.batch * 8,
                                           with_pointing=split == "test")
        runs.append([{"loss": loss, "seed": seed, "holdout": holdout,
                      "steps": config.training_steps, "in_set_auroc": scores["test"]["auroc"],
                      "out_of_set_auroc": scores["outset"]["auroc"],
                      "in_set_accuracy": scores["test"]["accuracy"]}])
        pointing.append([{"loss": loss, "seed": seed, "holdout": holdout, "method": method,
                          "hit_rate": rate} for method, rate in scores["test"]["pointing"].items()])
        progress("salience-guided training", index + 1, len(jobs))


def evaluate_split(model: Backbone, dataset, batch: int, with_pointing: bool) -> dict:
    from fooling.train import normalise, stack
    methods = select_methods(model, [name for name in DEFAULT_METHODS
                                     if name not in ("TrueClassCAM", "FalseClassCAM")])
    scores, labels, correct = [], [], []
    hits: dict[str, list[Tensor]] = {name: [] for name in methods}
    for first in range(0, len(dataset), batch):
        images, truth, masks = stack(dataset, list(range(first, min(first + batch, len(dataset)))))
        inputs = normalise(model, images)
        truth = truth.to(model.device)
        if with_pointing:  # explain the true class, so the ground-truth mask is the right answer
            result = explain(model, inputs, methods, truth)
            logits = result.logits
            for name in methods:
                hits[name].append(pointing_game(result.maps[name], masks.to(model.device)))
        else:
            with torch.inference_mode():
                logits = model.model(inputs)
        scores.append(logits.softmax(1)[:, 1])
        labels.append(truth)
        correct.append(logits.argmax(1) == truth)
    return {"auroc": auroc(torch.cat(scores), torch.cat(labels)),
            "accuracy": float(torch.cat(correct).float().mean()),
            "pointing": {name: float(torch.cat(values).float().mean())
                         for name, values in hits.items() if values}}


def run_all(config: EvaluationConfig, progress: Progress | None = None) -> None:
    """Every requested table, backbone and pair; rows land in ``OUT/records`` as computed.

    Under torchrun each process does its share of the images (and of the training runs); once
    all are done, rank 0 merges their rows and times the methods (the run-time table is measured
    with the machine to itself).
    """
    process = current()
    progress = progress if progress and process.main else (lambda what, done, total: None)
    unknown = [table for table in config.tables if table not in TABLES]
    if unknown:
        raise UserInputError(f"unknown table {unknown[0]!r}: choose from {', '.join(TABLES)}")
    config.out.mkdir(parents=True, exist_ok=True)
    sharded = [table for table in ("similarity", "modvid") if table in config.tables]
    timed_later: dict[str, Backbone] = {}  # kept for the run-time table: each loaded once
    for name in config.backbones if sharded else []:
        backbone = load_backbone(name, device=config.device)
        for table in sharded:
            {"similarity": run_similarity, "modvid": run_modvid}[table](config, backbone, progress)
        if "runtime" in config.tables:
            timed_later[name] = backbone
    if "susceptibility" in config.tables:
        for clean_name, fooled_name in config.pairs:
            run_susceptibility(config, clean_name, fooled_name, progress)
    if "training" in config.tables:
        run_training(config, progress)
    barrier()
    if not process.main:
        return
    merge_all(config.out / "records")
    for name in config.backbones if "runtime" in config.tables else []:
        backbone = timed_later.get(name) or load_backbone(name, device=config.device)
        run_runtime(config, backbone, progress)
