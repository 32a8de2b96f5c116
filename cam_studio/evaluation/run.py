"""The evaluation's per-image work: each table's rows, appended to ``OUT/records/`` as computed.

Tables (the papers' quantitative claims):
- ``similarity`` (DiffGradCAM paper, Table 3 / RQ2): MSE of each DiffGradCAM(++) map to GradCAM(++).
- ``susceptibility`` (Table 4 / RQ3): per method, MSE between a clean and a fooled checkpoint's
  maps of the same image, their CAM entropies, whether the two agree on the prediction, and the
  common-mode share of the change (the part no DiffGradCAM can see).
- ``runtime`` (Table 1): per method, ms per image alone and as marginal cost inside the panel.
- ``modvid`` (Generalizing Adversarial Explanations): NISSIM between each method's map of an image
  and of its FGSM-attacked copy, and whether the attack changed the prediction.
- ``training`` (Divisive Decisions, Tables 2–4): salience-guided training on the synthetic domain,
  in-set and out-of-set AUROC, and each CAM method's pointing-game hit rate.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from cam_studio.data.distributed import barrier, current
from cam_studio.data.items import stack
from cam_studio.data.sources import Sample, samples
from cam_studio.data.synthetic import SyntheticDataset
from cam_studio.evaluation.config import OPT_IN_TABLES, TABLES, EvaluationConfig
from cam_studio.evaluation.records import RecordFile, merge_all
from cam_studio.evaluation.timing import timed
from cams.backbones import CLEAN_WEIGHTS, Backbone, load_backbone
from cams.engine import Explanation, applies, as_input_batch, explain, explain_pair, select_methods
from cams.errors import UserInputError
from cams.faithfulness import faithfulness_curves, road
from cams.methods import DEFAULT_METHODS, DIFF_BASELINES, METHOD_NAMES, METHODS
from cams.metrics import (
    auroc,
    baseline_similarity,
    cam_entropy_nats,
    common_mode_share,
    nissim,
    pointing_game,
    susceptibility,
)
from fooling.attacks import ATTACK_BASE, ATTACKS, fgsm
from fooling.config import TrainConfig, preset
from fooling.objectives import OBJECTIVES
from fooling.sham import sham_distance
from fooling.train import train

# Each table's methods, read off the method table.
SIMILARITY_METHODS = tuple(name for name in METHOD_NAMES
                           if name in DIFF_BASELINES or name in DIFF_BASELINES.values())
SUSCEPTIBILITY_METHODS = tuple(name for name, method in METHODS.items() if method.compared)
# Faithfulness: 17 forward passes of 2 images per map, so ScoreCAM (itself thousands) is left out.
FAITHFULNESS_METHODS = tuple(name for name, method in METHODS.items()
                             if method.compared and method.default)
# The pointing game scores maps that explain the target: not the false class's ``f``, nor ``t``
# (GradCAM before its ReLU: the same maximum); their panel, DifferenceSalience, is scored.
POINTING_METHODS = tuple(name for name, method in METHODS.items()
                         if method.default and method.class_map not in ("t", "f"))
# Divisive Decisions' objectives (the training table); "sham" is passive fooling, not one of them.
TRAINING_LOSSES = tuple(name for name, objective in OBJECTIVES.items() if objective.needs_maps)
Progress = Callable[[str, int, int | None], None]  # (what, done, total)


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
    return as_input_batch(backbone, [sample.image for sample in batch])


def chosen(config: EvaluationConfig, table_methods: tuple[str, ...], backbone: Backbone) -> list[str]:
    """A table's methods that apply to ``backbone``, restricted to ``--methods`` if given."""
    wanted = [name for name in table_methods if applies(METHODS[name], backbone)
              and (config.methods is None or name in config.methods)]
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


# --- Similarity ---------------------------------------------------------------------------------

def run_similarity(config: EvaluationConfig, backbone: Backbone, progress: Progress) -> None:
    records = records_of(config, "similarity")
    methods = chosen(config, SIMILARITY_METHODS, backbone)
    done = 0
    for batch in batches(pending(records, config, (backbone.name,)), config.batch):
        result = explain(backbone, inputs_of(backbone, batch), methods)
        rows = []
        for name, values in baseline_similarity(result.maps).items():
            rows += [{"backbone": backbone.name, "image": sample.id, "method": name,
                      "baseline": DIFF_BASELINES[name], "mse": value}
                     for sample, value in zip(batch, values.tolist())]
        records.append(rows)
        done += len(batch)
        progress(f"similarity {backbone.name}", done, None)


