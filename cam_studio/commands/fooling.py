"""Fooling's commands: SHAM masks, fine-tuning with salience objectives, the checkpoint registry,
the constructed fool and the fooling check.

    python -m cam_studio sham --size 7x7 [--entropy-nats 3.35] [--png FILE]
    python -m cam_studio train --name NAME [--preset synthetic] --loss sham --data photos --steps 300
    python -m cam_studio list
    python -m cam_studio construct NAME [--backbone efficientnet_lite0] [--strength 3]
    python -m cam_studio check NAME [--crops 200] [--out docs/results]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cam_studio.commands.explain import add_own_model_option, own_model
from cam_studio.commands.options import add_options, cli_words, given_values
from cam_studio.data.distributed import join, launch_command, leave
from cam_studio.data.photos import PHOTO_SETS
from cams.backbones import DEFAULT_BACKBONE
from cams.checkpoints import checkpoint_dir, list_checkpoints
from cams.errors import UserInputError
from cams.metrics import cam_entropy_nats
from fooling.config import PRESETS, TrainConfig, preset
from fooling.sham import DEFAULT_ENTROPY_NATS, parse_size, sham_mask


def run_sham(args: argparse.Namespace) -> int:
    try:
        height, width = parse_size(args.size)
        mask = sham_mask(height, width, args.entropy_nats)
    except ValueError as error:
        raise UserInputError(str(error)) from error
    for row in mask.int().tolist():
        print(" ".join("█" if value else "·" for value in row))
    print(f"{height}×{width}: {int(mask.sum())} of {height * width} pixels on, entropy "
          f"{float(cam_entropy_nats(mask[None].double())[0]):.2f} nats (target {args.entropy_nats})")
    if args.png:
        from PIL import Image
        scale = max(1, 256 // max(height, width))
        picture = Image.fromarray((mask.numpy() * 255).astype("uint8"))
        picture.resize((width * scale, height * scale), Image.NEAREST).save(args.png)
        print(f"wrote {args.png}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    entries, problems = list_checkpoints(args.backbone)
    if not entries:
        print(f"no checkpoints in {checkpoint_dir()} (nor shipped ones)")
    for entry in entries:
        metrics = entry.metadata.get("metrics", {})
        shown = ", ".join(f"{key} {value:.3g}" for key, value in metrics.items()
                          if key not in ("step", "images") and isinstance(value, float))
        print(f"{entry.name:28} {entry.backbone:20} {entry.label.removeprefix(entry.name)} "
              f"{shown}  [{entry.weights_path}]")
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from fooling.train import TrainingCancelled, train

    values = given_values(TrainConfig, args)
    values["device"] = join(values.get("device"))  # under torchrun: one process group, one GPU each
    config = preset(args.preset, **values,
                    command=launch_command(["-m", "cam_studio", *sys.argv[1:]]))
    bars: list[tqdm] = []  # made at the first event, so that set-up errors print alone

    def report(event: dict) -> None:
        if not bars:
            bars.append(tqdm(total=event["steps"], unit="step", dynamic_ncols=True))
        bar = bars[0]
        bar.total = event["steps"]
        bar.n = event["step"]
        if "loss" in event:
            bar.set_postfix(loss=f"{event['loss']:.4f}")
        if "validation" in event:
            shown = {key: round(value, 4) for key, value in event["validation"].items()
                     if key not in ("step", "images")}
            bar.write(f"step {event['step']}: {shown}")
        bar.refresh()

    backbone = own_model(args) if args.model else None
    try:
        entry = train(config, progress=report, resume=args.resume, backbone=backbone)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the last saved state (every {config.save_every} steps) resumes "
              "with --resume", file=sys.stderr)
        return 130
    except TrainingCancelled as error:
        print(f"\n{error.worded(cli_words)}", file=sys.stderr)
        return 1
    finally:
        for bar in bars:
            bar.close()
        leave()
    if entry is not None:  # rank 0 saved it
        print(f"saved {entry.name}: {entry.weights_path} (+ {entry.metadata_path.name})")
    return 0


def run_construct(args: argparse.Namespace) -> int:
    from fooling.constructed import construct_sham
    entry = construct_sham(args.name, args.backbone, args.strength, args.entropy_nats, args.registry,
                           launch_command(["-m", "cam_studio", *sys.argv[1:]]))
    print(f"saved {entry.name}: {entry.weights_path} (+ {entry.metadata_path.name}); scale "
          f"{entry.metadata['construction']['scale']:.4g}")
    return 0


def run_check_command(args: argparse.Namespace) -> int:
    from cam_studio.evaluation.check import report_markdown, run_check
    result = run_check(args.name, args.crops, args.seed, args.out, args.device, args.photos)
    print(report_markdown(args.name, result["summary"], f"python -m cam_studio check {args.name} "
                          f"--crops {args.crops} --photos {args.photos}", args.photos))
    return 0 if all(result["summary"]["passed"].values()) else 1


def add_commands(commands: argparse._SubParsersAction) -> None:
    """``sham``, ``list``, ``train`` and ``check``."""
    sham = commands.add_parser("sham", help="print a SHAM mask and its entropy")
    sham.add_argument("--size", default="7x7", help="layer resolution HEIGHTxWIDTH (default 7x7)")
    sham.add_argument("--entropy-nats", type=float, default=DEFAULT_ENTROPY_NATS,
                      help=f"target entropy in nats (default {DEFAULT_ENTROPY_NATS})")
    sham.add_argument("--entropy", type=float, dest="entropy_nats", default=argparse.SUPPRESS,
                      help=argparse.SUPPRESS)  # its older name
    sham.add_argument("--png", type=Path, help="also save the mask as a PNG")
    sham.set_defaults(run=run_sham)

    listing = commands.add_parser("list", help="list the checkpoint registry")
    listing.add_argument("--backbone", help="only this backbone's checkpoints")
    listing.set_defaults(run=run_list)

    train = commands.add_parser(
        "train", help="fine-tune with a salience objective (SHAM fooling or salience training)")
    train.add_argument("--preset", choices=sorted(PRESETS),
                       help="start from a named recipe (fooling/config.py); options given "
                            "beside it win")
    add_options(train, TrainConfig)
    own = train.add_argument_group("your own model (instead of --backbone and --init; the "
                                   "checkpoint holds its fine-tuned weights)")
    add_own_model_option(own)
    own.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"),
                     help="its normalisation mean (default ImageNet's)")
    own.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"),
                     help="its normalisation standard deviation (default ImageNet's)")
    train.add_argument("--resume", action="store_true",
                       help="continue the saved state of a run with this --name")
    train.set_defaults(run=run_train)

    construct = commands.add_parser(
        "construct", help="build a passive fool by hand: the clean model plus a constant SHAM "
                          "channel every class weighs alike (DiffGradCAM sees through it)")
    construct.add_argument("name", help="checkpoint name in the registry")
    construct.add_argument("--backbone", default=DEFAULT_BACKBONE,
                           help=f"a backbone with a GAP → Linear head (default {DEFAULT_BACKBONE})")
    construct.add_argument("--strength", type=float, default=3.0,
                           help="the SHAM channel's size in units of the clean CAM's 99th "
                                "percentile (default 3)")
    construct.add_argument("--entropy-nats", type=float, default=DEFAULT_ENTROPY_NATS,
                           help=f"SHAM entropy (default {DEFAULT_ENTROPY_NATS})")
    construct.add_argument("--registry", help="registry folder to save into (default "
                                              "$CAMS_CHECKPOINTS or ./checkpoints)")
    construct.add_argument("--out", dest="registry", default=argparse.SUPPRESS,
                           help=argparse.SUPPRESS)  # its older name
    construct.set_defaults(run=run_construct)

    check = commands.add_parser("check", help="measure a SHAM-fooled checkpoint against its "
                                               "clean model on held-out photo crops")
    check.add_argument("name", help="registry checkpoint name")
    check.add_argument("--crops", type=int, default=200)
    check.add_argument("--seed", type=int, default=1234)
    check.add_argument("--photos", choices=PHOTO_SETS, default="test",
                       help="test (Gradio's photos, never trained or tuned on; default), "
                            "validation (the photos recipes are chosen on) or train")
    check.add_argument("--out", type=Path, help="write NAME.md and NAME.json here")
    check.add_argument("--device")
    check.set_defaults(run=run_check_command)
