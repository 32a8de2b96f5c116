"""``python -m cams bench``: the engine's speed and memory against plain inference and grad-cam.

Per backbone and batch size: one inference forward pass; our full gradient panel (every map but
ScoreCAM, one call of ``explain``); the same 11 maps with grad-cam, one method at a time. At batch
1: ScoreCAM ours vs grad-cam's (time, peak memory, agreement), and the peak RSS of one explanation
of a 224 px photo. Timings interleave the forward pass and the panel so that drift in the
machine's speed hits both alike; each time is a median, and the ratio is the median of the
ratios of the pairs. Memory figures come from fresh child
processes (VmHWM), so they include Python, torch and the model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from cams.backbones import load_backbone, weights_available_offline
from cams.engine import DEFAULT_METHODS, explain
from cams.errors import UserInputError
from cams.images import example_image


def machine_description(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"CPU, {torch.get_num_threads()} torch threads")
    return (f"{cpu}; {os.cpu_count()} cores; {where}; torch {torch.__version__}; "
            f"Python {platform.python_version()}")


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function: Callable[[], object], device: torch.device) -> float:
    synchronise(device)
    start = time.perf_counter()
    function()
    synchronise(device)
    return (time.perf_counter() - start) * 1000


def weights_for(name: str) -> str | None:
    """Real weights where they are available offline, else random ones (timing is the same;
    seeded, so that every process of one benchmark holds the same random model)."""
    torch.manual_seed(0)
    return None if weights_available_offline(name) else "random"


def grad_cam_panel(backbone, inputs, targets: list[int]) -> None:
    from cams.reference import reference_classes, reference_map
    for method in reference_classes():
        reference_map(backbone, inputs, method, targets)


def bench_panel(name: str, batch_size: int, repeats: int, device: torch.device) -> dict:
    weights = weights_for(name)
    backbone = load_backbone(name, weights=weights, device=device)
    photo = backbone.preprocess(example_image("chelsea"))
    inputs = photo.expand(batch_size, -1, -1, -1).contiguous().to(
        device, memory_format=backbone.memory_format)

    def forward() -> None:
        with torch.inference_mode():
            backbone.model(inputs)

    def panel() -> None:
        explain(backbone, inputs)

    forward(), panel()  # warm-up
    forward_ms, panel_ms = [], []
    pairs = repeats * (4 if batch_size == 1 else 1)  # short runs are noisier: take more
    for _ in range(pairs):
        forward_ms.append(timed(forward, device))
        panel_ms.append(timed(panel, device))
    targets = explain(backbone, inputs[:1], methods=["GradCAM"]).targets.tolist() * batch_size
    grad_cam_repeats = 3 if batch_size == 1 else 1
    grad_cam_ms = [timed(lambda: grad_cam_panel(backbone, inputs, targets), device)
                   for _ in range(grad_cam_repeats)]
    forward_median, panel_median = statistics.median(forward_ms), statistics.median(panel_ms)
    grad_cam_median = statistics.median(grad_cam_ms)
    return {
        "backbone": name, "weights": "pretrained" if weights is None else "random init",
        "batch": batch_size, "maps_in_panel": len(explain(backbone, inputs[:1]).maps),
        "forward_ms": forward_median, "panel_ms": panel_median,
        # The median of per-pair ratios: each panel is compared with the forward pass run just
        # before it, so slow phases of a shared machine cancel out.
        "panel_over_forward": statistics.median(p / f for p, f in zip(panel_ms, forward_ms)),
        "grad_cam_11_maps_ms": grad_cam_median,
        "speedup_vs_grad_cam": grad_cam_median / panel_median,
        "repeats": pairs, "grad_cam_repeats": grad_cam_repeats,
    }


def child(task: str, name: str, device: str, output: str | None = None) -> dict:
    """Run one measured job in a fresh process and return what it reports (JSON on stdout)."""
    command = [sys.executable, "-m", "cams.bench", task, name, device] + ([output] if output else [])
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child {task} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def status_mb(field: str, pid: int | str = "self") -> float:
    """A memory line of ``/proc/PID/status`` (``VmRSS``: resident now, ``VmHWM``: peak) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise OSError(f"/proc/{pid}/status has no {field}")