# --- Faithfulness ------------------------------------------------------------------------------

def per_map_scores(config: EvaluationConfig, backbone: Backbone, progress: Progress,
                   table: str, score: Callable[[Backbone, Explanation, str], dict[str, Tensor]],
                   label: str | None = None) -> None:
    """Per image and method of a faithfulness table: ``score(backbone, result, method)`` gives
    each column's N values for a batch. ``label`` names a fooled checkpoint (default: the
    backbone, clean)."""
    label = label or backbone.name
    records = records_of(config, table)
    methods = chosen(config, FAITHFULNESS_METHODS, backbone)
    done = 0
    for batch in batches(pending(records, config, (label,)), config.batch):
        result = explain(backbone, inputs_of(backbone, batch), methods)
        rows = []
        for name in methods:
            columns = {key: values.tolist() for key, values in score(backbone, result, name).items()}
            rows += [{"model": label, "image": sample.id, "method": name,
                      **{key: values[index] for key, values in columns.items()}}
                     for index, sample in enumerate(batch)]
        records.append(rows)
        done += len(batch)
        progress(f"{table} {label}", done, None)


def deletion_insertion(backbone: Backbone, result: Explanation, name: str) -> dict[str, Tensor]:
    """Deletion and insertion AUC (``cams.metrics.faithfulness_curves``, blurred baseline)."""
    curves = faithfulness_curves(backbone.model, result.inputs, result.maps[name], result.targets)
    return {"deletion_auc": curves.deletion_auc, "insertion_auc": curves.insertion_auc}


def road_columns(backbone: Backbone, result: Explanation, name: str) -> dict[str, Tensor]:
    """ROAD MoRF, LeRF and combined, each the mean over ``ROAD_QUICK_PERCENTILES``."""
    scores = road(backbone.model, result.inputs, result.maps[name], result.targets)
    return {"morf": scores.morf.mean(dim=1), "lerf": scores.lerf.mean(dim=1),
            "combined": scores.combined}


FAITHFULNESS_TABLES = {"faithfulness": deletion_insertion, "road": road_columns}


# --- Susceptibility -----------------------------------------------------------------------------

def run_susceptibility(config: EvaluationConfig, clean_name: str, fooled_name: str,
                       progress: Progress, fooled_label: str | None = None) -> None:
    """Per image and method: MSE between the clean and the fooled checkpoint's maps, their
    entropies, agreement, the common-mode share of the change, and GradCAM's distance to the
    SHAM in both. ``fooled_name`` may be a checkpoint file (``fooled_label`` names it)."""
    fooled = load_backbone(None, fooled_name, config.device)
    clean = load_backbone(fooled.name, clean_name, config.device)
    label = fooled_label or fooled_name
    attack_cam = (fooled.metadata["recipe"].get("cam", TrainConfig.cam)
                  if "recipe" in fooled.metadata else
                  "constructed" if "construction" in fooled.metadata else "unknown")
    records = records_of(config, "susceptibility")
    methods = chosen(config, SUSCEPTIBILITY_METHODS, clean)
    measured = list(dict.fromkeys([*methods, "GradCAM"]))  # GradCAM: the distance to the SHAM
    done = 0
    for batch in batches(pending(records, config, (clean_name, label)), config.batch):
        a, b = explain_pair(clean, fooled, inputs_of(clean, batch), measured, class_maps=True)
        agree = (a.logits.argmax(1) == b.logits.argmax(1)).tolist()
        shares = common_mode_share(a.class_maps, b.class_maps).tolist()
        to_sham = [sham_distance(result.layer_maps["GradCAM"]).tolist() for result in (a, b)]
        moved = susceptibility(a.maps, b.maps)
        rows = []
        for name in methods:
            entropy_a = cam_entropy_nats(a.layer_maps[name]).tolist()
            entropy_b = cam_entropy_nats(b.layer_maps[name]).tolist()
            rows += [{"backbone": fooled.name, "clean": clean_name, "fooled": label,
                      "attack_cam": attack_cam, "image": sample.id, "method": name, "mse": value,
                      "entropy_clean": ea, "entropy_fooled": eb, "agree": int(same),
                      "common_mode_share": share, "gradcam_sham_mse_clean": sham_a,
                      "gradcam_sham_mse_fooled": sham_b}
                     for sample, value, ea, eb, same, share, sham_a, sham_b in zip(
                         batch, moved[name].tolist(), entropy_a, entropy_b, agree, shares,
                         *to_sham)]
        records.append(rows)
        done += len(batch)
        progress(f"susceptibility {clean_name} vs {label}", done, None)


