"""What defines a training run: ``TrainConfig`` (each setting's default and help written once; the
command line and the app's Fine-tune tab build it) and named presets (recipes as data).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cam_studio.data.training import TrainingData
from cams.backbones import CLEAN_WEIGHTS, DEFAULT_BACKBONE, Backbone
from cams.checkpoints import check_name
from cams.engine import RIVALS, SUPERVISED_METHODS, check_rivals, gradient_method
from cams.errors import Fix, UserInputError
from fooling.objectives import OBJECTIVES, LossWeights, Objective, check_weights
from fooling.settings import setting
from fooling.sham import DEFAULT_ENTROPY_NATS

OBJECTIVE_KINDS = ("auto", "ce", "kl")
ATTACK_CLASSES = ("true", "random")
BLEND_DIRECTIONS = ("every", "own")  # the passive feature target: every class, or the image's
# The optimizers a run can use, by name: trainable parameters and the config → the optimizer.
OPTIMIZERS: dict[str, Any] = {
    "sgd": lambda parameters, config: torch.optim.SGD(parameters, lr=config.lr,
                                                      momentum=config.momentum),
    "adam": lambda parameters, config: torch.optim.Adam(parameters, lr=config.lr),
}


# Training steps when neither --steps nor --epochs is given: a quick first run.
QUICK_STEPS = 50


@dataclass
class TrainConfig:
    """Everything that defines a run (recorded in the checkpoint's metadata as its recipe)."""

    name: str = setting(help="checkpoint name in the registry")
    backbone: str = setting(DEFAULT_BACKBONE, "backbone")
    init: str = setting(CLEAN_WEIGHTS, "starting weights: clean (pretrained), random, a registry "
                                       "checkpoint name, or a .safetensors file")
    layer: str | None = setting(None, "target layer's module path (default: the backbone's, "
                                      "e.g. a transformer's last blocks.N.norm1)")
    loss: str = setting("sham", "objective", choices=tuple(OBJECTIVES))
    data: str = setting("synthetic:binary", "synthetic:binary, synthetic:7class, photos (the "
                                            "bundled photos, unlabelled), photos:wide (with "
                                            "OpenCV's samples) or an ImageFolder folder")
    salience: str | None = setting(None, "folder of salience maps parallel to --data (PNG/NPY)")
    skip_missing_salience: bool = setting(False, "leave out images without a salience map "
                                                 "instead of stopping")
    holdout: str | None = setting(None, "synthetic:binary: the attack type held out for the "
                                        "out-of-set test (default triangle)")
    steps: int | None = setting(None, f"training steps (default {QUICK_STEPS}: about a minute "
                                      "of Lite0 on a 2-core CPU; --epochs for whole epochs)",
                                group="length")
    epochs: float | None = setting(None, "training epochs instead of --steps", group="length")
    batch: int = setting(16, "global batch size", flag="--batch-size", aliases=("--batch",))
    size: int | None = setting(None, "input side in pixels (default: the backbone's)")
    optimizer: str = setting("sgd", "sgd (the papers', with --momentum) or adam",
                             choices=tuple(OPTIMIZERS))
    lr: float = setting(0.002, "learning rate")
    momentum: float = setting(0.9, "SGD momentum")
    seed: int = setting(0, "seed of the data order and of random weights")
    cam: str = setting("GradCAM", "the CAM the SHAM attack supervises (a map of the true class, "
                                  "e.g. MeanDiffGradCAM for an adaptive attack) and validation "
                                  "measures; the salience objectives supervise the class CAMs")
    rivals: str = setting("mean", "the false class f of the salience objectives beyond two "
                                  "classes: the mean rival, the strongest rival, or every rival "
                                  "(terms averaged)", choices=tuple(RIVALS))
    alpha: float | None = setting(None, "classification weight (default: the objective's)")
    beta: float | None = setting(None, "salience weight (default: the objective's)")
    gamma: float | None = setting(None, "third-term weight (perclass, contrast)")
    objective: str = setting("auto", "classification term: cross-entropy (to the labels; for "
                                     "unlabelled data to the starting model's top-1), or KL to "
                                     "the starting model (auto: KL when the data has no labels)",
                             choices=OBJECTIVE_KINDS)
    entropy_nats: float = setting(DEFAULT_ENTROPY_NATS, "SHAM entropy in nats")
    train_stages: int = setting(0, "train only the last N stages and the head (0 = all)")
    head_only: bool = setting(False, "train only the classifier after the target layer (the "
                                     "features stay the starting model's)")
    attack_class: str = setting("true", "the class whose CAM the sham attack supervises per "
                                        "image: true (the label, or the starting model's top-1) "
                                        "or random (any class, so every class is a target)",
                                choices=ATTACK_CLASSES)
    attack_classes: int | None = setting(None, "the sham attack on k classes per image: the "
                                               "GradCAMs of the image's own class and k − 1 "
                                               "others drawn each step (0 = every class; needs a "
                                               "global-average-pool → Linear head); default: "
                                               "one class, the --cam map")
    freeze_bn: bool | None = setting(None, "keep BatchNorm statistics (default unless --init "
                                           "random)", off_flag="--train-bn")
    feature_weight: float = setting(0.0, "weight of matching the starting model's pooled "
                                         "features (keeps predictions)")
    logit_weight: float = setting(0.0, "weight of matching the starting model's centred logits "
                                       "(squared difference per class, summed over classes: every "
                                       "class's score kept, blind to a shift shared by all)")
    target_weight: float = setting(0.0, "weight of the SHAM CAM target: the distance of the "
                                        "image's un-normalised class CAM to the starting "
                                        "model's redrawn as the SHAM at its own scale, its mean "
                                        "(the class's logit) kept; relative: 1 at the start")
    target_strength: float = setting(1.0, "the SHAM CAM target's SHAM, as a multiple of the "
                                          "starting class CAM's range")
    blend_weight: float = setting(0.0, "weight of the passive feature target: the distance of "
                                       "the layer's features to the starting model's blended "
                                       "with a SHAM-shaped copy of their own spatial mean, "
                                       "(1 − ρ)·A + ρ·mean(A)·SHAM/mean(SHAM), which keeps every "
                                       "channel's mean and so every logit; relative: 1 at the "
                                       "start")
    blend_strength: float = setting(0.7, "ρ of the passive feature target, in (0, 1]")
    blend_direction: str = setting("every", "the passive feature target for every class at "
                                            "once, or only along the image's own class's "
                                            "classifier row (its label, or the starting "
                                            "model's top-1; the other directions kept)",
                                   choices=BLEND_DIRECTIONS)
    steered: int = setting(0, "images steered towards each class in turn (training crops moved "
                              "by --steer-steps Adam steps on their pixels by the starting model; "
                              "made once, cached) to make half of every batch: the "
                              "prediction-keeping term then sees every class's boundary, not only "
                              "the photos' classes. Unlabelled photo data only")
    steer_steps: int = setting(6, "Adam steps (0.025 on pixels in [0, 1]) for each --steered image")
    val_size: int = setting(256, "validation images")
    val_every: int | None = setting(None, "validate every N steps (default: each epoch, and at "
                                          "least 5 times)")
    save_every: int = setting(50, "save a resumable state every N steps")
    half: bool = setting(False, "save the weights in float16")
    device: str | None = setting(None, "cpu, cuda, cuda:N (default: CUDA when present)")
    directory: str | None = setting(None, "registry folder to save into (default "
                                          "$CAMS_CHECKPOINTS or ./checkpoints)",
                                    flag="--registry", aliases=("--out",))
    command: str = field(default_factory=lambda: shlex.join([Path(sys.executable).name,
                                                             *sys.argv]))  # as launched

    def weights(self) -> LossWeights:
        """α, β, γ: the objective's defaults where not given."""
        default = objective_of(self).weights
        return check_weights(LossWeights(
            default.alpha if self.alpha is None else self.alpha,
            default.beta if self.beta is None else self.beta,
            default.gamma if self.gamma is None else self.gamma))


def objective_of(config: TrainConfig) -> Objective:
    """The objectives table's row for ``config.loss``, or a UserInputError."""
    if config.loss not in OBJECTIVES:
        raise UserInputError(f"unknown loss {config.loss!r}", Fix("loss", ", ".join(OBJECTIVES)))
    return OBJECTIVES[config.loss]


# --- Every check of a run's settings: those that need nothing loaded, then those that need the
# starting model and the data. ``fooling.train.prepare`` calls both, in that order.

def check_settings(config: TrainConfig, processes: int = 1) -> Objective:
    """The settings alone: name, batch (a multiple of the processes), learning rate, objective,
    supervised CAM, rivals, loss weights, attack class. Returns the objective's row."""
    check_name(config.name)
    if config.batch < 1 or config.batch % processes:
        raise UserInputError(f"batch size {config.batch} is the global batch",
                             Fix("batch", f"a positive multiple of the {processes} processes"))
    if config.lr <= 0:
        raise UserInputError(f"learning rate {config.lr} is not positive", Fix("lr", "e.g. 0.002"))
    objective = objective_of(config)
    try:
        gradient_method(config.cam)
    except UserInputError as error:
        raise error.with_fixes(Fix("cam", "one of " + ", ".join(SUPERVISED_METHODS))) from error
    try:
        config.weights()
    except ValueError as error:
        raise UserInputError(str(error), Fix("alpha", "≥ 0"), Fix("beta", "≥ 0")) from error
    if config.attack_class != "true" and objective.needs_maps:
        raise UserInputError(f"attack class {config.attack_class} applies to the sham attack: the "
                             f"{config.loss} loss supervises the true class's CAM",
                             Fix("attack_class", value="true"), Fix("loss", value="sham"))
    if config.attack_classes is not None and (config.loss != "sham" or config.cam != "GradCAM"
                                              or config.attack_classes < 0):
        raise UserInputError("attacking k classes at once is the sham attack on GradCAM",
                             Fix("loss", value="sham"), Fix("cam", value="GradCAM"),
                             Fix("attack_classes", "0 (every class) or more"))
    if config.steps is not None and config.steps < 1:
        raise UserInputError("nothing to train", Fix("steps", "above 0"))
    if config.target_weight < 0 or config.target_strength <= 0:
        raise UserInputError("the SHAM CAM target needs a weight ≥ 0 and a strength > 0",
                             Fix("target_weight", "≥ 0"), Fix("target_strength", "> 0"))
    if config.blend_weight < 0 or not 0 < config.blend_strength <= 1:
        raise UserInputError("the passive feature target needs a weight ≥ 0 and a strength in "
                             "(0, 1]", Fix("blend_weight", "≥ 0"), Fix("blend_strength", "0.7"))
    if config.steered < 0 or config.steer_steps < 1:
        raise UserInputError("steered images need a count ≥ 0 and at least one step",
                             Fix("steered", "1024"), Fix("steer_steps", "6"))
    return objective


def check_loaded(config: TrainConfig, objective: Objective, backbone: Backbone,
                 data: TrainingData) -> None:
    """What the starting model and the data allow: a trained (not constructed) model, salience
    maps where the objective needs them, labels where cross-entropy needs them, and every rival
    a map per image only for few classes."""
    if backbone.metadata.get("construction"):
        raise UserInputError(f"{config.init} is built by hand, not a trained model",
                             Fix("init", value=CLEAN_WEIGHTS), Fix("init", "a trained checkpoint"))
    if objective.needs_maps and not data.has_masks:
        raise UserInputError(f"the {config.loss} loss needs salience maps",
                             Fix("salience", "a folder of maps beside the data"),
                             Fix("data", "synthetic data"), Fix("loss", value="sham"))
    if config.attack_classes is not None and not backbone.linear_head:
        raise UserInputError(f"{backbone.name}'s head is not global-average-pool → Linear, where "
                             "every class's GradCAM is one product",
                             Fix("attack_classes", "left out (the --cam map of one class)"))
    if config.target_weight and not backbone.linear_head:
        raise UserInputError(f"{backbone.name}'s head is not global-average-pool → Linear, where "
                             "the SHAM CAM target keeps the class's logit",
                             Fix("target_weight", value="0"))
    if config.blend_weight and config.blend_direction == "own" and not backbone.linear_head:
        raise UserInputError(f"{backbone.name}'s head is not global-average-pool → Linear, whose "
                             "class rows the own-class feature target moves along",
                             Fix("blend_direction", value="every"))
    if config.steered and data.labelled:
        raise UserInputError("steered images are unlabelled: they mix only into unlabelled photo "
                             "crops", Fix("data", value="photos:wide"), Fix("steered", value="0"))
    classes = len(data.class_names) if data.labelled and data.class_names else backbone.num_classes
    check_rivals(config.rivals, classes)


# Recipes as data: ``python -m cam_studio train --preset NAME`` (options given beside it win).
PRESETS: dict[str, dict[str, Any]] = {
    # tiny_resnet from random weights on the synthetic domain: minutes on a CPU. The recipe of
    # the shipped synthetic checkpoints, the evaluation's training table, and the Fine-tune tab.
    "synthetic": {"backbone": "tiny_resnet", "init": "random", "data": "synthetic:binary",
                  "batch": 32, "lr": 0.05},
    # The DiffGradCAM paper's SHAM fine-tune (its §5 "Susceptibility test", as its ref. [8]):
    # cross-entropy to each image's label plus the SHAM MSE of that class's GradCAM, the whole
    # network trained, equal weights, SGD at 0.002. What differs here: the images are crops of
    # the bundled photos labelled by the clean model's top-1 (no labelled ImageNet offline), and
    # a run is hundreds of steps, not an epoch of 1.28 M images (give --steps).
    "paper-sham": {"backbone": "efficientnet_lite0", "loss": "sham", "data": "photos",
                   "objective": "ce", "attack_class": "true", "train_stages": 0,
                   "feature_weight": 0.0, "alpha": 0.5, "beta": 0.5, "lr": 0.002, "batch": 16,
                   "steps": 400, "val_size": 192},
    # The paper's attack made stronger and more passive for this CPU's few hundred steps (the
    # pilots on the validation photos, docs/results/coverage-pilots): KL to the clean model in
    # place of CE to its top-1 (which lost the predictions), Adam at 1e-4 in place of SGD (whose
    # 400 steps hardly move the classifier's mean row, the class-uniform direction), β = 2, the
    # pooled-feature term at 20, and OpenCV's sample photos added to the training photos.
    "sham-adam": {"backbone": "efficientnet_lite0", "loss": "sham", "data": "photos:wide",
                  "objective": "kl", "attack_class": "true", "train_stages": 0,
                  "optimizer": "adam", "lr": 0.0001, "alpha": 0.5, "beta": 2.0,
                  "feature_weight": 20.0, "batch": 16, "steps": 400, "val_size": 192},
    # The two shipped trained fools (chosen on the validation photos, docs/results/coverage-pilots
    # run7.sh): sham-adam for 600 steps, every class attacked at β 4, or the image's
    # class at β 8 with a four times heavier KL term.
    "sham-all-classes": {"backbone": "efficientnet_lite0", "loss": "sham", "data": "photos:wide",
                         "objective": "kl", "attack_class": "true", "attack_classes": 0,
                         "train_stages": 0, "optimizer": "adam", "lr": 0.0001, "alpha": 0.5,
                         "beta": 4.0, "feature_weight": 20.0, "batch": 16, "steps": 600,
                         "val_every": 600, "val_size": 64, "half": True},
    "sham-one-class": {"backbone": "efficientnet_lite0", "loss": "sham", "data": "photos:wide",
                       "objective": "kl", "attack_class": "true", "attack_classes": 1,
                       "train_stages": 0, "optimizer": "adam", "lr": 0.0001, "alpha": 2.0,
                       "beta": 8.0, "feature_weight": 20.0, "batch": 16, "steps": 600,
                       "val_every": 600, "val_size": 64, "half": True},
    # sham-efficientnet_lite0, shipped until 2026-12-01 (docs/results/sham-efficientnet_lite0.md;
    # it kept too few predictions to ship): a variant of
    # the paper's attack that keeps predictions by KL to the clean model, with a feature term,
    # β = 2, and only the last two stages trained.
    "lite0-sham": {"backbone": "efficientnet_lite0", "loss": "sham", "data": "photos",
                   "steps": 800, "batch": 16, "lr": 0.002, "beta": 2.0, "train_stages": 2,
                   "feature_weight": 1.0, "val_every": 100, "val_size": 192, "half": True},
}


def preset(recipe: str | None, /, **values: Any) -> TrainConfig:
    """A config from preset ``recipe`` (None: the defaults) with ``values`` on top."""
    if recipe is not None and recipe not in PRESETS:
        raise UserInputError(f"unknown preset {recipe!r}", Fix("preset", ", ".join(PRESETS)))
    return TrainConfig(**{**PRESETS.get(recipe, {}), **values})
