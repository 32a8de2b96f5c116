"""The app's temporary space stays bounded: old requests' files and folders go, the oldest go
first when it is over its budget, and nothing a request may still be using is touched."""

from __future__ import annotations

import os
import time

from cam_studio.tabs.tempspace import TempSpace


def make(path, megabytes: float, age_s: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * int(megabytes * 2**20))
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_old_requests_and_their_folders_are_gone(tmp_path):
    space = TempSpace(tmp_path, keep_s=600, budget_mb=100, in_use_s=30)
    old_request = space.fresh("chelsea-")
    old = make(old_request / "chelsea-A.npz", 1, age_s=700)
    os.utime(old_request, (time.time() - 700,) * 2)
    new = make(space.fresh("coffee-") / "coffee-A.npz", 1, age_s=5)
    shown = make(space.served("display") / "grid.jpg", 0.1, age_s=900)
    assert space.sweep(force=True) == 2
    assert not old.exists() and not old_request.exists()  # the request's folder went with it
    assert new.exists() and not shown.exists()
    assert space.served("display").is_dir()  # the folders requests write into stay


def test_over_budget_the_oldest_go_first_but_never_a_file_in_use(tmp_path):
    space = TempSpace(tmp_path, keep_s=600, budget_mb=3, in_use_s=30)
    files = [make(space.served("display") / f"{index}.jpg", 1, age_s=300 - 60 * index)
             for index in range(5)]  # 300, 240, 180, 120, 60 s old: 5 MB, over 3
    in_use = make(space.served("display") / "now.jpg", 2, age_s=1)
    space.sweep(force=True)
    assert [path.exists() for path in files] == [False, False, False, False, True]
    assert in_use.exists()  # still over budget, but a request may be serving it
    assert space.size_mb() == 3


def test_files_the_page_layout_shows_are_protected(tmp_path):
    space = TempSpace(tmp_path, keep_s=10, budget_mb=100)
    gallery = make(space.served("abc") / "chelsea.jpg", 0.1, age_s=3600)
    space.protected = lambda path: path == gallery
    space.sweep(force=True)
    assert gallery.exists()


def test_a_deployers_gradio_temp_dir_holds_the_swept_space(tmp_path):
    """Docker and Spaces set GRADIO_TEMP_DIR: the app's space then lives inside it, so Gradio's
    copies of uploads and of what it serves land in the swept space, not beside it."""
    from gradio_client import handle_file
    from PIL import Image

    from cam_studio.benchmarks.serving import app_client, serving_app
    deployer = tmp_path / "deployer-temp"
    photo = tmp_path / "upload.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(photo)
    with serving_app(environment={"GRADIO_TEMP_DIR": str(deployer)}) as (url, _):
        client = app_client(url)
        client.predict(handle_file(str(photo)), methods=["GradCAM"], api_name="/explain")
    files = [path for path in deployer.rglob("*") if path.is_file()]
    assert files  # the upload's copy and the grid at least
    assert all((deployer / "cam-studio") in path.parents for path in files), files


def test_uploads_alone_cannot_fill_the_disk(tmp_path):
    """30 uploads of 4 MB as fast as one client sends them, no comparison, a 70 MB ceiling
    (the sweep's budget is 60 MB): the space never holds much over it, the uploads above it are
    refused in one line, and once the sweep may take the older ones (10 s) uploads are accepted
    again (before: uploads grew the space without bound between sweeps, 4.95 GB in 37 s)."""
    import requests

    from cam_studio.benchmarks.app import folder_mb
    from cam_studio.benchmarks.serving import serving_app
    space = tmp_path / "space"
    payload = os.urandom(4 * 2**20)
    with serving_app("--max-temp-mb", "70", environment={"CAMS_TEMP_DIR": str(space)}) as (url, _):
        answers, sizes = [], []
        for index in range(30):
            answer = requests.post(f"{url}gradio_api/upload", timeout=30,
                                   files={"files": (f"upload{index}.bin", payload)})
            answers.append(answer)
            sizes.append(folder_mb(space))
        refused = [answer for answer in answers if answer.status_code == 503]
        assert refused and len(refused) < 30
        assert all(answer.status_code in (200, 503) for answer in answers)
        assert refused[0].json()["detail"] == ("the server's temporary space is full of recent "
                                               "uploads: try again in a minute")
        assert max(sizes) <= 70 + 4  # the ceiling, and the upload that met it
        time.sleep(11)  # the sweep may now take what is over its budget
        again = requests.post(f"{url}gradio_api/upload", timeout=30,
                              files={"files": ("later.bin", payload)})
        assert again.status_code == 200
        assert folder_mb(space) <= 60 + 4  # swept to its budget, then the new upload


