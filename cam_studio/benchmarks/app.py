"""The app end to end: ``python -m cam_studio bench --app`` (one client), ``--classroom N`` (N
clients at once, as a class following a teacher), ``--disk N`` (the temporary disk),
``--uploads N`` (uploads alone) and ``--checkpoints N`` (memory over distinct uploaded
checkpoints)."""

from __future__ import annotations

import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cam_studio.benchmarks.measure import scratch_folder, status_mb
from cam_studio.benchmarks.serving import app_client, serving_app
from cams.methods import DEFAULT_METHODS

TRIM_WAIT_S = 6.0  # the server trims its heaps every 5 s (cam_studio/page/memory.py)

ROOT = Path(__file__).resolve().parents[2]
FOOLED = "sham-one-class-efficientnet_lite0"


def explain_request(client, example: str = "chelsea", backbone: str = "efficientnet_lite0",
                    checkpoint_b: str = "clean", image=None) -> tuple[float, int]:
    """One /explain call (A clean, every default method): (milliseconds, bytes of the grid image
    the page downloads)."""
    start = time.perf_counter()
    grid = client.predict(image, example, backbone, "clean", None, checkpoint_b, None, "", "",
                          list(DEFAULT_METHODS), 0.5, api_name="/explain")[0]
    return (time.perf_counter() - start) * 1000, Path(grid).stat().st_size


def bench_app(requests: int = 10) -> dict:
    """One client: time ``explain`` requests through ``gradio_client`` (A and B set, every
    gradient method, default backbone, 224 px), then read the server's resident memory after it
    has loaded two backbones."""
    with serving_app() as (url, pid):
        client = app_client(url)
        explain_request(client)  # warm-up: loads the backbone
        latencies = [explain_request(client)[0] for _ in range(requests)]
        explain_request(client, backbone="efficientnet_lite1")  # a second backbone in the cache
        rss_mb = status_mb("VmRSS", pid)
    return {"requests": requests, "median_ms": statistics.median(latencies),
            "max_ms": max(latencies), "rss_after_two_backbones_mb": rss_mb}


def folder_mb(root: Path) -> float:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file()) / 2**20


def distinct_photos(count: int, folder: Path) -> list[str]:
    """``count`` different 224-px JPEG crops of the validation photos (each upload a new image)."""
    from PIL import Image

    from cam_studio.data.photos import PhotoCrops, photo_set
    folder.mkdir(parents=True, exist_ok=True)
    crops = PhotoCrops(photo_set("validation"), 224, seed=3, length=count, mosaics=False)
    paths = []
    for index in range(count):
        path = folder / f"crop-{index}.jpg"
        Image.fromarray((crops[index][0].permute(1, 2, 0).numpy() * 255).astype("uint8")
                        ).save(path, quality=90)
        paths.append(str(path))
    return paths


