"""The engine's commands: ``python -m cam_studio explain|methods|backbones``.

A bad image ends with one line on stderr and exit code 2 (no traceback); the other images of the
same run are still explained and written.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from cam_studio.commands.options import cli_words
from cam_studio.commands.runner import EXIT_BAD_INPUT
from cam_studio.data.examples import EXAMPLES, example_image
from cam_studio.tabs.comparison import compare_checkpoints
from cam_studio.tabs.report import image_sha256, report_html
from cams.backbones import (
    DEFAULT_BACKBONE,
    REGISTRY,
    Backbone,
    load_backbone,
    read_class_names,
    weights_available_offline,
    wrap,
)
from cams.backbones.wrap import built_model, built_model_name
from cams.checkpoints import unique_name
from cams.engine import explain, select_methods
from cams.errors import FALSE_CLASS, TARGET, UserInputError
from cams.images import load_image
from cams.methods import (
    MANY_PASS_KINDS,
    METHODS,
    RETARGETABLE,
    TARGETED_SEPARATOR,
    TARGETS,
    Kind,
    method_row,
    targeted_name,
)
from cams.metrics import baseline_similarity
from cams.randomise import parse_randomised
from cams.render import (
    COLORMAP,
    COLORMAPS,
    DIVERGING,
    SIGNED_STYLES,
    baseline_captions,
    compose_rows,
    signed_arrays,
)
from fooling.settings import comma_list

GRID_COLUMNS = 6  # overlays per row of the grid PNG


def add_commands(commands: argparse._SubParsersAction) -> None:
    """``explain``, ``methods`` and ``backbones``."""
    run = commands.add_parser("explain", help="write a labelled grid (PNG) and the maps (NPZ) "
                                              "for each image")
    run.add_argument("images", nargs="*", type=Path, help="image files")
    run.add_argument("--example", action="append", default=[], choices=list(EXAMPLES),
                     help="a bundled example photo (repeatable)")
    run.add_argument("--backbone", default=DEFAULT_BACKBONE,
                     help=f"a registered backbone (default {DEFAULT_BACKBONE}), any timm name, "
                          "hf-hub:OWNER/REPO or torchvision:NAME")
    run.add_argument("--weights", help="clean (default), random, a registry checkpoint name, or "
                                       "a .safetensors / state-dict file (any number of classes)")
    add_own_model_option(run)
    run.add_argument("--versus", metavar="WEIGHTS",
                     help="checkpoint B for --report (e.g. sham-one-class-efficientnet_lite0 or "
                          "randomised:classifier): the report compares --weights (A) with it")
    run.add_argument("--report", action="store_true",
                     help="also write NAME-report.html per image: one self-contained file of "
                          "the comparison (grid, verdict, table, predictions, versions, hashes) "
                          "that opens offline")
    add_model_options(run)
    run.add_argument("--target", help="class index or exact class name (default: top-1)")
    run.add_argument("--false-class", help="class index or name (default: strongest rival)")
    run.add_argument("--methods", default="default",
                     help="all, default (all but ScoreCAM) or a comma list of names")
    run.add_argument("--out", type=Path, default=Path("cams_out"),
                     help="output folder (a result already there is kept: the new one is "
                          "written as NAME-2, NAME-3, …)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace results of the same name in --out instead")
    run.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when present)")
    run.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    run.add_argument("--opacity", type=float, default=0.5, help="heatmap opacity in the grid")
    run.add_argument("--colormap", choices=list(COLORMAPS), default=COLORMAP,
                     help=f"colour map of the grid's maps (default {COLORMAP}; viridis and "
                          "cividis are colour-blind safe)")
    run.add_argument("--signed-maps", choices=SIGNED_STYLES, default="minmax",
                     help="draw TrueClassCAM, FalseClassCAM and DifferenceSalience min-max "
                          "normalised in jet (default), or signed in a diverging colormap "
                          "(blue < 0 = white < red); the NPZ keeps the min-max maps")
    run.set_defaults(run=run_explain)
    commands.add_parser("methods", help="list the CAM methods").set_defaults(run=run_methods)
    commands.add_parser("backbones", help="list the registered backbones and offline "
                                          "weights").set_defaults(run=run_backbones)


def add_own_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="MODULE:FUNCTION",
                        help="your own model: a function (in an importable module or a .py "
                             "file) that returns the nn.Module; needs --layer (imports and runs "
                             "that code: your machine only)")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """What a model brought from elsewhere may need: the layer, class names, preprocessing."""
    parser.add_argument("--layer", help="target layer's module path (default: the last block's "
                                        "norm1 for a transformer, the features for a CNN)")
    parser.add_argument("--class-names", type=Path, help="file of class names: one per line, "
                                                         "or a JSON list")
    parser.add_argument("--input-size", type=int, help="input side in pixels (default: the "
                                                       "model's config)")
    parser.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"),
                        help="normalisation mean (default: the model's config)")
    parser.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"),
                        help="normalisation standard deviation (default: the model's config)")


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """``load_backbone`` keywords from ``add_model_options``' options."""
    config = {"input_size": (3, args.input_size, args.input_size) if args.input_size else None,
              "mean": args.mean, "std": args.std}
    return {"layer": args.layer, "data_config": config,
            "class_names": read_class_names(args.class_names) if args.class_names else None}