def peak_rss_mb() -> float:
    """This process's peak resident set. VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts
    from its parent's resident size at fork, which would charge the benchmark's own memory to it."""
    try:
        return status_mb("VmHWM")
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_main(task: str, name: str, device_name: str, output: str | None = None) -> None:
    """Inside the child: one ScoreCAM (ours or grad-cam's) or one panel, then its peak RSS."""
    device = torch.device(device_name)
    backbone = load_backbone(name, weights=weights_for(name), device=device)
    inputs = backbone.preprocess(example_image("chelsea")).to(device)
    report: dict = {}
    if task == "panel":
        elapsed = timed(lambda: explain(backbone, [example_image("chelsea")]), device)
        report["ms"] = elapsed
    elif task == "scorecam-ours":
        calls: list[tuple[int, int]] = []
        result: dict = {}
        report["ms"] = timed(lambda: result.update(explain(
            backbone, inputs, methods=["ScoreCAM"],
            progress=lambda done, total: calls.append((done, total))).maps), device)
        report["masked_forwards"] = calls[-1][1]
        np.save(output, result["ScoreCAM"].cpu().numpy())
    elif task == "scorecam-grad-cam":
        from cams.reference import reference_map
        target = explain(backbone, inputs, methods=["GradCAM"]).targets.tolist()
        result_map: list[np.ndarray] = []
        report["ms"] = timed(lambda: result_map.append(
            reference_map(backbone, inputs, "ScoreCAM", target)), device)
        report["masked_forwards"] = backbone.feature_shape[0]
        np.save(output, result_map[0])
    report["peak_rss_mb"] = peak_rss_mb()
    if device.type == "cuda":
        report["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    print(json.dumps(report))


def bench_scorecam(name: str, device: torch.device) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        ours_file, theirs_file = f"{folder}/ours.npy", f"{folder}/theirs.npy"
        ours = child("scorecam-ours", name, str(device), ours_file)
        theirs = child("scorecam-grad-cam", name, str(device), theirs_file)
        difference = float(np.abs(np.load(ours_file) - np.load(theirs_file)).max())
    return {"backbone": name, "ours_ms": ours["ms"], "grad_cam_ms": theirs["ms"],
            "speedup": theirs["ms"] / ours["ms"], "ours_masked_forwards": ours["masked_forwards"],
            "grad_cam_masked_forwards": theirs["masked_forwards"],
            "ours_peak_rss_mb": ours["peak_rss_mb"], "grad_cam_peak_rss_mb": theirs["peak_rss_mb"],
            "max_abs_difference": difference}


def markdown(results: dict) -> str:
    lines = [f"Machine: {results['machine']}", "",
             "| backbone | weights | batch | maps | forward (ms) | panel (ms) | panel / forward "
             "| grad-cam, 11 maps (ms) | speed-up vs grad-cam |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in results["panel"]:
        lines.append(
            f"| {row['backbone']} | {row['weights']} | {row['batch']} | {row['maps_in_panel']} | "
            f"{row['forward_ms']:.1f} | {row['panel_ms']:.1f} | {row['panel_over_forward']:.2f}× | "
            f"{row['grad_cam_11_maps_ms']:.0f} | {row['speedup_vs_grad_cam']:.0f}× |")
    if results["scorecam"]:
        lines += ["", "| ScoreCAM, batch 1 | ours (ms) | grad-cam (ms) | speed-up | masked forwards "
                      "ours / grad-cam | peak RSS ours / grad-cam (MB) | max abs difference |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for row in results["scorecam"]:
            lines.append(
                f"| {row['backbone']} | {row['ours_ms']:.0f} | {row['grad_cam_ms']:.0f} | "
                f"{row['speedup']:.2f}× | {row['ours_masked_forwards']} / "
                f"{row['grad_cam_masked_forwards']} | {row['ours_peak_rss_mb']:.0f} / "
                f"{row['grad_cam_peak_rss_mb']:.0f} | {row['max_abs_difference']:.1e} |")
    memory = results["memory"]
    lines += ["", f"Peak RSS of one explanation (every map but ScoreCAM) of a 224 px photo on "
                  f"{memory['backbone']}, fresh process: {memory['peak_rss_mb']:.0f} MB."]
    return "\n".join(lines)


def run_bench(args: argparse.Namespace) -> int:
    from cams.backbones import resolve_device
    device = resolve_device(args.device)
    names = [name.strip() for name in args.backbones.split(",") if name.strip()]
    try:
        batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    except ValueError as error:
        raise UserInputError(f"--batch-sizes {args.batch_sizes!r}: give integers like 1,32") from error
    if not names or min(batch_sizes) < 1 or args.repeats < 1:
        raise UserInputError("bench needs at least one backbone, batch sizes ≥ 1 and --repeats ≥ 1")
    if args.app:
        row = bench_app()
        print(json.dumps(row, indent=2))
        return 0
    if args.scaling or args.evaluate or args.evaluate_memory:
        from evaluation.bench import similarity_memory, similarity_throughput
        from evaluation.scaling import scaling
        if args.scaling:
            row = scaling(args.scaling)
        elif args.evaluate_memory:
            row = similarity_memory(f"synthetic:binary:{args.evaluate_memory}", names[0],
                                    device=args.device)
        else:
            row = similarity_throughput(backbone_name=names[0], device=args.device)
        print(json.dumps(row, indent=2))
        if args.out:
            args.out.write_text(json.dumps(row, indent=2))
        return 0
    results: dict = {"machine": machine_description(device), "panel": [], "scorecam": []}
    for name in names:
        for batch_size in batch_sizes:
            row = bench_panel(name, batch_size, args.repeats, device)
            print(json.dumps(row), file=sys.stderr)
            results["panel"].append(row)
        if not args.skip_scorecam:
            row = bench_scorecam(name, device)
            print(json.dumps(row), file=sys.stderr)
            results["scorecam"].append(row)
    memory = child("panel", names[0], str(device))
    results["memory"] = {"backbone": names[0], **memory}
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    child_main(*sys.argv[1:])


def bench_app(requests: int = 10) -> dict:
    """The app end to end: start ``app.py`` on a free port, time ``explain`` requests through
    ``gradio_client`` (A and B set, every gradient method, default backbone, 224 px), then read
    the server's resident memory after it has loaded two backbones."""
    import socket

    from gradio_client import Client
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=root,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "CAMS_OFFLINE": "1"})
    try:
        deadline = time.time() + 120
        while True:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(1)

        def explain_request(backbone: str = "efficientnet_lite0") -> float:
            start = time.perf_counter()
            client.predict(None, "chelsea", backbone, "clean", None, "clean", None, "", "",
                           [m for m in DEFAULT_METHODS], 0.5, api_name="/explain")
            return (time.perf_counter() - start) * 1000

        explain_request()  # warm-up: loads the backbone
        latencies = [explain_request() for _ in range(requests)]
        explain_request("efficientnet_lite1")  # a second backbone in the cache
        rss_mb = status_mb("VmRSS", server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"requests": requests, "median_ms": statistics.median(latencies),
            "max_ms": max(latencies), "rss_after_two_backbones_mb": rss_mb}
