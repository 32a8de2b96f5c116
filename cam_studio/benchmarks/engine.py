"""``python -m cam_studio bench``: the engine's speed and memory against plain inference and grad-cam.

Per backbone and batch size: one inference forward pass; our full gradient panel (every map but
ScoreCAM, one call of ``explain``); the same 11 maps with grad-cam, one method at a time. At batch
1: ScoreCAM ours vs grad-cam's (time, peak memory, agreement), and the peak RSS of one explanation
of a 224 px photo. Timings interleave the forward pass and the panel so that drift in the
machine's speed hits both alike; each time is a median, and the ratio is the median of the
ratios of the pairs. Memory figures come from fresh child
processes (VmHWM), so they include Python, torch and the model.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile

import numpy as np
import torch

from cam_studio.benchmarks.measure import child, machine_description, peak_rss_mb, weights_for
from cam_studio.benchmarks.reference import (
    PEER_METHODS,
    anchor_classes,
    reference_classes,
    reference_map,
    torchcam_map,
)
from cam_studio.data.examples import example_image
from cam_studio.evaluation.timing import timed
from cams.allocator import reuse_freed_memory
from cams.backbones import load_backbone
from cams.engine import explain
from cams.folding import folded
from cams.layers import FEATURES
from cams.methods import DEFAULT_METHODS, METHODS, TARGETS, Kind, targeted_name


def anchor_extras() -> list[str]:
    """What the anchors' maps of about one pass and the target as a choice add to the panel
    (AblationCAM, a head pass per channel, is timed alone)."""
    return [*(name for name in anchor_classes() if METHODS[name].kind is not Kind.ABLATED_SCORES),
            *(targeted_name("LayerCAM", target) for target in TARGETS)]


def grad_cam_panel(backbone, inputs, targets: list[int]) -> None:
    for method in reference_classes():
        reference_map(backbone, inputs, method, targets,
                      reshape_transform=reshape_for_grad_cam(backbone, inputs))


def reshape_for_grad_cam(backbone, inputs):
    """grad-cam's ``reshape_transform`` for a backbone read at a named layer (a transformer's
    tokens to a grid), else None; timing only (the conformance tests write their own)."""
    if backbone.layer.name == FEATURES:
        return None
    return lambda output: backbone.layer.to_grid(output, tuple(inputs.shape[-2:]))


def bench_panel(name: str, batch_size: int, repeats: int, device: torch.device) -> dict:
    weights = weights_for(name)
    backbone = load_backbone(name, weights=weights, device=device)
    photo = backbone.preprocess(example_image("chelsea"))
    inputs = photo.expand(batch_size, -1, -1, -1).contiguous().to(
        device, memory_format=backbone.memory_format)

    def forward() -> None:
        with torch.inference_mode():
            backbone.model(inputs)

    # The same pass with the batch norms folded (cams.folding), as the panel's own pass is: an
    # inference that folds them is the fair floor.
    inference = folded(backbone.model, inputs)

    def folded_forward() -> None:
        with torch.inference_mode():
            inference(inputs)

    def panel() -> None:
        explain(backbone, inputs)

    extras = [*DEFAULT_METHODS, *anchor_extras()]

    def extended() -> None:  # the panel with the anchors' maps and LayerCAM's four targets
        explain(backbone, inputs, extras)

    def ablation() -> None:
        explain(backbone, inputs, ["AblationCAM"])

    forward(), folded_forward(), panel(), extended()  # warm-up
    forward_ms, folded_ms, panel_ms, extended_ms = [], [], [], []
    pairs = repeats * (4 if batch_size == 1 else 1)  # short runs are noisier: take more
    for _ in range(pairs):
        forward_ms.append(timed(forward, device))
        folded_ms.append(timed(folded_forward, device))
        panel_ms.append(timed(panel, device))
        extended_ms.append(timed(extended, device))
    ablation_ms = [timed(ablation, device) for _ in range(3)]
    targets = explain(backbone, inputs[:1], methods=["GradCAM"]).targets.tolist() * batch_size
    grad_cam_repeats = 3 if batch_size == 1 else 1
    grad_cam_ms = [timed(lambda: grad_cam_panel(backbone, inputs, targets), device)
                   for _ in range(grad_cam_repeats)]
    peers = bench_peers(backbone, inputs, targets, grad_cam_repeats, device)
    forward_median, panel_median = statistics.median(forward_ms), statistics.median(panel_ms)
    grad_cam_median = statistics.median(grad_cam_ms)
    return {
        "backbone": name, "weights": "pretrained" if weights is None else "random init",
        "batch": batch_size, "maps_in_panel": len(explain(backbone, inputs[:1]).maps),
        "forward_ms": forward_median, "panel_ms": panel_median,
        # The median of per-pair ratios: each panel is compared with the forward pass run just
        # before it, so slow phases of a shared machine cancel out.
        "panel_over_forward": statistics.median(p / f for p, f in zip(panel_ms, forward_ms)),
        "folded_forward_ms": statistics.median(folded_ms),
        "panel_over_folded_forward": statistics.median(p / f for p, f in zip(panel_ms, folded_ms)),
        "extended_maps": len(extras),
        "extended_over_panel": statistics.median(e / p for e, p in zip(extended_ms, panel_ms)),
        "ablationcam_ms": statistics.median(ablation_ms),
        "grad_cam_11_maps_ms": grad_cam_median,
        "speedup_vs_grad_cam": grad_cam_median / panel_median,
        "repeats": pairs, "grad_cam_repeats": grad_cam_repeats, "peers": peers,
    }


def bench_peers(backbone, inputs, targets: list[int], repeats: int, device: torch.device) -> dict:
    """The maps grad-cam and torchcam both have (``PEER_METHODS``), each tool as its users call
    it: ours in one ``explain``, the others one method (one forward and backward) at a time;
    timed in turn, ``repeats`` rounds; and each peer's largest difference from our maps.
    Transformers: grad-cam only (torchcam has no reshape for tokens)."""
    with_torchcam = backbone.layer.name == FEATURES
    tools = {"ours": lambda: explain(backbone, inputs, list(PEER_METHODS)).maps,
             "grad-cam": lambda: {method: torch.from_numpy(reference_map(
                 backbone, inputs, method, targets,
                 reshape_transform=reshape_for_grad_cam(backbone, inputs)))
                 for method in PEER_METHODS}}
    if with_torchcam:
        tools["torchcam"] = lambda: {method: torchcam_map(backbone, inputs, method, targets)
                                     for method in PEER_METHODS}
    times: dict[str, list[float]] = {tool: [] for tool in tools}
    maps: dict[str, dict] = {}
    for _ in range(repeats):
        for tool, run in tools.items():
            times[tool].append(timed(lambda run=run, tool=tool: maps.__setitem__(tool, run()),
                                     device))
    ours_ms = statistics.median(times["ours"])
    result: dict = {"methods": list(PEER_METHODS), "ours_ms": ours_ms}
    for tool in tools:
        if tool == "ours":
            continue
        result[tool] = {"ms": statistics.median(times[tool]),
                        "over_ours": statistics.median(t / o for t, o in
                                                       zip(times[tool], times["ours"])),
                        "max_abs_difference": {method: float((maps[tool][method].cpu()
                                                              - maps["ours"][method].cpu()
                                                              ).abs().max())
                                               for method in PEER_METHODS}}
    return result


def child_main(task: str, name: str, device_name: str, output: str | None = None) -> None:
    """Inside the child: one ScoreCAM (ours or grad-cam's) or one panel, then its peak RSS."""
    reuse_freed_memory()  # as the parent (python -m cam_studio) does
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
        target = explain(backbone, inputs, methods=["GradCAM"]).targets.tolist()
        result_map: list[np.ndarray] = []
        report["ms"] = timed(lambda: result_map.append(
            reference_map(backbone, inputs, "ScoreCAM", target,
                          reshape_transform=reshape_for_grad_cam(backbone, inputs))), device)
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
             "| backbone | weights | batch | maps | forward (ms) | forward, batch norms folded "
             "(ms) | panel (ms) | panel / forward | panel / folded forward "
             "| grad-cam, 11 maps (ms) | speed-up vs grad-cam |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in results["panel"]:
        lines.append(
            f"| {row['backbone']} | {row['weights']} | {row['batch']} | {row['maps_in_panel']} | "
            f"{row['forward_ms']:.1f} | {row.get('folded_forward_ms', float('nan')):.1f} | "
            f"{row['panel_ms']:.1f} | {row['panel_over_forward']:.2f}× | "
            f"{row.get('panel_over_folded_forward', float('nan')):.2f}× | "
            f"{row['grad_cam_11_maps_ms']:.0f} | {row['speedup_vs_grad_cam']:.0f}× |")
    lines += ["", "The maps both peers have (" + ", ".join(PEER_METHODS) + "), each tool as its "
              "users call it, timed in turn:", "",
              "| backbone | batch | ours (ms) | grad-cam (ms) | grad-cam ÷ ours | torchcam (ms) | "
              "torchcam ÷ ours | max abs difference from ours: grad-cam | torchcam |",
              "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for row in results["panel"]:
        peers = row["peers"]
        grad_cam, torchcam = peers["grad-cam"], peers.get("torchcam")

        def differences(tool):
            return ", ".join(f"{method} {value:.1e}"
                             for method, value in tool["max_abs_difference"].items())
        lines.append(
            f"| {row['backbone']} | {row['batch']} | {peers['ours_ms']:.1f} | {grad_cam['ms']:.0f} | "
            f"{grad_cam['over_ours']:.1f}× | "
            + (f"{torchcam['ms']:.0f} | {torchcam['over_ours']:.1f}× | " if torchcam else "— | — | ")
            + f"{differences(grad_cam)} | " + (differences(torchcam) if torchcam else "—") + " |")
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


def measure(names: list[str], batch_sizes: list[int], repeats: int, device: torch.device,
            scorecam: bool = True) -> dict:
    """Every measurement above for ``names``; the panel rows and ScoreCAM rows as they finish
    go to stderr, the whole is returned (``markdown`` prints it)."""
    results: dict = {"machine": machine_description(device), "panel": [], "scorecam": []}
    for name in names:
        for batch_size in batch_sizes:
            row = bench_panel(name, batch_size, repeats, device)
            print(json.dumps(row), file=sys.stderr)
            results["panel"].append(row)
        if scorecam:
            row = bench_scorecam(name, device)
            print(json.dumps(row), file=sys.stderr)
            results["scorecam"].append(row)
    results["memory"] = {"backbone": names[0], **child("panel", names[0], str(device))}
    return results


if __name__ == "__main__":
    child_main(*sys.argv[1:])
