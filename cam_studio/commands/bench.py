"""``python -m cam_studio bench``: the engine against grad-cam, and with one flag instead the app,
the evaluation, a SHAM training step, 1 vs N processes. Their numbers go to BENCHMARKS.md with
the machine they ran on."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cams.backbones import DEFAULT_BACKBONE, resolve_device
from cams.errors import UserInputError
from fooling.settings import comma_list


def add_commands(commands: argparse._SubParsersAction) -> None:
    """``bench``."""
    bench = commands.add_parser("bench", help="time the engine against grad-cam (and the app, "
                                              "the evaluation, 1 vs N processes)")
    # The defaults finish in about a minute on a 2-core CPU; BENCHMARKS.md's run was
    # --backbones efficientnet_lite0,resnet50 --batch-sizes 1,32 --repeats 15 --scorecam.
    bench.add_argument("--backbones", type=comma_list, default=[DEFAULT_BACKBONE],
                       help=f"comma list (default {DEFAULT_BACKBONE}); --evaluate-memory "
                            "takes a registry checkpoint too")
    bench.add_argument("--batch-sizes", type=comma_list, default=["1", "8"],
                       help="comma list (default 1,8)")
    bench.add_argument("--repeats", type=int, help="timed repeats (default 3; 10 with --training)")
    bench.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when present)")
    bench.add_argument("--scorecam", action="store_true",
                       help="also time ScoreCAM (minutes on a CPU: one forward pass per channel)")
    what = bench.add_mutually_exclusive_group()
    what.add_argument("--app", action="store_true",
                      help="time the app's explain endpoint through gradio_client instead")
    what.add_argument("--classroom", type=int, metavar="N",
                      help="N clients at once, 2 comparisons each (A clean vs B the shipped SHAM "
                           "Lite0), the same example for all and then a distinct image per "
                           "request: latency, errors, bytes per comparison, server memory")
    what.add_argument("--disk", type=int, metavar="N",
                      help="N comparisons of distinct images one after another (downloads for "
                           "every tenth): the app's temporary disk after each")
    what.add_argument("--uploads", type=int, metavar="N",
                      help="N uploads of 8 MB as fast as one client sends them, no comparison: "
                           "the app's temporary disk after each, and the uploads refused")
    what.add_argument("--checkpoints", type=int, metavar="N",
                      help="N distinct uploaded checkpoints (Lite0, a 40,000-class head: 104 MB "
                           "each), one comparison each: the server's memory after each")
    what.add_argument("--estimates", action="store_true",
                      help="the page's long jobs (faithfulness, the default evaluation, the "
                           "default fine-tune): its 'about … left' against the real time left")
    what.add_argument("--evaluate", action="store_true",
                      help="time the evaluation's similarity table against plain inference")
    what.add_argument("--evaluate-memory", type=int, metavar="N",
                      help="resident memory of the similarity table over N synthetic images")
    what.add_argument("--multipass", action="store_true",
                      help="time the anchors' maps of more than one pass (SmoothGradCAM++, SESS, "
                           "RefineCAM, SS-CAM, LeGrad) beside grad-cam's and torchcam's")
    what.add_argument("--training", action="store_true",
                      help="time a SHAM training step against a plain one instead")
    what.add_argument("--scaling", type=int, metavar="N",
                      help="time evaluation and training with 1 and with N torchrun processes")
    bench.add_argument("--json", type=Path, help="also write the results as JSON here")
    bench.add_argument("--out", type=Path, dest="json", default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)  # its older name
    bench.set_defaults(run=run_engine_bench)


def run_engine_bench(args: argparse.Namespace) -> int:
    try:
        batch_sizes = [int(size) for size in args.batch_sizes]
    except ValueError as error:
        raise UserInputError(f"--batch-sizes {','.join(args.batch_sizes)!r}: give integers like "
                             "1,32") from error
    if args.repeats is None:
        args.repeats = 10 if args.training else 3
    if not args.backbones or min(batch_sizes) < 1 or args.repeats < 1:
        raise UserInputError("bench needs at least one backbone, batch sizes ≥ 1 and --repeats ≥ 1")
    name = args.backbones[0]
    if args.training:
        from cam_studio.benchmarks.training import run_bench
        return run_bench(args.repeats, args.device, args.json)
    if args.app:
        from cam_studio.benchmarks.app import bench_app
        result = bench_app()
    elif args.classroom:
        from cam_studio.benchmarks.app import bench_classroom
        result = {"same_example": bench_classroom(args.classroom),
                  "distinct_images": bench_classroom(args.classroom, distinct=True)}
    elif args.estimates:
        from cam_studio.benchmarks.estimates import bench_estimates
        result = bench_estimates()
    elif args.disk:
        from cam_studio.benchmarks.app import bench_disk
        result = bench_disk(args.disk)
    elif args.uploads:
        from cam_studio.benchmarks.app import bench_uploads
        result = bench_uploads(args.uploads)
    elif args.checkpoints:
        from cam_studio.benchmarks.app import bench_checkpoints
        result = bench_checkpoints(args.checkpoints)
    elif args.scaling:
        from cam_studio.benchmarks.scaling import scaling
        result = scaling(args.scaling)
    elif args.multipass:
        from cam_studio.benchmarks.multipass import bench_multipass
        result = bench_multipass(name, resolve_device(args.device), args.repeats)
    elif args.evaluate_memory:
        from cam_studio.benchmarks.evaluation import similarity_memory
        result = similarity_memory(f"synthetic:binary:{args.evaluate_memory}", name,
                                   device=args.device)
    elif args.evaluate:
        from cam_studio.benchmarks.evaluation import similarity_throughput
        result = similarity_throughput(backbone_name=name, device=args.device)
    else:
        from cam_studio.benchmarks.engine import markdown, measure
        result = measure(args.backbones, batch_sizes, args.repeats, resolve_device(args.device),
                         scorecam=args.scorecam)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if "panel" in result:
        print(markdown(result))
    else:
        print(json.dumps(result, indent=2))
    return 0