def own_model(args: argparse.Namespace) -> Backbone:
    """``--model MODULE:FUNCTION``: the user's nn.Module, wrapped at ``--layer``."""
    if not args.layer:
        raise UserInputError("--model needs --layer: the module path the maps are read at "
                             "(e.g. layer4)")
    if getattr(args, "weights", None):
        raise UserInputError("--weights does not apply to --model",
                             "load the weights inside your function")
    names = getattr(args, "class_names", None)
    options = {"input_size": getattr(args, "input_size", None) or getattr(args, "size", None)
               or 224, "device": args.device,
               "class_names": read_class_names(names) if names else None}
    options.update({key: value for key in ("mean", "std")
                    if (value := getattr(args, key, None))})
    return wrap(built_model(args.model), args.layer, name=built_model_name(args.model), **options)


def parse_methods(text: str) -> str | list[str]:
    return text if text in ("all", "default") else comma_list(text)


@dataclass
class Job:
    stem: str
    image: Image.Image


def write_outputs(out: Path, stem: str, backbone, result, index: int, opacity: float,
                  signed: str = "minmax", colormap: str = COLORMAP) -> None:
    """``<stem>.png`` (labelled grid) and ``<stem>.npz`` (maps, input, logits, target)."""
    maps = {name: values[index].cpu().numpy().astype(np.float32)
            for name, values in result.maps.items()}
    inputs = result.inputs[index].cpu()
    target = int(result.targets[index])
    false_class = int(result.false_classes[index])
    np.savez_compressed(out / f"{stem}.npz", **maps, input=inputs.numpy().astype(np.float32),
                        logits=result.logits[index].cpu().numpy().astype(np.float32),
                        target=np.int64(target), false_class=np.int64(false_class))
    captions = baseline_captions({name: float(values[index]) for name, values
                                  in baseline_similarity(result.maps).items()})
    probabilities = result.probabilities[index]
    top1 = int(probabilities.argmax())
    title = (f"{stem} · {backbone.name} · predicted {backbone.class_label(top1)} "
             f"({float(probabilities[top1]):.1%})\nexplained: {backbone.class_label(target)}"
             f" · false class: {backbone.class_label(false_class)}")
    picture = backbone.to_display(inputs[None])[0].permute(1, 2, 0).numpy()
    names = list(maps)
    colormaps = {}
    if signed == "diverging":
        drawn = signed_arrays(result, index)
        maps, colormaps = {**maps, **drawn}, dict.fromkeys(drawn, DIVERGING)
    rows = [("input", {name: maps[name] for name in names[i:i + GRID_COLUMNS]}, captions)
            for i in range(0, len(names), GRID_COLUMNS)]
    Image.fromarray(compose_rows(picture, rows, title, opacity, colormaps, colormap)).save(
        out / f"{stem}.png")