SPACE_OF_A_PROCESS = """
import sys, time
from cam_studio.tabs.tempspace import app_space
print(app_space().root, flush=True)
if sys.argv[1] == "stay":
    time.sleep(120)
"""


def own_space(tmp_path) -> dict[str, str]:
    """The environment of a process that makes its own space in ``tmp_path``: no deployer's
    folder (this test process's page, once imported, sets GRADIO_TEMP_DIR, which its children
    would inherit and put their spaces in)."""
    return {"TMPDIR": str(tmp_path), "CAMS_TEMP_DIR": "", "GRADIO_TEMP_DIR": ""}


def start_space(tmp_path, mode: str):
    """A Python process that makes its own space in ``tmp_path`` (its TMPDIR); returns the
    process and the space's folder."""
    import subprocess
    import sys
    from pathlib import Path
    process = subprocess.Popen([sys.executable, "-c", SPACE_OF_A_PROCESS, mode],
                               cwd=Path(__file__).resolve().parents[1], text=True,
                               stdout=subprocess.PIPE, env={**os.environ, **own_space(tmp_path)})
    return process, Path(process.stdout.readline().strip())


def test_a_process_space_goes_at_exit_and_a_killed_one_at_the_next_start(tmp_path):
    """Before, every app (and every test process) left its space in /tmp: 225 of them, 26 MB
    each, were found after two days of test runs."""
    import signal
    done, done_space = start_space(tmp_path, "exit")
    assert done.wait(timeout=60) == 0
    assert done_space.name.startswith(f"cam-studio-{done.pid}-")
    assert not done_space.exists()  # removed at exit
    killed, killed_space = start_space(tmp_path, "stay")
    running, running_space = start_space(tmp_path, "stay")
    try:
        killed.send_signal(signal.SIGKILL)  # no exit clean-up runs
        killed.wait(timeout=30)
        assert killed_space.is_dir()
        later = start_space(tmp_path, "exit")[0]
        assert later.wait(timeout=60) == 0
        assert not killed_space.exists()  # its process is gone: removed by the next start
        assert running_space.is_dir()  # its process is running: left alone
        kept = tmp_path / "cam-studio-evaluations"  # not a space (no process in its name)
        kept.mkdir()
        assert start_space(tmp_path, "exit")[0].wait(timeout=60) == 0 and kept.is_dir()
    finally:
        running.kill()
        running.wait(timeout=30)


A_CLIENT = """
import sys
from cam_studio.benchmarks.serving import app_client
grid = app_client(sys.argv[1]).predict(example="coffee", methods=["GradCAM"],
                                        api_name="/explain")[0]
print(grid, flush=True)
"""


def test_the_app_stopped_by_sigterm_and_its_clients_leave_nothing(tmp_path, tmp_path_factory):
    """A service manager's (or a container's) stop is SIGTERM, which by default skips the exit's
    clean-up: the app exits on it as on Ctrl-C, and leaves nothing in the temporary folder. A
    test's or benchmark's client leaves nothing in its own either (gradio_client left an empty
    folder per download: 7633 were found)."""
    import subprocess
    import sys
    from pathlib import Path

    from cam_studio.benchmarks.serving import serving_app
    client_temp = tmp_path_factory.mktemp("client-temp")
    with serving_app(environment=own_space(tmp_path)) as (url, pid):
        assert [path.name.split("-")[2] for path in tmp_path.glob("cam-studio-*")] == [str(pid)]
        client = subprocess.run([sys.executable, "-c", A_CLIENT, url], text=True, check=True,
                                capture_output=True, timeout=120, cwd=Path(__file__).parents[1],
                                env={**os.environ, "TMPDIR": str(client_temp)})
        assert "/cams-client-" in client.stdout  # it downloaded the grid
    assert not list(tmp_path.iterdir())  # nothing left (the examples' thumbnails were, before)
    assert not list(client_temp.iterdir())