# --- Which attacks DiffGradCAM resists -----------------------------------------------------------

def run_attacks(config: EvaluationConfig, progress: Progress) -> None:
    """Train each attack of ``config.attacks`` (the shipped Lite0 SHAM recipe with one change,
    ``fooling.config.ATTACKS``) for ``attack_steps`` steps, then measure it against the clean
    model on ``config.images`` as the susceptibility table does."""
    unknown = [name for name in config.attacks if name not in ATTACKS]
    if unknown:
        raise UserInputError(f"unknown attack {unknown[0]!r}: choose from {', '.join(ATTACKS)}")
    trained = records_of(config, "attacks")
    folder = config.out / "attack-checkpoints"
    for index, attack in enumerate(config.attacks):
        name = f"attack-{attack}"
        if not current().owns(index):
            continue
        if (attack,) not in trained.done:
            entry = train(preset(
                ATTACK_BASE, **ATTACKS[attack], name=name, steps=config.attack_steps,
                half=False, val_every=config.attack_steps, val_size=64, directory=str(folder),
                device=config.device, command="python -m cams evaluate (attacks table)"),
                distributed=False)
            final = entry.metadata["metrics"]
            trained.append([{"attack": attack, "checkpoint": name, "steps": config.attack_steps,
                             "train_seconds": entry.metadata["train_seconds"],
                             "agreement": final["agreement"],
                             "salience_mse": final["salience_mse"]}])
        run_susceptibility(config, CLEAN_WEIGHTS, str(folder / f"{name}.safetensors"),
                           progress, fooled_label=name)
        progress("attacks", index + 1, len(config.attacks))


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
    panel = chosen(config, DEFAULT_METHODS, backbone)
    measured = chosen(config, METHOD_NAMES, backbone)

    def median_ms(methods: list[str], times: int) -> float:
        explain(backbone, inputs, methods)  # warm-up
        return statistics.median(timed(lambda: explain(backbone, inputs, methods),
                                       backbone.device) for _ in range(times)) / len(batch)

    panel_ms = median_ms(panel, repeats)
    rows = []
    for index, name in enumerate(measured):
        times = repeats if METHODS[name].default else 1  # the opt-in ones are the slow ones
        standalone = median_ms([name], times)
        rest = [other for other in panel if other != name]
        marginal = panel_ms - median_ms(rest, repeats) if name in panel and rest else standalone
        rows.append({"backbone": backbone.name, "device": device, "method": name,
                     "batch": len(batch), "standalone_ms": standalone, "marginal_ms": marginal,
                     "panel_ms": panel_ms})
        progress(f"runtime {backbone.name}", index + 1, len(measured))
    records.append(rows)


# --- FGSM, NISSIM, MOD / VID --------------------------------------------------------------------

