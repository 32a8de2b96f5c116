"""Fine-tune a backbone with a salience objective: passive fooling (SHAM) or salience-guided training.

One step: a batch → the CAM the loss supervises (``--cam``, differentiable, from the engine's one
definition) for the true class ``t`` and the mean rival ``f`` → ``fooling.objectives`` → SGD. The data
order is a pure function of (seed, step), so a run is reproducible and resumes exactly where it
stopped. BatchNorm statistics stay frozen when starting from trained weights (predictions are
kept); validation runs at the end of every epoch (and at ``--val-every`` steps) and its numbers go
into the checkpoint's metadata.

Under ``torchrun`` the same run trains with DistributedDataParallel: ``--batch-size`` stays the global
batch, each process takes its interleaved share of every step's batch (DistributedSampler's
split, applied per step so that a run resumes with any number of processes), gradients are
averaged by DDP, validation is split over the processes and its numbers gathered, and only rank 0
writes files. With BatchNorm frozen (the default from trained weights) N processes compute what
one process computes with the same global batch; training BatchNorm uses SyncBatchNorm on GPUs
and each process's own batch statistics on CPUs (SyncBatchNorm needs GPUs).
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from cam_studio.data.distributed import Process, average, current, gather
from cam_studio.data.items import has_masks, stack
from cam_studio.data.order import batch_indices, seeded_generator
from cam_studio.data.steered import Interleaved, steered_images
from cam_studio.data.training import TrainingData, training_data
from cams.backbones import CLEAN_WEIGHTS, RANDOM_WEIGHTS, Backbone, load_backbone, resolve_device
from cams.checkpoints import (
    Checkpoint,
    atomic_write,
    check_free,
    checkpoint_dir,
    save_checkpoint,
    state_dict_sha256,
    taken_names,
    unique_name,
)
from cams.engine import layer_cams, linear_head_gradcams, true_false_maps
from cams.errors import Fix, UserInputError
from cams.layers import allow_double_backward, forward_layer
from cams.methods import display_maps, minmax, weighted_activations
from cams.metrics import auroc, cam_entropy_nats, mse, pointing_game, prediction_agreement
from fooling.config import OPTIMIZERS, QUICK_STEPS, TrainConfig, check_loaded, check_settings
from fooling.objectives import (
    Objective,
    centred_logit_distance,
    relative_distance,
    salience_loss,
    sham_cam_target,
    sham_feature_target,
)

ProgressCallback = Callable[[dict[str, Any]], None]
CLASS_CAM = "TrueClassCAM"  # t and f of Divisive Decisions: un-ReLU'd class CAMs (its §3)


RESUME = "resume"  # the input that continues a saved run (the CLI's --resume, the tab's Resume)


class TrainingCancelled(UserInputError):
    """Raised when a run is cancelled; its state is saved, and resuming continues it."""


def freeze_early_stages(model: torch.nn.Module, stages: int, head_only: bool = False) -> None:
    """Train only the last ``stages`` stages (timm's ``feature_info``) and what follows them, or
    with ``head_only`` only the classifier after the target layer."""
    if head_only:
        classifier = {id(parameter) for parameter in model.get_classifier().parameters()}
        for parameter in model.parameters():
            parameter.requires_grad_(id(parameter) in classifier)
        return
    boundaries = [info["module"] for info in getattr(model, "feature_info", [])]
    if stages <= 0 or stages >= len(boundaries):
        return
    last_frozen = boundaries[-stages - 1]  # parameters up to the end of this module stay fixed
    names = [name for name, _ in model.named_parameters()]
    cut = max(i for i, name in enumerate(names)
              if name == last_frozen or name.startswith(last_frozen + "."))
    for index, (_, parameter) in enumerate(model.named_parameters()):
        parameter.requires_grad_(index > cut)


class TrainingForward(torch.nn.Module):
    """What one step differentiates, as one module so that DistributedDataParallel sees the whole
    forward pass: the model's logits and the maps ``t`` and ``f`` the objective supervises
    (``cams.engine.true_false_maps``): the class CAMs (TrueClassCAM's maths) for Divisive
    Decisions' objectives, the ``--cam`` map for the SHAM attack."""

    def __init__(self, backbone: Backbone, objective: Objective, config: TrainConfig):
        super().__init__()
        self.model, self.backbone, self.rivals = backbone.model, backbone, config.rivals
        self.cam = CLASS_CAM if objective.class_cams else config.cam

    def forward(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``targets``: N classes (one map each, the engine's differentiable maps) or N×k (the
        SHAM attack on k classes per image: their GradCAMs at a GAP → Linear head, N×k×h×w)."""
        if targets.ndim == 1:
            return true_false_maps(self.backbone, inputs, self.cam, targets, self.rivals)
        activations, logits = self.backbone.forward(inputs, graph_below=True)
        maps = linear_head_gradcams(self.backbone, activations, targets)
        return maps, maps[:, :0], logits, activations


@dataclass
class Run:
    """A run in progress: the model being trained, its frozen starting copy, the optimizer, the
    objective's row, and this process's place among the run's processes."""

    config: TrainConfig
    backbone: Backbone
    start: torch.nn.Module
    data: TrainingData
    optimizer: torch.optim.Optimizer
    total_steps: int
    freeze_bn: bool
    forward: torch.nn.Module  # TrainingForward, wrapped in DDP when there are several processes
    objective: Objective
    process: Process = field(default_factory=Process)
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # validations
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) of every step

    @property
    def classification(self) -> str:
        """The classification term: ``ce`` (labels) or ``kl`` (to the starting model)."""
        if self.config.objective == "auto":
            return "ce" if self.data.labelled else "kl"
        return self.config.objective

    def target_salience(self, masks: Tensor, layer_size: tuple[int, int]) -> Tensor:
        """h at layer resolution, as the objective defines it (the data's maps, or the SHAM)."""
        return self.objective.salience(masks.to(self.backbone.device), layer_size,
                                       self.config.entropy_nats)

    def attacked_classes(self, targets: Tensor) -> Tensor:
        """The class whose CAM the step supervises, per image: the true (or starting top-1)
        class, or with ``--attack-class random`` any class, drawn from (seed, step). With
        ``--attack-classes k``: N×k classes, the image's own first and k − 1 others drawn from
        (seed, step) without repeats (every class when k is 0 or at least their number)."""
        config, classes = self.config, self.backbone.num_classes
        if config.attack_classes is not None:
            k = classes if config.attack_classes in (0, None) else min(config.attack_classes,
                                                                       classes)
            generator = seeded_generator(config.seed, "attack-classes", self.step)
            scores = torch.rand(config.batch, classes, generator=generator)
            mine = scores[self.process.rank::self.process.world].to(targets.device)
            mine[torch.arange(len(targets), device=targets.device), targets] = 2.0  # own first
            return mine.topk(k, dim=1).indices
        if config.attack_class == "true":
            return targets
        generator = seeded_generator(config.seed, "attack-class", self.step)
        drawn = torch.randint(classes, (config.batch,), generator=generator)
        return drawn[self.process.rank::self.process.world].to(targets.device)

    def train_step(self) -> dict[str, float]:
        config, backbone = self.config, self.backbone
        indices = batch_indices(len(self.data.train), config.batch, self.step, config.seed)
        images, labels, masks = stack(self.data.train, indices[self.process.rank::self.process.world])
        inputs = backbone.normalise(images)
        labels = labels.to(backbone.device)
        backbone.model.train(not self.freeze_bn)
        start_logits = start_pooled = None
        if (self.classification == "kl" or config.feature_weight or config.logit_weight
                or config.target_weight or config.blend_weight or not self.data.labelled):
            with torch.no_grad():
                start_features, start_logits = forward_layer(self.start, backbone.layer, inputs,
                                                             needs_graph=False)
                start_pooled = start_features.mean(dim=(2, 3))
        # Unlabelled images take the starting model's top-1 as their label (the paper's protocol).
        targets = labels if self.data.labelled else start_logits.argmax(dim=1)
        t, f, logits, activations = self.forward(inputs, self.attacked_classes(targets))
        h = self.target_salience(masks, tuple(t.shape[-2:]))
        if t.ndim == 4:  # k maps per image: each image's term is the mean over its k maps
            per_image = t.shape[1]
            t, h = t.flatten(0, 1), h.repeat_interleave(per_image, dim=0)
        loss, parts = salience_loss(
            self.objective, logits, t, f, h, config.weights(),
            labels=targets if self.classification == "ce" else None,
            clean_logits=start_logits if self.classification == "kl" else None)
        if config.feature_weight:
            feature_term = (activations.mean(dim=(2, 3)) - start_pooled).square().mean()
            loss = loss + config.feature_weight * feature_term
            parts["features"] = float(feature_term.detach())
        own_rows = (self.start.get_classifier().weight[targets].detach()  # the image's class
                    if config.target_weight or (config.blend_weight
                                                and config.blend_direction == "own") else None)
        if config.target_weight:  # the image's own class (its label, or the start's top-1)
            cam, start_cam = (weighted_activations(features, own_rows)
                              for features in (activations, start_features))
            target_term = relative_distance(
                cam, sham_cam_target(start_cam, config.entropy_nats, config.target_strength),
                start_cam).mean()
            loss = loss + config.target_weight * target_term
            parts["target"] = float(target_term.detach())
        if config.blend_weight:  # every channel's mean kept, so every logit
            blend_term = relative_distance(
                activations, sham_feature_target(
                    start_features, config.entropy_nats, config.blend_strength,
                    own_rows if config.blend_direction == "own" else None),
                start_features).mean()
            loss = loss + config.blend_weight * blend_term
            parts["blend"] = float(blend_term.detach())
        if config.logit_weight:
            logit_term = centred_logit_distance(logits, start_logits).mean()
            loss = loss + config.logit_weight * logit_term
            parts["logits"] = float(logit_term.detach())
        # The mean over the processes (each one's loss is the mean over its equal share).
        parts = average({"loss": float(loss.detach()), **parts})
        if not math.isfinite(parts["loss"]):  # every process sees the same number and stops
            raise UserInputError(f"the loss became {parts['loss']} at step {self.step}",
                                 Fix("lr", "a lower one"))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return parts

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Accuracy (AUROC for binary), agreement with the starting model, mean CAM entropy,
        mean MSE between the normalised CAM and the target salience, and the pointing game."""
        backbone, config = self.backbone, self.config
        backbone.model.eval()
        agree, confident, top5, correct, entropy, salience_mse, hits = [], [], [], [], [], [], []
        counted = 0
        scores, truths = [], []
        own = [index for index in range(len(self.data.val)) if self.process.owns(index)]
        for first in range(0, len(own), config.batch):
            indices = own[first:first + config.batch]
            images, labels, masks = stack(self.data.val, indices)
            inputs = backbone.normalise(images)
            start_logits = self.start(inputs)
            targets = labels.to(backbone.device) if self.data.labelled else start_logits.argmax(1)
            result = layer_cams(backbone, inputs, [config.cam], targets)
            cam, logits = result.maps[config.cam], result.logits
            predictions = logits.argmax(dim=1)
            agreement = prediction_agreement(start_logits, logits)
            agree.append(agreement["agreement"])
            # Where the starting model was sure (p ≥ 0.5), and whether its top-1 stays in the top-5.
            confident.append(agreement["agreement"][agreement["reference_sure"]])
            top5.append(agreement["reference_top1_in_top_k"])
            if self.data.labelled:
                correct.append(predictions == targets)
                scores.append(logits.softmax(dim=1)[:, -1])
                truths.append(targets)
            entropy.append(cam_entropy_nats(cam))
            # h exists where the objective makes its own (the SHAM) or the data brings maps.
            if not self.objective.needs_maps or has_masks(masks):
                h = self.target_salience(masks, tuple(cam.shape[-2:]))
                salience_mse.append(mse(h, minmax(cam)))
            if has_masks(masks):
                upsampled = display_maps(cam, tuple(inputs.shape[-2:]))
                hits.append(pointing_game(upsampled, masks.to(upsampled.device)))
            counted += len(indices)
        agree, confident, top5, correct, entropy, salience_mse, hits, scores, truths = (
            gathered(parts) for parts in (agree, confident, top5, correct, entropy, salience_mse,
                                          hits, scores, truths))
        metrics: dict[str, float] = {"step": self.step, "images": sum(gather(counted)),
                                     "agreement": float(agree.float().mean()),
                                     "agreement_confident": float(confident.float().mean()),
                                     "start_top1_in_top5": float(top5.float().mean()),
                                     "cam_entropy_nats": float(entropy.mean())}
        if len(correct):
            metrics["accuracy"] = float(correct.float().mean())
            if len(self.data.class_names) == 2:
                metrics["auroc"] = auroc(scores, truths)
        if len(salience_mse):
            metrics["salience_mse"] = float(salience_mse.mean())
        if len(hits):
            metrics["pointing_game"] = float(hits.float().mean())
        return metrics


def gathered(parts: list[Tensor]) -> Tensor:
    """One process's per-image values joined with every other process's (on the CPU)."""
    mine = torch.cat(parts).cpu() if parts else torch.empty(0)
    return torch.cat([values for values in gather(mine) if len(values)] or [torch.empty(0)])


def registry_folder(config: TrainConfig) -> Path:
    return Path(config.directory) if config.directory else checkpoint_dir()


def resume_paths(config: TrainConfig) -> tuple[Path, Path]:
    directory, name = registry_folder(config), config.name
    return directory / f".{name}.resume.safetensors", directory / f".{name}.resume.json"


def recipe(config: TrainConfig) -> dict[str, Any]:
    """The parts of the config that define the result (not where or how often it reports)."""
    skipped = {"name", "val_every", "save_every", "device", "command", "half", "steps", "epochs",
               "directory"}
    return {key: value for key, value in asdict(config).items() if key not in skipped}


def save_resume_state(run: Run) -> None:
    from safetensors.torch import save_file

    weights, state = resume_paths(run.config)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{key}": value.detach().cpu().contiguous()
               for key, value in run.backbone.model.state_dict().items()}
    names = {id(parameter): name for name, parameter in run.backbone.model.named_parameters()}
    for group in run.optimizer.param_groups:  # the optimizer's per-parameter state, any kind
        for parameter in group["params"]:
            for part, value in run.optimizer.state.get(parameter, {}).items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optimizer.{part}.{names[id(parameter)]}"] = (
                        value.detach().cpu().contiguous())
    atomic_write(weights, lambda path: save_file(tensors, str(path)))
    record = {"step": run.step, "recipe": recipe(run.config), "history": run.history,
              "losses": run.losses}
    atomic_write(state, lambda path: path.write_text(json.dumps(record)))


def load_resume_state(run: Run) -> bool:
    """Continue from the saved state of a run of the same name and recipe; False if none."""
    from safetensors.torch import load_file

    weights, state = resume_paths(run.config)
    if not (weights.is_file() and state.is_file()):
        return False
    record = json.loads(state.read_text())
    if record.get("recipe") != recipe(run.config):
        raise UserInputError(f"the saved state of {run.config.name!r} is of another recipe",
                             "resume with the same settings", Fix("name", "another name, to start "
                                                                          "afresh"))
    tensors = load_file(str(weights))
    run.backbone.model.load_state_dict({key.removeprefix("model."): value
                                        for key, value in tensors.items()
                                        if key.startswith("model.")})
    parameters = dict(run.backbone.model.named_parameters())
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            part, name = key.removeprefix("optimizer.").split(".", 1)
            device = parameters[name].device if value.ndim else "cpu"  # Adam's step stays here
            run.optimizer.state[parameters[name]][part] = value.to(device)
        elif key.startswith("momentum."):  # saved before the optimizer became a setting
            parameter = parameters[key.removeprefix("momentum.")]
            run.optimizer.state[parameter]["momentum_buffer"] = value.to(parameter.device)
    run.step, run.history = int(record["step"]), list(record.get("history", []))
    run.losses = [(int(step), float(loss)) for step, loss in record.get("losses", [])]
    return True


def free_run_name(name: str, directory: Path | None = None) -> str:
    """``name`` or its first free ``name-2``, … that neither a checkpoint nor a cancelled run's
    saved state has."""
    folder = Path(directory) if directory is not None else checkpoint_dir()
    saved = {path.name.removeprefix(".").removesuffix(".resume.json")
             for path in folder.glob(".*.resume.json")} if folder.is_dir() else set()
    return unique_name(name, taken_names(folder) | saved)


def check_start(config: TrainConfig, resume: bool) -> None:
    """Before any training: the name is free, and a fresh start never overwrites the saved
    state of a cancelled run of that name."""
    folder = registry_folder(config)
    check_free(config.name, folder)
    if not resume and any(path.exists() for path in resume_paths(config)):
        raise UserInputError(f"a cancelled run named {config.name!r} is saved",
                             Fix(RESUME, "to continue it"),
                             Fix("name", value=free_run_name(config.name, folder)))


def own_start(config: TrainConfig, own: Backbone) -> tuple[TrainConfig, Backbone]:
    """The run's start from your own backbone (``cams.wrap``): a copy of it (yours is left as it
    was), on the config's device, the config naming it; what needs a timm model is refused."""
    if config.init != CLEAN_WEIGHTS:
        raise UserInputError("your own model starts from its own weights",
                             Fix("init", value=CLEAN_WEIGHTS))
    model = copy.deepcopy(own.model).to(resolve_device(config.device) if config.device
                                        else own.device)
    if config.head_only and not hasattr(model, "get_classifier"):
        raise UserInputError(f"{own.name} does not say which layer is its classifier",
                             Fix("head_only", "left out"))
    if config.train_stages and not getattr(model, "feature_info", None):
        raise UserInputError(f"{own.name} does not say where its stages end (timm's "
                             "feature_info)", Fix("train_stages", "0 (the whole network)"))
    return (replace(config, backbone=own.name, layer=own.layer.name),
            replace(own, model=model, metadata={**own.metadata, "wrapped": True}))


def prepare(config: TrainConfig, distributed: bool = True, resume: bool = False,
            backbone: Backbone | None = None) -> Run:
    """Check the start (``check_start``), load the starting weights, adapt the head to the
    data's classes, build the optimizer. Under torchrun (and ``distributed``) the run is shared
    by all of torchrun's processes. ``backbone``: your own model (``cams.wrap``) to start from
    instead of ``config.backbone`` and ``config.init``."""
    process = current() if distributed else Process()
    if backbone is not None:
        config, backbone = own_start(config, backbone)
    objective = check_settings(config, process.world)
    check_start(config, resume)  # now, not after the run
    torch.manual_seed(config.seed)
    if backbone is None:
        try:
            backbone = load_backbone(config.backbone, config.init, config.device,
                                     layer=config.layer)
        except UserInputError as error:
            if config.init != CLEAN_WEIGHTS:
                raise
            raise error.with_fixes(Fix("init", value=RANDOM_WEIGHTS),
                                   Fix("init", "a registry checkpoint or a .safetensors file")
                                   ) from error
    allow_double_backward(backbone.model)  # the salience losses differentiate the maps
    data = training_data(config.data, config.size or backbone.input_size[0], config.seed,
                         val_size=config.val_size, holdout=config.holdout,
                         salience=config.salience,
                         skip_missing_salience=config.skip_missing_salience)
    check_loaded(config, objective, backbone, data)
    model = backbone.model
    if data.labelled and data.class_names and len(data.class_names) != backbone.num_classes:
        if not hasattr(model, "reset_classifier"):
            raise UserInputError(f"{backbone.name} has {backbone.num_classes} outputs and the "
                                 f"data {len(data.class_names)} classes",
                                 f"give a model with {len(data.class_names)} outputs")
        torch.manual_seed(config.seed)
        model.reset_classifier(len(data.class_names))
        model.to(backbone.device)
    if data.labelled:
        backbone.class_names = list(data.class_names)
    backbone.data_config = {**backbone.data_config, "input_size": (3, data.size, data.size)}
    start = copy.deepcopy(model).eval().requires_grad_(False)
    if config.steered:
        data.train = Interleaved(data.train, steered_images(
            start, backbone.normalise, data.train, backbone.num_classes, config.steered,
            config.seed, config.steer_steps,
            key=f"{state_dict_sha256(start)}|{config.data}|{config.seed}|{data.size}"))
    freeze_early_stages(model, config.train_stages, config.head_only)
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = OPTIMIZERS[config.optimizer](trainable, config)
    if config.epochs is not None:
        total = math.ceil(config.epochs * len(data.train) / config.batch)
    else:
        total = QUICK_STEPS if config.steps is None else config.steps
    if total < 1:
        raise UserInputError("nothing to train", Fix("steps", "above 0"), Fix("epochs", "above 0"))
    freeze_bn = config.freeze_bn if config.freeze_bn is not None else config.init != RANDOM_WEIGHTS
    on_gpu = backbone.device.type == "cuda"
    if process.world > 1 and on_gpu and not freeze_bn:  # the same parameters, shared statistics
        backbone.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    forward: torch.nn.Module = TrainingForward(backbone, objective, config)
    if process.world > 1:
        from torch.nn.parallel import DistributedDataParallel
        forward = DistributedDataParallel(forward, device_ids=[backbone.device] if on_gpu else None)
    return Run(config, backbone, start, data, optimizer, total, freeze_bn, forward, objective,
               process)


def revalidate(entry: Checkpoint, device: str | None = None) -> dict[str, float]:
    """Recompute a registry checkpoint's final validation from its recorded recipe (the same
    data, starting model and seed): it must reproduce the metrics its metadata records."""
    fields = TrainConfig.__dataclass_fields__
    recorded = {key: value for key, value in entry.metadata["recipe"].items() if key in fields}
    config = TrainConfig(**{**recorded, "name": f"{entry.name}-revalidate", "steps": 1,
                            "device": device, "command": "revalidate"})
    run = prepare(config)
    from safetensors.torch import load_file
    run.backbone.model.load_state_dict(load_file(str(entry.weights_path)))
    run.step = int(entry.metadata["metrics"]["step"])
    return run.validate()


def metadata(run: Run, seconds: float) -> dict[str, Any]:
    backbone = run.backbone
    return {
        "backbone": backbone.name,
        **({"wrapped": True} if backbone.metadata.get("wrapped") else {}),
        "layer": backbone.layer.name,
        "num_classes": backbone.num_classes,
        "class_names": backbone.class_names,
        "data_config": {key: backbone.data_config[key]
                        for key in ("input_size", "mean", "std", "crop_pct")
                        if key in backbone.data_config},
        "recipe": {**recipe(run.config), "steps": run.total_steps,
                   "objective": run.classification,
                   "weights": asdict(run.config.weights()), "freeze_bn": run.freeze_bn},
        "command": run.config.command,
        "metrics": run.history[-1] if run.history else {},
        "history": run.history,
        "train_seconds": round(seconds, 1),
        "processes": run.process.world,
    }


def train(config: TrainConfig, progress: ProgressCallback | None = None,
          cancel: threading.Event | None = None, resume: bool = False,
          distributed: bool = True, backbone: Backbone | None = None) -> Checkpoint | None:
    """Run ``config`` to the end and save the checkpoint in the registry.

    ``progress`` receives ``{"step", "steps", "loss", …}`` after every step and the validation
    metrics (``"validation": {...}``) when they are computed. Setting ``cancel`` saves the state
    and raises ``TrainingCancelled``; ``resume=True`` continues a saved state. Under torchrun
    (unless ``distributed`` is False) all processes train one model; rank 0 reports and saves,
    and the others return None. ``backbone``: your own model (``cams.wrap``) to fine-tune instead
    of ``config.backbone``; its checkpoint's metadata says so (load it into your model).
    """
    return execute(prepare(config, distributed, resume, backbone), progress, cancel, resume)


def execute(run: Run, progress: ProgressCallback | None = None,
            cancel: threading.Event | None = None, resume: bool = False) -> Checkpoint | None:
    """Train a prepared run (``prepare`` checks the config and loads everything first)."""
    config, main = run.config, run.process.main
    progress = progress if main else None
    if resume and load_resume_state(run) and progress:
        # the curves so far, so that a resumed run's page shows its whole history
        progress({"step": run.step, "steps": run.total_steps, "resumed": True,
                  "losses": list(run.losses), "history": list(run.history)})
    epoch_steps = max(1, math.ceil(len(run.data.train) / config.batch))
    val_every = config.val_every or min(epoch_steps, max(1, run.total_steps // 5))
    if not run.history:
        run.history.append(run.validate())
        if progress:
            progress({"step": run.step, "steps": run.total_steps, "validation": run.history[-1]})
    began = time.perf_counter()
    while run.step < run.total_steps:
        if cancel is not None and cancel.is_set():
            save_resume_state(run)
            raise TrainingCancelled(f"cancelled at step {run.step}",
                                    Fix(RESUME, "with the same settings, to continue it"))
        parts = run.train_step()
        if "loss" in parts:
            run.losses.append((run.step, float(parts["loss"])))
        event: dict[str, Any] = {"step": run.step, "steps": run.total_steps, **parts}
        if run.step % val_every == 0 or run.step == run.total_steps:
            run.history.append(run.validate())
            event["validation"] = run.history[-1]
        if progress:
            progress(event)
        if run.step % config.save_every == 0 and run.step < run.total_steps and main:
            save_resume_state(run)
    if not main:
        return None
    entry = save_checkpoint(run.backbone.model.state_dict(),
                            metadata(run, time.perf_counter() - began), config.name,
                            registry_folder(config), half=config.half)
    for path in resume_paths(config):
        path.unlink(missing_ok=True)
    return entry
