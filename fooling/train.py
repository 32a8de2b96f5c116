"""Fine-tune a backbone with a salience objective: passive fooling (SHAM) or salience-guided training.

One step: a batch → the CAM the loss supervises (``--cam``, differentiable, from the engine's one
definition) for the true class ``t`` and the mean rival ``f`` → ``fooling.losses`` → SGD. The data
order is a pure function of (seed, step), so a run is reproducible and resumes exactly where it
stopped. BatchNorm statistics stay frozen when starting from trained weights (predictions are
kept); validation runs at the end of every epoch (and at ``--val-every`` steps) and its numbers go
into the checkpoint's metadata.

Under ``torchrun`` the same run trains with DistributedDataParallel: ``--batch`` stays the global
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
import shlex
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from cams.backbones import DEFAULT_BACKBONE, RANDOM_WEIGHTS, Backbone, load_backbone
from cams.distributed import Process, average, current, gather
from cams.engine import layer_cams, true_false_maps
from cams.errors import UserInputError
from cams.methods import GRADIENT_METHODS, display_maps, minmax
from cams.metrics import auroc, cam_entropy_nats, pointing_game
from fooling.data import (
    NO_MASK,
    FolderDataset,
    PhotoCrops,
    SyntheticDataset,
    bundled_photos,
    seeded_generator,
)
from fooling.losses import LOSSES, LossWeights, check_weights, map_mse, resize_salience, salience_loss
from fooling.registry import (
    Checkpoint,
    atomic_write,
    check_name,
    checkpoint_dir,
    find_checkpoint,
    save_checkpoint,
)
from fooling.sham import DEFAULT_ENTROPY_NATS, sham_mask

CLEAN_INIT = "clean"
SYNTHETIC_PREFIX = "synthetic:"
PHOTOS = "photos"
ProgressCallback = Callable[[dict[str, Any]], None]


class TrainingCancelled(Exception):
    """Raised when a run is cancelled; its state is saved, ``--resume`` continues it."""


@dataclass
class TrainConfig:
    """Everything that defines a run (recorded in the checkpoint's metadata as its recipe)."""

    name: str
    backbone: str = DEFAULT_BACKBONE
    init: str = CLEAN_INIT  # clean (pretrained) | random | a registry checkpoint | a .safetensors
    loss: str = "sham"
    data: str = "synthetic:binary"  # synthetic:binary | synthetic:7class | photos | a folder
    salience: str | None = None  # folder of salience maps parallel to a data folder
    skip_missing_salience: bool = False
    holdout: str | None = None  # synthetic:binary's held-out attack type
    steps: int | None = None
    epochs: float | None = None
    batch: int = 16
    size: int | None = None  # input side in pixels (default: the backbone's)
    lr: float = 0.002
    momentum: float = 0.9
    seed: int = 0
    cam: str = "GradCAM"
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    objective: str = "auto"  # ce | kl | auto (KL to the starting model when unlabelled)
    entropy_nats: float = DEFAULT_ENTROPY_NATS
    train_stages: int = 0  # train only the last N stages (and the head); 0 = everything
    freeze_bn: bool | None = None  # default: frozen unless the weights start random
    feature_weight: float = 0.0  # + λ·MSE(pooled features, the starting model's): keeps predictions
    val_size: int = 256
    val_every: int | None = None
    save_every: int = 50
    half: bool = False
    device: str | None = None
    directory: str | None = None  # the registry folder to save into (default: checkpoint_dir())
    command: str = field(default_factory=lambda: shlex.join([Path(sys.executable).name,
                                                             *sys.argv]))  # as launched

    def weights(self) -> LossWeights:
        default = LossWeights.default("baseline" if self.loss == "sham" else self.loss)
        return check_weights(LossWeights(
            default.alpha if self.alpha is None else self.alpha,
            default.beta if self.beta is None else self.beta,
            default.gamma if self.gamma is None else self.gamma))


@dataclass
class TrainingData:
    train: Dataset
    val: Dataset
    class_names: list[str]
    labelled: bool
    has_masks: bool
    size: int


def make_data(config: TrainConfig, default_size: int) -> TrainingData:
    """The training and validation sets named by ``config.data``."""
    spec = config.data
    if spec.startswith(SYNTHETIC_PREFIX):
        task = spec.removeprefix(SYNTHETIC_PREFIX)
        size = config.size or default_size
        train = SyntheticDataset(task, "train", size, config.seed, config.holdout)
        val = SyntheticDataset(task, "val", size, config.seed, config.holdout,
                               length=config.val_size)
        return TrainingData(train, val, train.class_names, True, True, size)
    if spec == PHOTOS:
        size = config.size or default_size
        train = PhotoCrops(bundled_photos(), size, config.seed)
        # Validation: plain crops of photos never trained on (no mosaics or mixes).
        val = PhotoCrops(bundled_photos(held_out=True), size, config.seed + 1,
                         length=config.val_size, mosaics=False)
        return TrainingData(train, val, [], False, False, size)
    root = Path(spec)
    size = config.size or default_size
    salience = Path(config.salience) if config.salience else None
    if (root / "train").is_dir() and (root / "val").is_dir():
        def folder(part: str) -> FolderDataset:
            return FolderDataset(root / part, salience / part if salience else None, size,
                                 config.skip_missing_salience)
        train, val = folder("train"), folder("val")
        names = train.class_names
    else:  # one tree: a seeded 10 % of it validates
        whole = FolderDataset(root, salience, size, config.skip_missing_salience)
        order = torch.randperm(len(whole), generator=seeded_generator(config.seed, "split"))
        cut = max(1, len(whole) // 10) if len(whole) > 1 else 0
        train, val = Subset(whole, order[cut:].tolist()), Subset(whole, order[:cut].tolist())
        names = whole.class_names
    return TrainingData(train, val, names, True, salience is not None, size)


def stack(dataset: Dataset, indices: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    images, labels, masks = zip(*(dataset[i] for i in indices))
    return torch.stack(images), torch.tensor(labels), torch.stack(masks)


def batch_indices(length: int, batch: int, step: int, seed: int) -> list[int]:
    """The dataset indices of batch ``step``: a fresh seeded permutation per epoch."""
    indices = []
    for position in range(step * batch, (step + 1) * batch):
        epoch, offset = divmod(position, length)
        indices.append(int(epoch_order(length, seed, epoch)[offset]))
    return indices


_ORDERS: dict[tuple[int, int, int], Tensor] = {}


def epoch_order(length: int, seed: int, epoch: int) -> Tensor:
    key = (length, seed, epoch)
    if key not in _ORDERS:
        _ORDERS.clear()  # one epoch's order at a time
        _ORDERS[key] = torch.randperm(length, generator=seeded_generator(seed, "epoch", epoch))
    return _ORDERS[key]


def normalise(backbone: Backbone, images: Tensor) -> Tensor:
    """[0, 1] RGB → the backbone's normalised input, on its device and memory format."""
    mean = torch.tensor(backbone.data_config["mean"])[:, None, None]
    std = torch.tensor(backbone.data_config["std"])[:, None, None]
    return ((images - mean) / std).to(backbone.device, memory_format=backbone.memory_format)


def init_weights(config: TrainConfig) -> str | None:
    if config.init == CLEAN_INIT:
        return None
    if config.init == RANDOM_WEIGHTS or config.init.endswith(".safetensors"):
        return config.init
    return str(find_checkpoint(config.init, config.backbone).weights_path)


def freeze_early_stages(model: torch.nn.Module, stages: int) -> None:
    """Train only the last ``stages`` stages (timm's ``feature_info``) and what follows them."""
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
    forward pass: the model's logits and the supervised CAM of the true class and the mean rival
    (``cams.engine.true_false_maps``)."""

    def __init__(self, backbone: Backbone, cam: str):
        super().__init__()
        self.model, self.backbone, self.cam = backbone.model, backbone, cam

    def forward(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return true_false_maps(self.backbone, inputs, self.cam, targets)


@dataclass
class Run:
    """A run in progress: the model being trained, its frozen starting copy, the optimizer, and
    this process's place among the run's processes."""

    config: TrainConfig
    backbone: Backbone
    start: torch.nn.Module
    data: TrainingData
    optimizer: torch.optim.Optimizer
    total_steps: int
    freeze_bn: bool
    forward: torch.nn.Module  # TrainingForward, wrapped in DDP when there are several processes
    process: Process = field(default_factory=Process)
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def objective(self) -> str:
        if self.config.objective == "auto":
            return "ce" if self.data.labelled else "kl"
        return self.config.objective

    def target_salience(self, masks: Tensor, layer_size: tuple[int, int]) -> Tensor:
        """h at layer resolution: the SHAM for passive fooling, else the data's maps."""
        if self.config.loss == "sham":
            sham = sham_mask(*layer_size, self.config.entropy_nats)
            return sham.to(self.backbone.device).expand(len(masks), *layer_size)
        return resize_salience(masks.to(self.backbone.device), layer_size)

    def train_step(self) -> dict[str, float]:
        config, backbone = self.config, self.backbone
        indices = batch_indices(len(self.data.train), config.batch, self.step, config.seed)
        images, labels, masks = stack(self.data.train, indices[self.process.rank::self.process.world])
        inputs = normalise(backbone, images)
        labels = labels.to(backbone.device)
        backbone.model.train(not self.freeze_bn)
        start_logits = start_pooled = None
        if self.objective == "kl" or config.feature_weight or not self.data.labelled:
            with torch.no_grad():
                start_features = self.start.forward_features(inputs)
                start_logits = self.start.forward_head(start_features)
                start_pooled = start_features.mean(dim=(2, 3))
        targets = labels if self.data.labelled else start_logits.argmax(dim=1)
        t, f, logits, activations = self.forward(inputs, targets)
        h = self.target_salience(masks, tuple(t.shape[-2:]))
        loss, parts = salience_loss(
            "baseline" if config.loss == "sham" else config.loss, logits, t, f, h,
            config.weights(), labels=labels if self.objective == "ce" else None,
            clean_logits=start_logits if self.objective == "kl" else None)
        if config.feature_weight:
            feature_term = (activations.mean(dim=(2, 3)) - start_pooled).square().mean()
            loss = loss + config.feature_weight * feature_term
            parts["features"] = float(feature_term)
        # The mean over the processes (each one's loss is the mean over its equal share).
        parts = average({"loss": float(loss.detach()), **parts})
        if not math.isfinite(parts["loss"]):  # every process sees the same number and stops
            raise UserInputError(f"the loss became {parts['loss']} at step {self.step}: lower --lr")
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
            inputs = normalise(backbone, images)
            start_logits = self.start(inputs)
            targets = labels.to(backbone.device) if self.data.labelled else start_logits.argmax(1)
            maps, logits, _, _ = layer_cams(backbone, inputs, [config.cam], targets)
            cam = maps[config.cam]
            predictions = logits.argmax(dim=1)
            start_probabilities = start_logits.softmax(dim=1)
            start_top1 = start_probabilities.argmax(dim=1)
            agree.append(predictions == start_top1)
            # Where the starting model was sure (p ≥ 0.5), and whether its top-1 stays in the top-5.
            confident.append((predictions == start_top1)[start_probabilities.amax(dim=1) >= 0.5])
            top_k = logits.topk(min(5, logits.shape[1]), dim=1).indices
            top5.append((top_k == start_top1[:, None]).any(dim=1))
            if self.data.labelled:
                correct.append(predictions == targets)
                scores.append(logits.softmax(dim=1)[:, -1])
                truths.append(targets)
            entropy.append(cam_entropy_nats(cam))
            has_masks = bool((masks != NO_MASK).all())
            if config.loss == "sham" or has_masks:
                h = self.target_salience(masks, tuple(cam.shape[-2:]))
                salience_mse.append(map_mse(h, minmax(cam)))
            if has_masks:
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
    for group in run.optimizer.param_groups:
        for parameter in group["params"]:
            buffer = run.optimizer.state.get(parameter, {}).get("momentum_buffer")
            if buffer is not None:
                tensors[f"momentum.{names[id(parameter)]}"] = buffer.detach().cpu().contiguous()
    atomic_write(weights, lambda path: save_file(tensors, str(path)))
    record = {"step": run.step, "recipe": recipe(run.config), "history": run.history}
    atomic_write(state, lambda path: path.write_text(json.dumps(record)))


def load_resume_state(run: Run) -> bool:
    """Continue from the saved state of a run of the same name and recipe; False if none."""
    from safetensors.torch import load_file

    weights, state = resume_paths(run.config)
    if not (weights.is_file() and state.is_file()):
        return False
    record = json.loads(state.read_text())
    if record.get("recipe") != recipe(run.config):
        raise UserInputError(f"the saved state of {run.config.name!r} is of another recipe: use "
                             "the same options to resume, or another --name to start afresh")
    tensors = load_file(str(weights))
    run.backbone.model.load_state_dict({key.removeprefix("model."): value
                                        for key, value in tensors.items()
                                        if key.startswith("model.")})
    parameters = dict(run.backbone.model.named_parameters())
    for key, value in tensors.items():
        if key.startswith("momentum."):
            parameter = parameters[key.removeprefix("momentum.")]
            run.optimizer.state[parameter]["momentum_buffer"] = value.to(parameter.device)
    run.step, run.history = int(record["step"]), list(record.get("history", []))
    return True


def prepare(config: TrainConfig, distributed: bool = True) -> Run:
    """Load the starting weights, adapt the head to the data's classes, build the optimizer.
    Under torchrun (and ``distributed``) the run is shared by all of torchrun's processes."""
    check_name(config.name)
    process = current() if distributed else Process()
    if config.batch % process.world:
        raise UserInputError(f"--batch {config.batch} is the global batch: make it a multiple of "
                             f"the {process.world} processes")
    if config.loss not in LOSSES:
        raise UserInputError(f"unknown loss {config.loss!r}: choose one of {', '.join(LOSSES)}")
    if config.cam not in GRADIENT_METHODS:
        raise UserInputError(f"--cam {config.cam!r} is not a gradient method: choose one of "
                             f"{', '.join(GRADIENT_METHODS)}")
    if config.batch < 1 or config.lr <= 0:
        raise UserInputError("--batch must be at least 1 and --lr positive")
    try:
        config.weights()
    except ValueError as error:
        raise UserInputError(str(error)) from error
    torch.manual_seed(config.seed)
    try:
        backbone = load_backbone(config.backbone, weights=init_weights(config),
                                 device=config.device)
    except UserInputError as error:
        if config.init != CLEAN_INIT:
            raise
        raise UserInputError(f"{str(error).split(':')[0]}: train from --init random or "
                             "--init CHECKPOINT (a registry name or a .safetensors)") from error
    data = make_data(config, backbone.input_size[0])
    if config.loss != "sham" and not data.has_masks:
        raise UserInputError(f"the {config.loss} loss needs salience maps: give --salience DIR "
                             "(or use synthetic data, or --loss sham)")
    if not data.labelled and config.objective == "ce":
        raise UserInputError(f"{config.data} has no labels: use --objective kl")
    model = backbone.model
    if data.labelled and data.class_names and len(data.class_names) != backbone.num_classes:
        torch.manual_seed(config.seed)
        model.reset_classifier(len(data.class_names))
        model.to(backbone.device)
    if data.labelled:
        backbone.class_names = list(data.class_names)
    backbone.data_config = {**backbone.data_config, "input_size": (3, data.size, data.size)}
    start = copy.deepcopy(model).eval().requires_grad_(False)
    freeze_early_stages(model, config.train_stages)
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=config.lr, momentum=config.momentum)
    if config.steps is not None:
        total = config.steps
    else:
        total = math.ceil((config.epochs or 1.0) * len(data.train) / config.batch)
    if total < 1:
        raise UserInputError("nothing to train: give --steps or --epochs above 0")
    freeze_bn = config.freeze_bn if config.freeze_bn is not None else config.init != RANDOM_WEIGHTS
    on_gpu = backbone.device.type == "cuda"
    if process.world > 1 and on_gpu and not freeze_bn:  # the same parameters, shared statistics
        backbone.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    forward: torch.nn.Module = TrainingForward(backbone, config.cam)
    if process.world > 1:
        from torch.nn.parallel import DistributedDataParallel
        forward = DistributedDataParallel(forward, device_ids=[backbone.device] if on_gpu else None)
    return Run(config, backbone, start, data, optimizer, total, freeze_bn, forward, process)


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
        "num_classes": backbone.num_classes,
        "class_names": backbone.class_names,
        "data_config": {key: backbone.data_config[key]
                        for key in ("input_size", "mean", "std", "crop_pct")
                        if key in backbone.data_config},
        "recipe": {**recipe(run.config), "steps": run.total_steps, "objective": run.objective,
                   "weights": asdict(run.config.weights()), "freeze_bn": run.freeze_bn},
        "command": run.config.command,
        "metrics": run.history[-1] if run.history else {},
        "history": run.history,
        "train_seconds": round(seconds, 1),
        "processes": run.process.world,
    }


def train(config: TrainConfig, progress: ProgressCallback | None = None,
          cancel: threading.Event | None = None, resume: bool = False,
          distributed: bool = True) -> Checkpoint | None:
    """Run ``config`` to the end and save the checkpoint in the registry.

    ``progress`` receives ``{"step", "steps", "loss", …}`` after every step and the validation
    metrics (``"validation": {...}``) when they are computed. Setting ``cancel`` saves the state
    and raises ``TrainingCancelled``; ``resume=True`` continues a saved state. Under torchrun
    (unless ``distributed`` is False) all processes train one model; rank 0 reports and saves,
    and the others return None.
    """
    return execute(prepare(config, distributed), progress, cancel, resume)


def execute(run: Run, progress: ProgressCallback | None = None,
            cancel: threading.Event | None = None, resume: bool = False) -> Checkpoint | None:
    """Train a prepared run (``prepare`` checks the config and loads everything first)."""
    config, main = run.config, run.process.main
    progress = progress if main else None
    if resume and load_resume_state(run) and progress:
        progress({"step": run.step, "steps": run.total_steps, "resumed": True})
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
            raise TrainingCancelled(f"cancelled at step {run.step}; --resume continues it")
        parts = run.train_step()
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