def run_explain(args: argparse.Namespace) -> int:
    if not args.images and not args.example:
        raise UserInputError("no image given: pass image files or --example NAME "
                             f"({', '.join(EXAMPLES)})")
    if args.batch_size < 1:
        raise UserInputError("--batch-size must be at least 1")
    backbone = own_model(args) if args.model else load_backbone(
        args.backbone, weights=args.weights, device=args.device, **model_options(args))
    if args.versus and not args.report:
        raise UserInputError("--versus names checkpoint B of a report: add --report")
    versus = None
    if args.versus and parse_randomised(args.versus):  # the sanity check: any model re-drawn
        versus = backbone.randomised(*parse_randomised(args.versus))
    elif args.versus:
        if args.model:
            raise UserInputError("--versus with --model takes randomised:BLOCK only",
                                 "build model B in a function of its own and run it alone")
        versus = load_backbone(backbone.name, weights=args.versus, device=args.device,
                               **model_options(args))
    methods = select_methods(backbone, parse_methods(args.methods))
    target = backbone.class_index(args.target, TARGET)
    false_class = backbone.class_index(args.false_class, FALSE_CLASS)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserInputError(f"cannot create the output folder {args.out} ({error.strerror}): "
                             "pick another --out") from error

    failures = 0
    # Results already in --out are never replaced silently: a new one takes the next free name.
    taken = set() if args.overwrite else {path.stem for path in args.out.iterdir()
                                          if path.suffix in (".png", ".npz")}
    jobs = [Job(unique_name(name, taken), example_image(name)) for name in args.example]
    for path in args.images:
        try:
            jobs.append(Job(unique_name(path.stem, taken), load_image(path)))
        except UserInputError as error:
            print(f"error: {error.worded(cli_words)}", file=sys.stderr)
            failures += 1

    slow = (*MANY_PASS_KINDS, Kind.ABLATED_SCORES)  # a bar of its own
    scorecam_bar = tqdm(desc="masked / ablated passes", unit="pass", leave=False,
                        disable=not any(method_row(name).kind in slow for name in methods))

    def report(done: int, total: int) -> None:
        scorecam_bar.total = total
        scorecam_bar.n = done
        scorecam_bar.refresh()

    batches = [jobs[i:i + args.batch_size] for i in range(0, len(jobs), args.batch_size)]
    with tqdm(total=len(jobs), desc="images", unit="image", disable=len(jobs) < 2) as bar:
        for batch in batches:
            result = explain(backbone, [job.image for job in batch], methods=methods,
                             target=target, false_class=false_class, progress=report)
            for index, job in enumerate(batch):
                bar.update(1)
                written = f"{args.out / job.stem}.png, .npz"
                try:
                    write_outputs(args.out, job.stem, backbone, result, index, args.opacity,
                                  args.signed_maps, args.colormap)
                    if args.report:
                        written += ", " + write_report(args, job, backbone, versus, methods,
                                                       target, false_class).name
                except OSError as error:
                    print(f"error: cannot write {args.out / job.stem} ({error.strerror}): "
                          "check the --out folder's permissions and free space", file=sys.stderr)
                    failures += 1
                    continue
                label = backbone.class_label(int(result.logits[index].argmax()))
                tqdm.write(f"{job.stem}: {label} → {written}")
    scorecam_bar.close()
    return EXIT_BAD_INPUT if failures else 0


def write_report(args: argparse.Namespace, job: Job, backbone, versus, methods: list[str],
                 target: int | None, false_class: int | None) -> Path:
    """``STEM-report.html``: the image's comparison of A (and B, ``--versus``) as the page's
    downloads write it (``cam_studio.tabs.report``)."""
    backbones = [backbone] + ([versus] if versus is not None else [])
    labels = [f"A: {args.weights or 'clean'}"] + ([f"B: {args.versus}"] if versus else [])
    comparison = compare_checkpoints(backbones, labels, job.image, methods, target, false_class)
    grid = comparison.grid(args.opacity, signed=args.signed_maps, colormap=args.colormap)
    path = args.out / f"{job.stem}-report.html"
    path.write_text(report_html(comparison, grid, image_sha256(job.image), job.stem),
                    encoding="utf-8")
    return path


def run_methods(_args: argparse.Namespace | None = None) -> int:
    width = max(len(name) for name in METHODS)
    for name, method in METHODS.items():
        default = "" if method.default else "  (opt-in: --methods all or by name)"
        print(f"{name:<{width}}  {method.summary}{default}")
    print(f"\nAny of {', '.join(RETARGETABLE)} also explains another target, named "
          f"'METHOD{TARGETED_SEPARATOR}TARGET' (TARGET: {', '.join(TARGETS)}), e.g. "
          f"--methods '{targeted_name('LayerCAM', 'MeanDiff')}'.")
    return 0


def run_backbones(_args: argparse.Namespace | None = None) -> int:
    width = max(len(name) for name in REGISTRY)
    for name, spec in REGISTRY.items():
        offline = "weights offline" if weights_available_offline(name) else "no weights offline"
        print(f"{name:<{width}}  {offline:<18}  {spec.summary}")
    print("Also by name: any timm CNN or vision transformer, hf-hub:OWNER/REPO (a timm model on "
          "the Hugging Face hub) and torchvision:NAME, with their hub weights when online or "
          "--weights FILE (.safetensors or a state dict, any number of classes).")
    return 0
