"""``python -m fooling``: SHAM masks, fine-tuning with salience objectives, the checkpoint registry.

    python -m fooling sham --size 7x7 [--entropy 3.35] [--png FILE]
    python -m fooling train --backbone NAME --loss sham --data photos --steps 300 --name NAME
    python -m fooling list
    python -m fooling check NAME [--crops 200] [--out docs/results]
    python -m fooling bench [--repeats 10] [--json FILE]

User mistakes print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cams.distributed import join, launch_command, leave
from cams.errors import UserInputError
from fooling.losses import LOSSES
from fooling.registry import checkpoint_dir, list_checkpoints
from fooling.sham import DEFAULT_ENTROPY_NATS, mask_entropy_nats, parse_size, sham_mask

EXIT_BAD_INPUT = 2


def run_sham(args: argparse.Namespace) -> int:
    try:
        height, width = parse_size(args.size)
        mask = sham_mask(height, width, args.entropy)
    except ValueError as error:
        raise UserInputError(str(error)) from error
    for row in mask.int().tolist():
        print(" ".join("█" if value else "·" for value in row))
    print(f"{height}×{width}: {int(mask.sum())} of {height * width} pixels on, entropy "
          f"{mask_entropy_nats(mask):.2f} nats (target {args.entropy})")
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

    from fooling.train import TrainConfig, TrainingCancelled, train

    values = {key: value for key, value in vars(args).items()
              if key in TrainConfig.__dataclass_fields__ and value is not None
              and key != "command"}  # argparse's sub-command name, not the command line
    values["device"] = join(values.get("device"))  # under torchrun: one process group, one GPU each
    config = TrainConfig(**values, command=launch_command(["-m", "fooling", *sys.argv[1:]]))
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

    try:
        entry = train(config, progress=report, resume=args.resume)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the last saved state (every {config.save_every} steps) resumes "
              "with --resume", file=sys.stderr)
        return 130
    except TrainingCancelled as error:
        print(f"\n{error}", file=sys.stderr)
        return 1
    finally:
        for bar in bars:
            bar.close()
        leave()
    if entry is not None:  # rank 0 saved it
        print(f"saved {entry.name}: {entry.weights_path} (+ {entry.metadata_path.name})")
    return 0


def run_check_command(args: argparse.Namespace) -> int:
    from fooling.check import report_markdown, run_check
    result = run_check(args.name, args.crops, args.seed, args.out, args.device)
    print(report_markdown(args.name, result["summary"],
                          f"python -m fooling check {args.name} --crops {args.crops}"))
    return 0 if all(result["summary"]["passed"].values()) else 1


def run_bench_command(args: argparse.Namespace) -> int:
    from fooling.bench import run_bench
    return run_bench(args.repeats, args.device, args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fooling", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    sham = commands.add_parser("sham", help="print a SHAM mask and its entropy")
    sham.add_argument("--size", default="7x7", help="layer resolution HEIGHTxWIDTH (default 7x7)")
    sham.add_argument("--entropy", type=float, default=DEFAULT_ENTROPY_NATS,
                      help=f"target entropy in nats (default {DEFAULT_ENTROPY_NATS})")
    sham.add_argument("--png", type=Path, help="also save the mask as a PNG")
    sham.set_defaults(run=run_sham)

    listing = commands.add_parser("list", help="list the checkpoint registry")
    listing.add_argument("--backbone", help="only this backbone's checkpoints")
    listing.set_defaults(run=run_list)

    train = commands.add_parser(
        "train", help="fine-tune with a salience objective (SHAM fooling or salience training)")
    train.add_argument("--name", required=True, help="checkpoint name in the registry")
    train.add_argument("--backbone", help="backbone (default efficientnet_lite0)")
    train.add_argument("--init", help="starting weights: clean (pretrained, default), random, a "
                                      "registry checkpoint name, or a .safetensors file")
    train.add_argument("--loss", choices=LOSSES, help="objective (default sham)")
    train.add_argument("--cam", help="the CAM the loss supervises (default GradCAM; any "
                                     "gradient method, e.g. MeanDiffGradCAM for an adaptive attack)")
    train.add_argument("--data", help="synthetic:binary, synthetic:7class, photos (the bundled "
                                      "photos, unlabelled) or an ImageFolder directory")
    train.add_argument("--salience", help="folder of salience maps parallel to --data (PNG/NPY)")
    train.add_argument("--skip-missing-salience", action="store_true",
                       help="leave out images without a salience map instead of stopping")
    train.add_argument("--holdout", help="synthetic:binary: the attack type held out for the "
                                         "out-of-set test (default triangle)")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int)
    length.add_argument("--epochs", type=float)
    train.add_argument("--batch", type=int)
    train.add_argument("--size", type=int, help="input side in pixels")
    train.add_argument("--lr", type=float, help="SGD learning rate (default 0.002)")
    train.add_argument("--momentum", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--alpha", type=float, help="classification weight (default 0.5 or 0.3)")
    train.add_argument("--beta", type=float, help="salience weight (default 0.5 or 0.3)")
    train.add_argument("--gamma", type=float, help="third-term weight (perclass, contrast)")
    train.add_argument("--objective", choices=("auto", "ce", "kl"),
                       help="classification term: cross-entropy, or KL to the starting model "
                            "(auto: KL when the data has no labels)")
    train.add_argument("--entropy-nats", type=float, help="SHAM entropy (default 3.35)")
    train.add_argument("--train-stages", type=int, help="train only the last N stages (0 = all)")
    bn = train.add_mutually_exclusive_group()
    bn.add_argument("--freeze-bn", dest="freeze_bn", action="store_const", const=True,
                    help="keep BatchNorm statistics (default unless --init random)")
    bn.add_argument("--train-bn", dest="freeze_bn", action="store_const", const=False)
    train.add_argument("--feature-weight", type=float,
                       help="weight of matching the starting model's pooled features (default 0)")
    train.add_argument("--val-size", type=int, help="validation images (default 256)")
    train.add_argument("--val-every", type=int, help="validate every N steps")
    train.add_argument("--save-every", type=int, help="save resumable state every N steps")
    train.add_argument("--half", action="store_true", help="save the weights in float16")
    train.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when present)")
    train.add_argument("--out", dest="directory", help="registry folder to save into (default "
                                                       "$CAMS_CHECKPOINTS or ./checkpoints)")
    train.add_argument("--resume", action="store_true",
                       help="continue the saved state of a run with this --name")
    train.set_defaults(run=run_train)

    check = commands.add_parser("check", help="measure a SHAM-fooled checkpoint against its "
                                               "clean model on held-out photo crops")
    check.add_argument("name", help="registry checkpoint name")
    check.add_argument("--crops", type=int, default=200)
    check.add_argument("--seed", type=int, default=1234)
    check.add_argument("--out", type=Path, help="write NAME.md and NAME.json here")
    check.add_argument("--device")
    check.set_defaults(run=run_check_command)

    bench = commands.add_parser("bench", help="time a SHAM training step against a plain one")
    bench.add_argument("--repeats", type=int, default=10)
    bench.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when present)")
    bench.add_argument("--json", type=Path, help="also write the numbers as JSON")
    bench.set_defaults(run=run_bench_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    raise SystemExit(main())