def run_modvid(config: EvaluationConfig, backbone: Backbone, progress: Progress) -> None:
    records = records_of(config, "modvid")
    methods = chosen(config, DEFAULT_METHODS, backbone)
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
    runs each per held-out attack type (the ``synthetic`` training preset): in-set (test split)
    and out-of-set (the held-out type) AUROC, and each CAM's pointing-game hit rate on the in-set
    test images."""
    runs, pointing = records_of(config, "training"), records_of(config, "pointing")
    jobs = [(loss, seed, holdout) for holdout in config.holdouts for loss in TRAINING_LOSSES
            for seed in range(config.seeds)]
    for index, (loss, seed, holdout) in enumerate(jobs):
        if not current().owns(index) or (loss, str(seed), holdout) in runs.done:
            continue
        entry = train(preset(
            "synthetic", name=f"eval-{loss}-{holdout}-seed{seed}", loss=loss, holdout=holdout,
            steps=config.training_steps, lr=config.training_lr, seed=seed, val_size=64,
            directory=str(config.out / "training-checkpoints"), device=config.device,
            command="python -m cams evaluate (training table)"),
            distributed=False)  # one whole run per process: the runs are what is shared out
        model = load_backbone("tiny_resnet", weights=entry.weights_path, device=config.device)
        scores = {}
        for split in ("test", "outset"):
            dataset = SyntheticDataset("binary", split, 64, seed=1000, holdout=holdout,
                                       length=config.limit or 512)
            scores[split] = evaluate_split(model, dataset, config.batch * 8,
                                           with_pointing=split == "test")
        runs.append([{"loss": loss, "seed": seed, "holdout": holdout,
                      "steps": config.training_steps, "lr": config.training_lr,
                      "in_set_auroc": scores["test"]["auroc"],
                      "out_of_set_auroc": scores["outset"]["auroc"],
                      "in_set_accuracy": scores["test"]["accuracy"]}])
        pointing.append([{"loss": loss, "seed": seed, "holdout": holdout, "method": method,
                          "hit_rate": rate} for method, rate in scores["test"]["pointing"].items()])
        progress("salience-guided training", index + 1, len(jobs))


def evaluate_split(model: Backbone, dataset, batch: int, with_pointing: bool) -> dict:
    methods = select_methods(model, [name for name in POINTING_METHODS
                                     if applies(METHODS[name], model)])
    scores, labels, correct = [], [], []
    hits: dict[str, list[Tensor]] = {name: [] for name in methods}
    for first in range(0, len(dataset), batch):
        images, truth, masks = stack(dataset, list(range(first, min(first + batch, len(dataset)))))
        inputs = model.normalise(images)
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


def planned_tables(config: EvaluationConfig) -> list[str]:
    """The tables to compute: those named (each must have what it needs), or by default every
    table that applies (susceptibility only with pairs) but the opt-in ones (``OPT_IN_TABLES``:
    faithfulness, and attacks and training, which train models)."""
    if config.batch < 1 or (config.limit is not None and config.limit < 1):
        raise UserInputError("--batch-size and --limit must be at least 1")
    if config.tables is None:
        return [table for table in TABLES
                if (table != "susceptibility" or config.pairs) and table not in OPT_IN_TABLES]
    unknown = [table for table in config.tables if table not in TABLES]
    if unknown:
        raise UserInputError(f"unknown table {unknown[0]!r}: choose from {', '.join(TABLES)}")
    if not config.tables:
        raise UserInputError(f"choose at least one table of {', '.join(TABLES)}")
    if "susceptibility" in config.tables and not config.pairs:
        raise UserInputError("the susceptibility table needs at least one clean:fooled pair: "
                             "give --pairs CLEAN:FOOLED")
    per_backbone = [table for table in ("similarity", "runtime", "modvid")
                    if table in config.tables]
    if per_backbone and not config.backbones:
        raise UserInputError(f"the {per_backbone[0]} table needs at least one backbone: give "
                             "--backbones")
    return [table for table in TABLES if table in config.tables]


def run_all(config: EvaluationConfig, progress: Progress | None = None) -> None:
    """Every requested table, backbone and pair; rows land in ``OUT/records`` as computed.

    Under torchrun each process does its share of the images (and of the training runs); once
    all are done, rank 0 merges their rows and times the methods (the run-time table is measured
    with the machine to itself).
    """
    process = current()
    progress = progress if progress and process.main else (lambda what, done, total: None)
    tables = planned_tables(config)
    config.out.mkdir(parents=True, exist_ok=True)
    sharded = {"similarity": run_similarity, "modvid": run_modvid,
               **{table: functools.partial(per_map_scores, table=table, score=score)
                  for table, score in FAITHFULNESS_TABLES.items()}}
    per_image = [table for table in sharded if table in tables]
    timed_later: dict[str, Backbone] = {}  # kept for the run-time table: each loaded once
    for name in config.backbones if per_image else []:
        backbone = load_backbone(name, device=config.device)
        for table in per_image:
            sharded[table](config, backbone, progress)
        if "runtime" in tables:
            timed_later[name] = backbone
    if "susceptibility" in tables:
        for clean_name, fooled_name in config.pairs:
            run_susceptibility(config, clean_name, fooled_name, progress)
    # The fooled checkpoints too: does fooling cost faithfulness?
    for fooled_name in dict.fromkeys(fooled for _, fooled in config.pairs):
        named = [table for table in FAITHFULNESS_TABLES if table in tables]
        fooled = load_backbone(None, fooled_name, config.device) if named else None
        for table in named:
            per_map_scores(config, fooled, progress, table, FAITHFULNESS_TABLES[table],
                           label=fooled_name)
    if "attacks" in tables:
        run_attacks(config, progress)
    if "training" in tables:
        run_training(config, progress)
    barrier()
    if not process.main:
        return
    merge_all(config.out / "records")
    for name in config.backbones if "runtime" in tables else []:
        backbone = timed_later.get(name) or load_backbone(name, device=config.device)
        run_runtime(config, backbone, progress)