def bench_disk(comparisons: int = 300, downloads_every: int = 10) -> dict:
    """The app's temporary disk over ``comparisons`` comparisons of distinct uploaded images (A
    clean vs B the shipped SHAM Lite0), one after another, with the downloads (grid PNG, two
    NPZ, CSV) prepared for every ``downloads_every``-th: the size of the app's temporary space
    (``studio/tempspace.py``; Gradio's copies and uploads included) after each request."""
    from gradio_client import handle_file
    root = scratch_folder("cams-disk-bench-")
    images = distinct_photos(comparisons, root / "inputs")
    space = root / "space"
    sizes = []
    started = time.perf_counter()
    with serving_app(environment={"CAMS_TEMP_DIR": str(space)}) as (url, _):
        client = app_client(url)
        for index, image in enumerate(images):
            explain_request(client, checkpoint_b=FOOLED, image=handle_file(image))
            if (index + 1) % downloads_every == 0:
                client.predict(handle_file(image), "chelsea", "efficientnet_lite0", "clean", None,
                               FOOLED, None, "", "", list(DEFAULT_METHODS), 0.5,
                               api_name="/downloads")
            sizes.append(folder_mb(space))
    wall = time.perf_counter() - started
    tail = sizes[len(sizes) // 2:]
    return {"comparisons": comparisons, "downloads": comparisons // downloads_every,
            "seconds": wall, "max_mb": max(sizes), "final_mb": sizes[-1],
            "second_half_min_mb": min(tail), "second_half_max_mb": max(tail),
            "mb_after": {str(n): sizes[n - 1] for n in (10, 50, 100, 150, 200, 250, 300)
                         if n <= len(sizes)}}


def bench_uploads(uploads: int = 300, megabytes: int = 8) -> dict:
    """``uploads`` uploads of ``megabytes`` random bytes each, as fast as one client sends them,
    and no comparison: the temporary space's size after each, and how many were refused while
    it was over its ceiling (``cam_studio.page.uploads``)."""
    import requests
    root = scratch_folder("cams-uploads-bench-")
    space = root / "space"
    payload = os.urandom(megabytes * 2**20)
    sizes, refused = [], 0
    started = time.perf_counter()
    with serving_app(environment={"CAMS_TEMP_DIR": str(space)}) as (url, _):
        for index in range(uploads):
            answer = requests.post(f"{url}gradio_api/upload", timeout=60,
                                   files={"files": (f"upload-{index}.bin", payload)})
            refused += answer.status_code == 503
            sizes.append(folder_mb(space))
    return {"uploads": uploads, "megabytes_each": megabytes,
            "seconds": time.perf_counter() - started, "refused": refused,
            "max_mb": max(sizes), "final_mb": sizes[-1]}


def bench_checkpoints(count: int = 26, classes: int = 40_000) -> dict:
    """``count`` distinct uploaded checkpoints, one comparison each (A the upload, GradCAM): a
    Lite0 with a ``classes``-way head in float16 (104 MB a file at 40,000 classes), each with its
    own random head; the server's resident memory after each (the model cache is bounded by
    bytes, and cached comparisons go with their model)."""
    import torch
    from gradio_client import handle_file
    from safetensors.torch import save_file

    from cams.backbones import load_backbone
    trunk = {key: value.half().contiguous() for key, value in
             load_backbone("efficientnet_lite0").model.state_dict().items()
             if not key.startswith("classifier")}
    folder = scratch_folder("cams-checkpoints-bench-")
    rss, file_mb = [], 0.0
    with serving_app() as (url, pid):
        client = app_client(url)
        rss_before = status_mb("VmRSS", pid)
        for index in range(count):
            generator = torch.Generator().manual_seed(index)
            path = folder / f"lite0-{classes}-{index}.safetensors"
            save_file({**trunk,
                       "classifier.weight": (torch.randn(classes, 1280, generator=generator)
                                             * 0.01).half(),
                       "classifier.bias": torch.zeros(classes).half()}, str(path))
            file_mb = path.stat().st_size / 1e6
            client.predict(None, "chelsea", "efficientnet_lite0", "clean", handle_file(str(path)),
                           "none", None, "", "", ["GradCAM"], 0.5, api_name="/explain")
            path.unlink()
            rss.append(status_mb("VmRSS", pid))
    return {"checkpoints": count, "classes": classes, "file_mb": file_mb,
            "rss_before_mb": rss_before, "rss_max_mb": max(rss), "rss_final_mb": rss[-1],
            "rss_after": {str(n): rss[n - 1] for n in (1, 3, 5, 10, 20, 26) if n <= len(rss)}}


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system, from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ticks() -> tuple[int, int]:
    """The machine's CPU time so far, all cores, in clock ticks: (busy, all), from /proc/stat's
    first line (user, nice, system, idle, iowait, irq, softirq, steal; the guest times that
    follow are counted in user already). Busy is this machine's own work: not idle, not
    waiting for I/O, not taken by the hypervisor (steal)."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _, _, irq, softirq, _ = values
    return user + nice + system + irq + softirq, sum(values)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def bench_classroom(clients: int = 30, per_client: int = 2, distinct: bool = False) -> dict:
    """``clients`` browsers at once, each asking for ``per_client`` comparisons of A clean vs B
    the shipped SHAM-fooled Lite0 (12 default methods): the teacher's example for everyone
    (``distinct=False``: the same comparison, which the result cache serves), or a different
    image per request (every one computed). Latency per comparison as a client sees it,
    errors, bytes of the grid each client downloads, comparisons per second, and the server's
    resident memory before and after."""
    from gradio_client import handle_file
    with serving_app() as (url, pid):
        warm = app_client(url)
        explain_request(warm, "rocket", checkpoint_b=FOOLED)  # loads both checkpoints
        # One comparison alone: computed (a new example), then served again from the cache.
        alone = [explain_request(warm, example, checkpoint_b=FOOLED)[0]
                 for example in ("coffee", "coffee")]
        rss_before = status_mb("VmRSS", pid)
        images: list[str | None] = [None] * (clients * per_client)
        if distinct:
            images = list(distinct_photos(len(images), Path(os.environ.get("TMPDIR", "/tmp"))
                                          / "cams-classroom"))
        clients_ready = [app_client(url) for _ in range(clients)]

        def one_client(index: int) -> list[tuple[float, int] | str]:
            outcomes: list[tuple[float, int] | str] = []
            for request in range(per_client):
                image = images[index * per_client + request]
                try:
                    outcomes.append(explain_request(
                        clients_ready[index], checkpoint_b=FOOLED,
                        image=handle_file(image) if image else None))
                except Exception as error:  # counted and reported, never hidden
                    outcomes.append(f"{type(error).__name__}: {error}"[:300])
            return outcomes

        started, server_cpu, clients_cpu = time.perf_counter(), cpu_seconds(pid), os.times()
        busy_before, all_before = cpu_ticks()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            outcomes = [item for batch in pool.map(one_client, range(clients)) for item in batch]
        wall = time.perf_counter() - started
        busy_after, all_after = cpu_ticks()
        server_cpu = cpu_seconds(pid) - server_cpu
        clients_cpu = sum(os.times()[:2]) - sum(clients_cpu[:2])
        rss_after = status_mb("VmRSS", pid)
        time.sleep(TRIM_WAIT_S)  # the server's next trim of what its heaps hold free
        rss_settled = status_mb("VmRSS", pid)
    done = [item for item in outcomes if not isinstance(item, str)]
    errors = sorted({item for item in outcomes if isinstance(item, str)})
    latencies = [ms / 1000 for ms, _ in done]
    return {"clients": clients, "per_client": per_client,
            "images": "distinct" if distinct else "the same example",
            "one_comparison_alone_s": alone[0] / 1000, "again_from_the_cache_s": alone[1] / 1000,
            "errors": len(outcomes) - len(done), "error_messages": errors,
            "median_s": statistics.median(latencies),
            "p95_s": percentile(latencies, 0.95), "max_s": max(latencies),
            "comparisons_per_s": len(done) / wall,
            # Where the two cores went: the server's CPU time per comparison, and the clients'
            # (this process: uploads, downloads, polling) over the run.
            "server_cpu_s_per_comparison": server_cpu / len(outcomes),
            "clients_cpu_s_per_comparison": clients_cpu / len(outcomes),
            # How busy the machine's cores were over the run (a closed system of N clients:
            # its latency is about N / comparisons per second, so this and the CPU per
            # comparison decide it).
            "cores_busy_fraction": (busy_after - busy_before) / max(all_after - all_before, 1),
            "grid_kb_median": statistics.median(size for _, size in done) / 1000,
            "server_rss_mb_before": rss_before, "server_rss_mb_after": rss_after,
            "server_rss_mb_after_a_trim": rss_settled}
